"""Reading a JSON object body, with a specific 400 for every way it can be wrong."""

from __future__ import annotations

import orjson
from starlette.requests import Request

from gateway.errors import FieldProblem, InvalidRequest


def _invalid(detail: str) -> InvalidRequest:
    return InvalidRequest.from_problems([FieldProblem("", detail)])


async def read_json_object(request: Request) -> dict[str, object]:
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise _invalid("Content-Type must be application/json.")
    raw = await request.body()
    if not raw.strip():
        raise _invalid("Request body is missing.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _invalid(f"Request body is not valid JSON ({exc.msg}).") from None
    if not isinstance(body, dict):
        raise _invalid("Request body must be a JSON object.")
    return body

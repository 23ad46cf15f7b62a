"""CORS whose refusals are problem+json like every other error of the REST face."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp

from gateway.errors import InvalidRequest
from gateway.request_state import current_request
from rest_compat.problems import PROBLEM_JSON, instance_for


class ProblemCORSMiddleware(CORSMiddleware):
    def __init__(self, app: ASGIApp, public_url: str | None = None, **options: Any) -> None:
        super().__init__(app, **options)
        self.public_url = public_url

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        state = current_request()
        error = InvalidRequest(f"CORS preflight refused: {bytes(response.body).decode()}.")
        body = {
            "type": f"{self._base(request_headers)}/problems/{error.kind.slug}",
            "title": error.kind.title,
            "status": response.status_code,
            "detail": error.detail,
            "instance": instance_for(state.request_id) if state else f"urn:uuid:{uuid.uuid4()}",
        }
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        headers.pop("content-type", None)
        return Response(orjson.dumps(body), response.status_code, headers, media_type=PROBLEM_JSON)

    def _base(self, headers: Headers) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://{headers.get('host', 'localhost')}"

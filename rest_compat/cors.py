"""CORS whose refusals are problem+json like every other error of the REST face."""

from __future__ import annotations

import uuid

import orjson
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from gateway.errors import InvalidRequest
from gateway.request_state import current_request
from rest_compat.problems import PROBLEM_JSON, instance_for


class ProblemCORSMiddleware(CORSMiddleware):
    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        state = current_request()
        error = InvalidRequest(f"CORS preflight refused: {bytes(response.body).decode()}.")
        body = {
            # A preflight has no app-level base URL to hand; the type is relative to the host.
            "type": f"/problems/{error.kind.slug}",
            "title": error.kind.title,
            "status": response.status_code,
            "detail": error.detail,
            "instance": instance_for(state.request_id) if state else f"urn:uuid:{uuid.uuid4()}",
        }
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        headers.pop("content-type", None)
        return Response(orjson.dumps(body), response.status_code, headers, media_type=PROBLEM_JSON)

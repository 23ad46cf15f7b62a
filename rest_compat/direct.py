"""POST /v1/candidates/job-match served without FastAPI's routing and exception layers.

The write is the route legacy integrations call in volume; FastAPI's router, its exception
middlewares and its exit stack cost about 8 % of each request (docs/performance.md) and do
nothing for it: the endpoint is a plain Starlette function and its errors are rendered here,
by the same problem+json functions the FastAPI handlers use. Every other method on the path,
and every other path, still goes through FastAPI (405s, CORS preflights, the record route).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.errors import DomainError
from rest_compat.cors import ProblemCORSMiddleware
from rest_compat.problems import crash_response, problem_response
from rest_compat.routes import express_interest


class DirectExpressInterest:
    def __init__(
        self, app: ASGIApp, public_url: str | None = None, cors: dict[str, Any] | None = None
    ) -> None:
        self.app = app  # the FastAPI app: the fallback, and what endpoints see as request.app
        # The same CORS as the FastAPI app's, around the POST only: the fallback has its own.
        self.post: ASGIApp = (
            ProblemCORSMiddleware(self._post, public_url=public_url, **cors) if cors else self._post
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            await self.post(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _post(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self.app
        request = Request(scope, receive)
        try:
            response = await express_interest(request)
        except DomainError as error:
            response = problem_response(request, error)
        except Exception as exc:
            response = crash_response(request, exc)
        await response(scope, receive, send)

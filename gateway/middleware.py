"""The outermost layer: request ids, body limit, common headers, one log line and metrics.

A pure ASGI middleware (no BaseHTTPMiddleware task hop), wrapped around the whole app so that
even a crash rendered by Starlette's error middleware leaves with its request id.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid

import orjson
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import InternalError, PayloadTooLarge
from gateway.idempotency import REPLAYED_HEADER
from gateway.metrics import Metrics
from gateway.request_state import RequestState, bind_request, unbind_request

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_VALID_OPERATION = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_OPERATION_LABELS = 200
LOGGED_MARK = "_gateway_logged"  # set on an exception once its traceback is in the log
access_log = logging.getLogger("gateway.access")
error_log = logging.getLogger("gateway.errors")

# Probes and scrapes are not traffic: they stay out of the access log at INFO.
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _VALID_REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return str(uuid.uuid4())


def _route_label(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str) and scope.get("endpoint") is not None:
        # FastAPI's router records only its own APIRoutes in scope["route"]; find the plain
        # Starlette routes (REST, health, /graphql, mounts) by the endpoint it dispatched to.
        endpoint = scope["endpoint"]
        for candidate in getattr(scope.get("router"), "routes", ()):
            if endpoint is getattr(candidate, "endpoint", None) or (
                isinstance(candidate, Mount) and endpoint is candidate.app
            ):
                path = candidate.path
                break
    return path if isinstance(path, str) else "unmatched"


def _refuse(declared: int, limit: int) -> Receive:
    async def refuse() -> Message:
        raise PayloadTooLarge(f"The request body is {declared} bytes; the limit is {limit}.")

    return refuse


class GatewayMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        max_body_bytes: int,
        direct_routes: dict[str, ASGIApp] | None = None,
    ) -> None:
        self.app = app
        self.direct_routes = direct_routes or {}
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self._operation_names: set[str] = set()

    def __getattr__(self, name: str) -> object:
        # Let callers reach the wrapped FastAPI app's attributes (state, openapi, ...).
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = RequestState(
            request_id=_request_id(scope), method=scope["method"], path=scope["path"]
        )
        token = bind_request(state)
        status = 500
        started = False
        has_api_key = any(name == b"x-api-key" for name, _ in scope["headers"])

        async def send_with_headers(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = list(message.get("headers", ()))
                headers.append((b"x-request-id", state.request_id.encode()))
                headers.append((b"x-content-type-options", b"nosniff"))
                if has_api_key or state.principal is not None:
                    headers.append((b"cache-control", b"no-store"))
                if state.rate_limit is not None:
                    for name, value in state.rate_limit.headers().items():
                        headers.append((name.lower().encode(), value.encode()))
                if state.idempotent_replay:
                    headers.append((REPLAYED_HEADER.lower().encode(), b"true"))
                message["headers"] = headers
            await send(message)

        try:
            target = self.direct_routes.get(scope["path"])
            if target is not None:
                state.route = scope["path"]
            await (target or self.app)(scope, self._limited(scope, receive), send_with_headers)
        except Exception as exc:
            # Starlette's error middleware has usually answered and logged already (and
            # re-raised); log and answer here only what nobody else did.
            if not getattr(exc, LOGGED_MARK, False):
                error_log.exception("unhandled error")
            if not started:
                await self._crash_response(state, send_with_headers)
        finally:
            try:
                state.route = state.route or _route_label(scope)
                self._record(state, status)
            except Exception:  # the response is out; a bookkeeping bug must not hide it
                error_log.exception("could not record the request")
            unbind_request(token)
            # A refused admission keeps its error, whose traceback reaches this state again: a
            # reference cycle that would leave the request to the cyclic collector.
            state.admission = None

    def _limited(self, scope: Scope, receive: Receive) -> Receive:
        limit = self.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                return _refuse(int(value), limit)
        received = 0

        async def counting() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge(f"The request body exceeds the limit of {limit} bytes.")
            return message

        return counting

    async def _crash_response(self, state: RequestState, send: Send) -> None:
        error = InternalError()
        body = orjson.dumps(
            {
                "type": "about:blank",
                "title": error.kind.title,
                "status": 500,
                "detail": error.detail,
                "instance": f"urn:uuid:{state.request_id}",
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [(b"content-type", b"application/problem+json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _operation_label(self, name: str | None) -> str:
        """Operation names come from clients: keep the label set bounded."""
        if not name:
            return "anonymous"
        if name in self._operation_names:
            return name
        if len(self._operation_names) < MAX_OPERATION_LABELS and _VALID_OPERATION.fullmatch(name):
            self._operation_names.add(name)
            return name
        return "other"

    def _record(self, state: RequestState, status: int) -> None:
        duration = time.perf_counter() - state.started
        route = state.route or "unmatched"
        self.metrics.requests.labels(route, state.method, str(status)).inc()
        self.metrics.latency.labels(route, str(status)).observe(duration)
        if status == 429 or "RATE_LIMITED" in state.graphql_error_codes:  # GraphQL answers 200
            self.metrics.rate_limited.inc()
        if state.graphql_operation_type is not None or state.graphql_error_codes:
            self.metrics.graphql_operations.labels(
                self._operation_label(state.graphql_operation_name),
                state.graphql_operation_type or "unknown",
                state.graphql_error_codes[0] if state.graphql_error_codes else "",
            ).inc()
        if state.path in _QUIET_PATHS and status < 400:
            return
        access_log.info(
            "request",
            extra={
                "request_id": state.request_id,
                "pid": os.getpid(),  # which worker of `gateway serve --workers N`
                "method": state.method,
                "path": state.path,
                "status": status,
                "duration_ms": round(duration * 1000, 3),
                "client_id": state.principal.client_id if state.principal else None,
                "graphql_operation": state.graphql_operation_name,
                "graphql_operation_type": state.graphql_operation_type,
                "graphql_error_codes": state.graphql_error_codes or None,
                "idempotent_replay": state.idempotent_replay,
            },
        )

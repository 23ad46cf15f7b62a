"""What one HTTP request has learned about itself, for headers, logs and metrics.

The outermost middleware creates it; the faces and the core fill it in. It travels in a
context variable so that log records, deep in any module, can name their request.
"""

from __future__ import annotations

import asyncio
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.auth import Principal
    from gateway.rate_limit import RateLimitStatus


@dataclass
class RequestState:
    request_id: str
    method: str = ""
    path: str = ""
    started: float = field(default_factory=time.perf_counter)
    principal: Principal | None = None
    rate_limit: RateLimitStatus | None = None
    admission: asyncio.Future[Principal] | None = None  # the one authentication per request
    idempotent_replay: bool = False
    graphql_operation_name: str | None = None
    graphql_operation_type: str | None = None
    graphql_error_codes: list[str] = field(default_factory=list)
    route: str | None = None  # the route template, for metrics (bounded label values)


_current: ContextVar[RequestState | None] = ContextVar("gateway_request_state", default=None)


def current_request() -> RequestState | None:
    return _current.get()


def bind_request(state: RequestState) -> object:
    return _current.set(state)


def unbind_request(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]

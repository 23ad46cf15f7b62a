"""GraphQL rendering of the core's domain errors.

Every error leaves with ``extensions.code`` and ``extensions.status`` (the HTTP status the
REST route gives for the same failure). Anything that is not a domain error or a GraphQL
validation error is masked: the client sees a generic message, the log has the traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from graphql import GraphQLError

from gateway.errors import DomainError, InternalError, InvalidRequest
from gateway.request_state import current_request

logger = logging.getLogger("gateway.graphql")

BAD_USER_INPUT = InvalidRequest.kind


def pointer_to_path(pointer: str) -> list[str | int]:
    """``/candidates/0/publicId`` → ``["input", "candidates", 0, "publicId"]``."""
    parts: list[str | int] = ["input"]
    for part in pointer.strip("/").split("/"):
        if part:
            parts.append(int(part) if part.isdigit() else part)
    return parts


def domain_error_extensions(error: DomainError) -> dict[str, Any]:
    extensions: dict[str, Any] = {"code": error.kind.code, "status": error.kind.status}
    for name, value in error.extensions.items():
        if name == "errors":
            value = [{**item, "path": pointer_to_path(item["pointer"])} for item in value]
        extensions[name] = value
    if "Retry-After" in error.headers:
        extensions["retryAfter"] = int(error.headers["Retry-After"])
    return extensions


def render_error(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if isinstance(original, DomainError):
        message, extensions = original.detail, domain_error_extensions(original)
    elif original is None or isinstance(original, GraphQLError):
        # Syntax, validation, variable coercion and the limits: the document is at fault.
        message = error.message
        extensions = {"code": BAD_USER_INPUT.code, "status": BAD_USER_INPUT.status}
    else:
        logger.error("unexpected error in %s", error.path, exc_info=original)
        masked = InternalError()
        message, extensions = masked.detail, domain_error_extensions(masked)
    _drop_tracebacks(error)
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )


def _drop_tracebacks(error: GraphQLError) -> None:
    """Tracebacks reference the executor's frames and the executor holds the errors: a cycle
    that would keep the request's objects alive until the cyclic collector runs (see
    schema/execution.py). They have been logged, when they need to be, by now."""
    error.__traceback__ = None
    if error.original_error is not None:
        error.original_error.__traceback__ = None


def render_errors(errors: list[GraphQLError]) -> list[GraphQLError]:
    rendered = [render_error(error) for error in errors]
    state = current_request()
    if state is not None:
        state.graphql_error_codes = [error.extensions["code"] for error in rendered]
    return rendered

"""RFC 9457 problem+json rendering of the core's domain errors, for every non-GraphQL route."""

from __future__ import annotations

import html
import logging
import uuid

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, Response

from gateway.errors import (
    DomainError,
    FieldProblem,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    PayloadTooLarge,
    ProblemKind,
    RouteNotFound,
    all_problem_kinds,
)
from gateway.middleware import LOGGED_MARK
from gateway.request_state import current_request

PROBLEM_JSON = "application/problem+json"
logger = logging.getLogger("gateway.rest")


def instance_for(request_id: str) -> str:
    try:
        return f"urn:uuid:{uuid.UUID(request_id)}"
    except ValueError:
        return f"urn:request-id:{request_id}"


def problem_type_url(request: Request, kind: ProblemKind) -> str:
    base = request.app.state.services.settings.public_url or str(request.base_url)
    return f"{base.rstrip('/')}/problems/{kind.slug}"


def problem_body(request: Request, error: DomainError) -> dict[str, object]:
    state = current_request()
    return {
        "type": problem_type_url(request, error.kind),
        "title": error.kind.title,
        "status": error.kind.status,
        "detail": error.detail,
        "instance": instance_for(state.request_id) if state else f"urn:uuid:{uuid.uuid4()}",
        **error.extensions,
    }


def problem_response(request: Request, error: DomainError) -> Response:
    return Response(
        orjson.dumps(problem_body(request, error)),
        status_code=error.kind.status,
        media_type=PROBLEM_JSON,
        headers=error.headers,
    )


def crash_response(request: Request, exc: Exception) -> Response:
    """The 500 for an unexpected failure: the traceback goes to the log (with the request id)
    and is marked as logged, never to the client."""
    logger.error("unhandled error", exc_info=exc)
    setattr(exc, LOGGED_MARK, True)
    return problem_response(request, InternalError())


def _from_http_exception(exc: StarletteHTTPException) -> DomainError:
    if exc.status_code == 404:
        return RouteNotFound("No route matches this path.")
    if exc.status_code == 405:
        error: DomainError = MethodNotAllowed("This route does not accept this HTTP method.")
    elif exc.status_code == 413:
        error = PayloadTooLarge("The request body is too large.")
    elif exc.status_code < 500:
        error = InvalidRequest(str(exc.detail))
    else:
        error = InternalError()
    error.headers.update(exc.headers or {})
    return error


def _from_validation_error(exc: RequestValidationError) -> InvalidRequest:
    problems = [
        FieldProblem("/" + "/".join(str(part) for part in err["loc"] if part != "body"), err["msg"])
        for err in exc.errors()
    ]
    return InvalidRequest.from_problems(problems)


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error response of the app problem+json: domain errors, unknown routes,
    wrong methods, request validation (FastAPI's 422 becomes 400) and crashes."""

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        return problem_response(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return problem_response(request, _from_http_exception(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return problem_response(request, _from_validation_error(exc))

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Response:
        return crash_response(request, exc)

    @app.get("/problems/{slug}", include_in_schema=False)
    async def problem_page(slug: str) -> HTMLResponse:
        kind = all_problem_kinds().get(slug)
        if kind is None:
            raise RouteNotFound(f"There is no problem type called {slug!r}.")
        return HTMLResponse(_page(kind))


def _page(kind: ProblemKind) -> str:
    title = html.escape(kind.title)
    return (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        f"<title>{title} ({kind.status})</title>"
        "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:3em auto;"
        "padding:0 1em}code{background:#eee;padding:0 .2em}</style>"
        f"<h1>{title}</h1><p>HTTP status <strong>{kind.status}</strong>, "
        f"GraphQL code <code>{html.escape(kind.code)}</code>.</p>"
        f"<p>{html.escape(kind.explanation)}</p>"
        "<p>Every problem response carries an <code>instance</code> that identifies the "
        "request; quote it when you ask for help.</p></html>"
    )

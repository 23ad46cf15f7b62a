"""The HTTP endpoint at /graphql: Strawberry's ASGI view with the gateway's rules.

- CSRF: a POST must carry a JSON content type (a plain HTML form cannot send one), and a GET
  that runs a query must carry a header that forces a CORS preflight.
- Errors before execution (bad JSON, a batch, a mutation over GET) are GraphQL-shaped JSON
  with ``extensions.code``/``status``, never plain text.
"""

from __future__ import annotations

from typing import Any

import orjson
from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, process_result
from strawberry.types import ExecutionResult

from gateway.errors import DomainError, InvalidRequest, MethodNotAllowed
from gateway.request_state import current_request
from gateway.services import Services
from schema.context import GraphQLContext
from schema.errors import domain_error_extensions, render_errors
from schema.graphiql import GraphiQLPage

# The one request body type Strawberry parses here (graphql-response+json is a response type).
JSON_TYPE = "application/json"
PREFLIGHT_HEADERS = (
    "apollo-require-preflight",
    "x-apollo-operation-name",
    "x-requested-with",
    "graphql-preflight",
)


def graphql_error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extensions: Any
) -> Response:
    body = {
        "errors": [
            {"message": message, "extensions": {"code": code, "status": status, **extensions}}
        ]
    }
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


class GatewayGraphQL(GraphQL):
    def __init__(self, services: Services, page: GraphiQLPage | None, **kwargs: Any) -> None:
        super().__init__(kwargs.pop("schema"), graphql_ide="graphiql" if page else None, **kwargs)
        self.services = services
        self.page = page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await super().__call__(scope, receive, send)
        request = Request(scope, receive)
        try:
            self._check_csrf(request)
            response = await self.run(request)
        except DomainError as error:
            response = graphql_error_response(
                error.status,
                error.kind.code,
                error.detail,
                error.headers,
                **{
                    k: v
                    for k, v in domain_error_extensions(error).items()
                    if k not in ("code", "status")
                },
            )
        except HTTPException as error:
            code = "METHOD_NOT_ALLOWED" if error.status_code == 405 else "BAD_USER_INPUT"
            headers = {"Allow": "GET, POST"} if error.status_code == 405 else None
            response = graphql_error_response(error.status_code, code, error.reason, headers)
        await response(scope, receive, send)

    def _check_csrf(self, request: Request) -> None:
        method = request.method
        if method == "POST":
            # The media type only: Strawberry's parse_content_type goes through email.message,
            # a noticeable cost per request for what one split does.
            content_type = request.headers.get("content-type", "")
            media_type = content_type.split(";", 1)[0].strip().lower()
            if media_type != JSON_TYPE:
                raise InvalidRequest(
                    "POST /graphql needs Content-Type: application/json (form and text "
                    "content types are refused to prevent cross-site request forgery)."
                )
        elif method == "GET":
            if "query" in request.query_params and not any(
                h in request.headers for h in PREFLIGHT_HEADERS
            ):
                raise InvalidRequest(
                    "A GraphQL query over GET needs a header such as Apollo-Require-Preflight "
                    "or X-Requested-With (cross-site request forgery protection)."
                )
        elif method != "OPTIONS":
            error = MethodNotAllowed(f"{method} is not allowed on /graphql; use GET or POST.")
            error.headers["Allow"] = "GET, POST"
            raise error

    async def get_context(self, request: Request, response: Response) -> GraphQLContext:  # type: ignore[override]
        state = current_request()
        assert state is not None, "the request middleware must run before /graphql"
        return GraphQLContext(request=request, state=state, services=self.services)

    async def render_graphql_ide(self, request: Request) -> Response:
        assert self.page is not None
        return HTMLResponse(self.page.html())

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        # Rendered here rather than in a schema extension: errors raised while parsing (e.g. by
        # the token limit) surface after the extensions have finished.
        if result.errors:
            result.errors = render_errors(result.errors)
        return process_result(result)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        # orjson's JSONDecodeError subclasses json's, which Strawberry turns into a 400.
        return orjson.loads(data)

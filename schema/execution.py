"""The executor class the schema runs documents with: Strawberry's, without its reference cycle.

graphql-core's executor stores helpers bound to itself (``self.async_helpers`` holds two bound
methods of ``self``), so every execution is a reference cycle, and with it the whole request it
can reach (context, request, state, results, ~57 objects) outlives the request until the cyclic
collector runs. Under load that garbage piled up between collections and each collection freed
~40,000 objects at once, stalling the event loop for 20-60 ms: the GraphQL p99. Dropping the
helpers once the response is built lets reference counting free a request as it ends, as it
does for REST.
"""

from __future__ import annotations

from typing import Any

from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext


class GatewayExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def build_response(self, data: dict[str, Any] | None) -> Any:
        try:
            return super().build_response(data)
        finally:
            # Resolvers are done; only this executor's reference cycle used the helpers.
            self.__dict__.pop("async_helpers", None)

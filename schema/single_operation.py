"""Refuse documents with several operations unless ``operationName`` picks one.

Strawberry would silently run the first operation; the GraphQL spec requires an error, and a
silent pick hides client bugs.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import GraphQLError, OperationDefinitionNode
from strawberry.extensions import SchemaExtension


class RequireOperationName(SchemaExtension):
    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        # Strawberry exposes only the resolved name; the one the client sent is kept privately.
        provided = getattr(context, "_provided_operation_name", None)
        if document is not None and provided is None:
            operations = sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)
            if operations > 1:
                error = GraphQLError(
                    "The document has several operations; name the one to run in operationName."
                )
                context.pre_execution_errors = [*(context.pre_execution_errors or []), error]
        yield

"""The gateway's rules for every GraphQL document, as one schema extension.

One extension rather than one per rule: Strawberry looks up every extension's hooks at every
stage of every request, and that lookup cost more than the rules themselves.

- the token limit (what ``MaxTokensLimiter`` does) and the depth, alias and, in production,
  introspection validation rules (what ``AddValidationRules`` does), built once so that the
  validation cache, which keys on the rules, keeps hitting;
- documents with several operations must name one in ``operationName`` (Strawberry would run
  the first; the GraphQL spec requires an error);
- the operation's name and type are noted on the request, for the access log and metrics.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from graphql import ASTValidationRule, GraphQLError, OperationDefinitionNode
from strawberry.extensions import SchemaExtension

from gateway.request_state import current_request


class DocumentRules(SchemaExtension):
    def __init__(
        self, max_tokens: int, validation_rules: Sequence[type[ASTValidationRule]]
    ) -> None:
        self.max_tokens = max_tokens
        self.validation_rules = tuple(validation_rules)

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.max_tokens
        context.validation_rules = context.validation_rules + self.validation_rules
        yield
        state = current_request()
        if state is None:
            return
        state.graphql_operation_name = context.operation_name
        try:
            state.graphql_operation_type = context.operation_type.value
        except RuntimeError:  # the document did not parse: there is no operation
            state.graphql_operation_type = None

    def on_validate(self) -> Iterator[None]:
        # Runs after the validation cache's hook (it is listed after it): adds to its errors.
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

"""The gateway's rules for every GraphQL document, and its cache of prepared documents, as one
schema extension.

One extension, with one hook, rather than Strawberry's ``ParserCache``, ``ValidationCache`` and
one extension per rule: Strawberry looks up every extension's hooks at every stage of every
request, and ``ValidationCache`` keys on the parsed document, whose hash is recomputed over the
whole syntax tree on each request. Here a document is parsed and validated once per query text
and found again by that text.

- the token limit (what ``MaxTokensLimiter`` does) and the depth, alias and, in production,
  introspection validation rules (what ``AddValidationRules`` does);
- documents with several operations must name one in ``operationName`` (Strawberry would run
  the first; the GraphQL spec requires an error);
- the operation's name and type are noted on the request, for the access log and metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    parse,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from gateway.request_state import current_request

SEVERAL_OPERATIONS = "The document has several operations; name the one to run in operationName."


@dataclass(frozen=True)
class PreparedDocument:
    document: DocumentNode
    validation_errors: tuple[GraphQLError, ...]
    operations: int


Rules = tuple[type[ASTValidationRule], ...]


class PreparedDocuments:
    """Parsed and validated documents by query text: a bounded LRU shared by all requests.

    Documents that do not parse are not kept: Strawberry parses them again to report the
    error, which costs little since the token limit stops the parser early.
    """

    def __init__(self, max_tokens: int, maxsize: int) -> None:
        self.max_tokens = max_tokens
        self.get: Callable[[str, GraphQLSchema, Rules], PreparedDocument | None] = lru_cache(
            maxsize=maxsize
        )(self._prepare)

    def _prepare(self, query: str, schema: GraphQLSchema, rules: Rules) -> PreparedDocument | None:
        try:
            document = parse(query, max_tokens=self.max_tokens)
        except GraphQLError:
            return None
        operations = sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)
        errors = tuple(validate_document(schema, document, rules))  # Strawberry's rules too
        return PreparedDocument(document, errors, operations)


class DocumentRules(SchemaExtension):
    def __init__(
        self, documents: PreparedDocuments, validation_rules: Sequence[type[ASTValidationRule]]
    ) -> None:
        self.documents = documents
        self.validation_rules = tuple(validation_rules)

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.documents.max_tokens
        context.validation_rules = context.validation_rules + self.validation_rules
        if context.query is not None and context.graphql_document is None:
            prepared = self.documents.get(
                context.query, context.schema._schema, tuple(context.validation_rules)
            )
            if prepared is not None:
                # Strawberry skips parsing and validation for what is already set.
                context.graphql_document = prepared.document
                errors = list(prepared.validation_errors)
                # Strawberry exposes only the resolved name; the one the client sent is private.
                provided = getattr(context, "_provided_operation_name", None)
                if prepared.operations > 1 and provided is None:
                    errors.append(GraphQLError(SEVERAL_OPERATIONS))
                context.pre_execution_errors = errors
        yield
        state = current_request()
        if state is None:
            return
        state.graphql_operation_name = context.operation_name
        try:
            state.graphql_operation_type = context.operation_type.value
        except RuntimeError:  # the document did not parse: there is no operation
            state.graphql_operation_type = None

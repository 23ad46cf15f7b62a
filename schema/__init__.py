"""The GraphQL face: Strawberry schema, resolvers, context and error rendering."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions.max_aliases import create_validator as max_aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as max_depth_rule
from strawberry.schema.config import StrawberryConfig

from gateway.settings import Settings
from schema.document_rules import DocumentRules, PreparedDocuments
from schema.execution import GatewayExecutionContext
from schema.resolvers import Mutation, Query


class GatewaySchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: object = None) -> None:
        """Strawberry logs every error; ours are logged once, by schema.errors.render_error,
        and only when unexpected (a 400 is the caller's business, not an operator's)."""


def build_schema(settings: Settings) -> strawberry.Schema:
    """The schema with its protections: limits, bounded caches, and production hardening."""
    # The limits' rule classes, built once: the document cache keys on the rules, and the
    # limiter factories would build new classes per request, so the cache would never hit.
    rules = [
        max_depth_rule(settings.graphql_max_depth, None),
        max_aliases_rule(settings.graphql_max_aliases),
    ]
    if not settings.introspection_enabled:
        rules.append(NoSchemaIntrospectionCustomRule)
    documents = PreparedDocuments(settings.graphql_max_tokens, settings.graphql_cache_size)
    extensions = [lambda: DocumentRules(documents, rules)]
    return GatewaySchema(
        query=Query,
        mutation=Mutation,
        extensions=extensions,  # type: ignore[arg-type]
        execution_context_class=GatewayExecutionContext,
        config=StrawberryConfig(disable_field_suggestions=settings.is_production),
    )

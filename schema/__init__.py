"""The GraphQL face: Strawberry schema, resolvers, context and error rendering."""

from __future__ import annotations

import strawberry
from strawberry.extensions import (
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig

from gateway.settings import Settings
from schema.errors import DomainErrorRendering
from schema.resolvers import Mutation, Query


def build_schema(settings: Settings) -> strawberry.Schema:
    """The schema with its protections: limits, bounded caches, and production hardening."""
    size = settings.graphql_cache_size
    extensions: list[type[SchemaExtension] | SchemaExtension | object] = [
        DomainErrorRendering,
        lambda: ParserCache(maxsize=size),
        lambda: ValidationCache(maxsize=size),
        lambda: MaxTokensLimiter(max_token_count=settings.graphql_max_tokens),
        lambda: QueryDepthLimiter(max_depth=settings.graphql_max_depth),
        lambda: MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases),
    ]
    if not settings.introspection_enabled:
        extensions.append(DisableIntrospection)
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        extensions=extensions,  # type: ignore[arg-type]
        config=StrawberryConfig(disable_field_suggestions=settings.is_production),
    )

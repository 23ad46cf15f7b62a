"""Input objects built from a plan made once per type, through Strawberry's ``from_input`` hook.

Strawberry turns an input value into its class field by field, resolving each field's
annotation, GraphQL name and kind again on every request: about 70 us of the ~400 us the
``expressInterest`` mutation costs in-process, more than the two SQL inserts. The plan does that
resolution once, the first time the type is built, and then only copies values: built-in
scalars as they are (graphql-core has already coerced them), lists and nested planned inputs
through their own plans. Any other kind of field (enums, custom scalars, unplanned inputs)
goes through Strawberry's own conversion, so the result is the same as without the plan.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING
from typing import Any, TypeVar

import strawberry
from strawberry.types.arguments import InputContext
from strawberry.types.base import (
    StrawberryList,
    StrawberryObjectDefinition,
    StrawberryOptional,
    StrawberryType,
    get_object_definition,
)

T = TypeVar("T", bound=type)
Convert = Callable[[Any, InputContext], Any]
PLAIN_SCALARS = (str, int, float, bool, strawberry.ID)


def planned_input(cls: T) -> T:
    """Decorate a ``@strawberry.input`` class (listed above it) to be built by a plan."""
    definition = get_object_definition(cls, strict=True)
    plan: list[tuple[str, str, Convert]] | None = None
    implicit_nones = {
        field.python_name: None
        for field in definition.fields
        if field.default_value is MISSING and field.default_factory is MISSING
    }

    def build(target: type, value: Mapping[str, Any], context: InputContext) -> Any:
        nonlocal plan
        if plan is None:  # types are only all resolvable once the schema is built
            plan = _plan(definition, context)
        kwargs = dict(implicit_nones)  # as Strawberry does: nullable fields may be left out
        for graphql_name, python_name, convert in plan:
            if graphql_name in value:
                kwargs[python_name] = convert(value[graphql_name], context)
        return target(**kwargs)

    definition.from_input = build
    return cls


def _plan(
    definition: StrawberryObjectDefinition, context: InputContext
) -> list[tuple[str, str, Convert]]:
    plan = []
    for field in definition.fields:
        graphql_name = context.config.name_converter.from_field(field)
        field_type = field.resolve_type(type_definition=definition)
        plan.append((graphql_name, field.python_name, _converter(field_type, graphql_name)))
    return plan


def _converter(type_: StrawberryType | type, key: str) -> Convert:
    if isinstance(type_, StrawberryOptional):
        inner = _converter(type_.of_type, key)
        return lambda value, context: None if value is None else inner(value, context)
    if isinstance(type_, StrawberryList):
        item = _converter(type_.of_type, key)
        return lambda values, context: [item(value, context) for value in values]
    if type_ in PLAIN_SCALARS:
        return lambda value, _context: value
    definition = get_object_definition(type_)
    if definition is not None and definition.from_input is not None:
        build = definition.from_input
        return lambda value, context: build(type_, value, context)  # type: ignore[arg-type]
    return lambda value, context: context.convert(value, type_, key)

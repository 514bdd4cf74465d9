"""Fields that graphql-core resolves itself, without Strawberry's per-field wrapper.

Strawberry gives every field a resolver of its own: for a field with a Python resolver, a chain
that builds an `Info`, converts the arguments, runs the field extensions and checks for an
awaitable; for a field without one, a function that calls the field's default resolver. On a
large page most resolved values are plain reads (a column of the row, a Relay id, an edge's
node), and that chain costs several times the read itself.

`unwrap_plain_fields` gives graphql-core a plain ``resolve(root, info)`` for the fields that
need nothing of the chain:

* the fields declared with `plain_field` (`schema.mapping.column`, `computed` and `global_id`
  among them) get the declaration's own function, which takes the root and no arguments and
  uses nothing of `info`;
* the fields with no resolver and no extension (``edges``, ``node``, ``cursor``, ``pageInfo`` …)
  get an attribute read by their Python name, which is what Strawberry's default resolver does.

Every other field keeps Strawberry's resolver. The SDL does not change: only the functions
graphql-core calls do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry
from graphql import GraphQLField, GraphQLObjectType, GraphQLSchema
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

Resolve = Callable[[Any, object], Any]

_RESOLVE_KEY = "studio.resolve"


def plain_field(
    resolve: Resolve, *, description: str | None = None, metadata: dict[str, Any] | None = None
) -> Any:
    """A field whose value is ``resolve(root, info)``: a function of the root alone (it uses
    nothing of ``info``, and the field takes no arguments), so graphql-core may call it as is."""

    # Strawberry's resolver, for a schema that keeps Strawberry's wrapper, takes the root alone.
    def resolve_root(root: Any) -> Any:
        return resolve(root, None)

    return strawberry.field(
        resolver=resolve_root,
        description=description,
        metadata={**(metadata or {}), _RESOLVE_KEY: resolve},
    )


def plain_resolver(field: StrawberryField) -> Resolve | None:
    """The ``resolve`` of a `plain_field`; ``None`` for any other field."""
    resolve: Resolve | None = field.metadata.get(_RESOLVE_KEY)
    return resolve


def unwrap_plain_fields(schema: GraphQLSchema, *, default_resolver: Callable[..., Any]) -> int:
    """Give the plain fields of ``schema``'s object types a plain resolver; how many it gave."""
    unwrapped = 0
    for graphql_type in schema.type_map.values():
        if not isinstance(graphql_type, GraphQLObjectType):
            continue
        for graphql_field in graphql_type.fields.values():
            resolve = _plain_resolve(graphql_field, default_resolver)
            if resolve is not None:
                graphql_field.resolve = resolve
                unwrapped += 1
    return unwrapped


def _plain_resolve(
    graphql_field: GraphQLField, default_resolver: Callable[..., Any]
) -> Resolve | None:
    field = (graphql_field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(field, StrawberryField) or field.extensions or field.is_subscription:
        return None
    declared = plain_resolver(field)
    if declared is not None:
        return declared
    if field.base_resolver is None and default_resolver is getattr:
        return _attribute(field.python_name)
    return None


def _attribute(name: str) -> Resolve:
    def resolve(root: Any, info: object) -> Any:
        return getattr(root, name)

    return resolve

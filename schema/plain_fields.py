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
  get an attribute read by their Python name, which is what Strawberry's default resolver does;
* the fields declared `context_only` (the relations and connections of `schema.mapping`, which
  go through a loader) get their own resolver function, called with graphql-core's
  ``GraphQLResolveInfo`` in place of Strawberry's `Info`: it reads nothing of it but
  ``info.context``, which both carry. Only when every argument is a scalar whose GraphQL name
  is its Python name (graphql-core passes the coerced values by GraphQL name, which is all
  Strawberry's conversion would do for a scalar); a field with an input-object or enum
  argument (``User.videos``' ``filter``) keeps Strawberry's resolver.

Every other field keeps Strawberry's resolver. The SDL does not change: only the functions
graphql-core calls do. The fields of the first two kinds are also marked as reads (`is_read`):
`schema.execution` completes them without graphql-core's per-field machinery.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import strawberry
from graphql import (
    GraphQLField,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    get_named_type,
)
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

Resolve = Callable[[Any, object], Any]

_RESOLVE_KEY = "studio.resolve"
_CONTEXT_ONLY_KEY = "studio.context_only"
_READ_KEY = "studio.read"

#: ``metadata=`` entries of a field whose resolver takes ``(self, info, **arguments)`` and uses
#: nothing of ``info`` but ``info.context``.
CONTEXT_ONLY: dict[str, Any] = {_CONTEXT_ONLY_KEY: True}


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


def is_read(graphql_field: GraphQLField) -> bool:
    """Whether ``graphql_field.resolve`` is a plain read of the root: it returns its value at
    once (never an awaitable), changes nothing (a second call answers the same), and uses
    nothing of ``info`` (it may be given ``None``)."""
    return bool(graphql_field.extensions.get(_READ_KEY))


def is_context_only(graphql_field: GraphQLField) -> bool:
    """Whether ``graphql_field.resolve`` is a `CONTEXT_ONLY` resolver's own function: its
    arguments are scalars, which graphql-core passes as they are."""
    return bool(graphql_field.extensions.get(_CONTEXT_ONLY_KEY))


def _plain_resolve(
    graphql_field: GraphQLField, default_resolver: Callable[..., Any]
) -> Resolve | None:
    field = (graphql_field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(field, StrawberryField) or field.extensions or field.is_subscription:
        return None
    declared = plain_resolver(field)
    if declared is not None:
        if not inspect.iscoroutinefunction(declared):
            graphql_field.extensions[_READ_KEY] = True
        return declared
    if field.base_resolver is None and default_resolver is getattr:
        graphql_field.extensions[_READ_KEY] = True
        return _attribute(field.python_name)
    if field.metadata.get(_CONTEXT_ONLY_KEY):
        resolve = _context_only(graphql_field, field)
        if resolve is not None:
            graphql_field.extensions[_CONTEXT_ONLY_KEY] = True
        return resolve
    return None


def _context_only(graphql_field: GraphQLField, field: StrawberryField) -> Resolve | None:
    """The resolver's own function, when graphql-core's call ``resolve(root, info, **args)``
    means what Strawberry's would (see the module's docstring)."""
    resolver = field.base_resolver
    if resolver is None or resolver.self_parameter is None or resolver.info_parameter is None:
        return None
    function = resolver.wrapped_func
    if isinstance(function, staticmethod | classmethod):
        return None
    parameters = list(inspect.signature(function).parameters)
    if parameters[:2] != [resolver.self_parameter.name, resolver.info_parameter.name]:
        return None
    names = {argument.python_name for argument in field.arguments}
    if names != set(graphql_field.args) or not all(
        isinstance(get_named_type(argument.type), GraphQLScalarType)
        for argument in graphql_field.args.values()
    ):
        return None
    resolve: Resolve = function
    return resolve


def _attribute(name: str) -> Resolve:
    def resolve(root: Any, info: object) -> Any:
        return getattr(root, name)

    return resolve

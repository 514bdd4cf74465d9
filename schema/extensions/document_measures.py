"""What a document asks for, measured without running it: its shape (depth, aliases,
directives, introspection) and an operation's cost (README "Limits").
`schema.extensions.limits` holds these against the settings.

Fragments count every time they are spread: each fragment is measured once, after the fragments
it spreads (a spread that closes a cycle counts as empty; validation refuses cycles), and a spread
adds its fragment's measure. Nothing here recurses, so no document can exhaust the stack.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SchemaMetaFieldDef,
    SelectionSetNode,
    TypeMetaFieldDef,
    TypeNameMetaFieldDef,
    get_named_type,
    value_from_ast_untyped,
)

from db.queries.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from schema.queries import MAX_NODES

#: The fields that start an introspection query (``__typename`` is always answered).
INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})


@dataclass(frozen=True)
class Shape:
    """What a selection set (its fragments expanded) asks for."""

    #: Deepest field below, the selection set's own fields being at 0; introspection not counted.
    depth: int = 0
    aliases: int = 0
    directives: int = 0
    #: The first ``__schema`` or ``__type`` field, if any.
    introspection: FieldNode | None = None


def operation_shapes(document: DocumentNode) -> list[tuple[OperationDefinitionNode, Shape]]:
    """Each operation of ``document`` with its shape (its own directives and its variables'
    included)."""
    fragments = _fragments(document)
    shapes: dict[str, Shape] = {}
    for name in _dependency_order(fragments):
        fragment = fragments[name]
        shape = selection_shape(fragment.selection_set, shapes)
        shapes[name] = _with_directives(shape, len(fragment.directives or ()))
    measured = []
    for operation in _operations(document):
        shape = selection_shape(operation.selection_set, shapes)
        own = len(operation.directives or ())
        own += sum(len(v.directives or ()) for v in operation.variable_definitions or ())
        measured.append((operation, _with_directives(shape, own)))
    return measured


def selection_shape(selection_set: SelectionSetNode, fragments: Mapping[str, Shape]) -> Shape:
    """The shape of ``selection_set``; spreads take the shapes of ``fragments`` (a missing one,
    unknown or part of a cycle, counts as empty)."""
    depth = aliases = directives = 0
    introspection: FieldNode | None = None
    # (selection set, level of its fields, inside an introspection field): no recursion, so a
    # deep document cannot exhaust the stack.
    stack = [(selection_set, 0, False)]
    while stack:
        current, level, inside = stack.pop()
        for selection in current.selections:
            directives += len(selection.directives or ())
            if isinstance(selection, FieldNode):
                aliases += selection.alias is not None
                entering = selection.name.value in INTROSPECTION_FIELDS
                introspection = introspection or (selection if entering else None)
                if not inside:
                    depth = max(depth, level)
                if selection.selection_set is not None:
                    stack.append((selection.selection_set, level + 1, inside or entering))
            elif isinstance(selection, InlineFragmentNode):
                stack.append((selection.selection_set, level, inside))
            elif isinstance(selection, FragmentSpreadNode):
                spread = fragments.get(selection.name.value)
                if spread is not None:
                    aliases += spread.aliases
                    directives += spread.directives
                    if not inside:
                        depth = max(depth, level + spread.depth)
                    introspection = introspection or spread.introspection
    return Shape(depth, aliases, directives, introspection)


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any],
) -> int:
    """Each field costs 1; the selection of a connection counts once per item it may return
    (``first``/``last``, else the default page size; at most the largest page), and that of
    ``nodes(ids:)`` once per id. Only for a valid document (validation has passed)."""
    values = {
        definition.variable.name.value: value_from_ast_untyped(definition.default_value)
        for definition in operation.variable_definitions or ()
        if definition.default_value is not None
    }
    values.update(variables)
    fragments = _fragments(document)
    costs: dict[str, int] = {}
    for name in _dependency_order(fragments):
        fragment = fragments[name]
        on = schema.get_type(fragment.type_condition.name.value)
        costs[name] = _selection_cost(schema, fragment.selection_set, on, costs, values)
    root = schema.get_root_type(operation.operation)
    return _selection_cost(schema, operation.selection_set, root, costs, values)


def _selection_cost(
    schema: GraphQLSchema,
    selection_set: SelectionSetNode,
    parent: GraphQLNamedType | None,
    fragments: Mapping[str, int],
    values: dict[str, Any],
) -> int:
    cost = 0
    stack = [(selection_set, parent, 1)]  # (selection set, its type, how many times it counts)
    while stack:
        current, parent_type, times = stack.pop()
        for selection in current.selections:
            if isinstance(selection, FieldNode):
                cost += times
                field_type = _field_type(parent_type, selection.name.value)
                if selection.selection_set is not None:
                    factor = _multiplier(selection, field_type, values)
                    stack.append((selection.selection_set, field_type, times * factor))
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                on = schema.get_type(condition.name.value) if condition else parent_type
                stack.append((selection.selection_set, on, times))
            elif isinstance(selection, FragmentSpreadNode):
                cost += times * fragments.get(selection.name.value, 0)
    return cost


_META_FIELDS = {
    "__schema": SchemaMetaFieldDef,
    "__type": TypeMetaFieldDef,
    "__typename": TypeNameMetaFieldDef,
}


def _field_type(parent: GraphQLNamedType | None, name: str) -> GraphQLNamedType | None:
    field = _META_FIELDS.get(name)
    if field is None and isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
        field = parent.fields.get(name)
    return None if field is None else get_named_type(field.type)


def _multiplier(
    field: FieldNode, field_type: GraphQLNamedType | None, values: dict[str, Any]
) -> int:
    arguments = {
        argument.name.value: value_from_ast_untyped(argument.value, values)
        for argument in field.arguments or ()
    }
    if _is_connection(field_type):
        sizes = [arguments.get("first"), arguments.get("last")]
        given = [size for size in sizes if isinstance(size, int) and not isinstance(size, bool)]
        # Over the largest page is refused by the resolver; counting it as the largest is enough.
        return min(max([*given, 0]) if given else DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    ids = arguments.get("ids")
    if isinstance(ids, list):
        return min(len(ids), MAX_NODES)
    return 1


def _is_connection(named: GraphQLNamedType | None) -> bool:
    return isinstance(named, GraphQLObjectType) and {"edges", "pageInfo"} <= named.fields.keys()


# --- fragments ---------------------------------------------------------------------------------


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }


def _operations(document: DocumentNode) -> Iterator[OperationDefinitionNode]:
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            yield definition


def _dependency_order(fragments: Mapping[str, FragmentDefinitionNode]) -> list[str]:
    """Fragment names, each after every fragment it spreads, except where a spread closes a
    cycle (validation refuses those). A walk without recursion: long chains are fine."""
    spreads = {name: _spread_names(fragment.selection_set) for name, fragment in fragments.items()}
    order: list[str] = []
    seen: set[str] = set()
    for root in fragments:
        if root in seen:
            continue
        seen.add(root)
        path = [(root, iter(spreads[root]))]
        while path:
            name, pending = path[-1]
            following = next((n for n in pending if n in fragments and n not in seen), None)
            if following is None:
                path.pop()
                order.append(name)
            else:
                seen.add(following)
                path.append((following, iter(spreads[following])))
    return order


def _spread_names(selection_set: SelectionSetNode) -> list[str]:
    names: list[str] = []
    stack = [selection_set]
    while stack:
        for selection in stack.pop().selections:
            if isinstance(selection, FragmentSpreadNode):
                names.append(selection.name.value)
            elif selection.selection_set is not None:  # type: ignore[attr-defined]
                stack.append(selection.selection_set)  # type: ignore[attr-defined]
    return names


def _with_directives(shape: Shape, directives: int) -> Shape:
    return Shape(shape.depth, shape.aliases, shape.directives + directives, shape.introspection)

"""From a validated query operation to one SQL statement that returns its ``data`` as JSON text.

The walk follows the selection sets as graphql-core's executor would (response keys in document
order, fragments applied by type condition, ``@include``/``@skip`` evaluated), and turns every
field into an SQL expression from the field's own source declaration (`schema.mapping`). A
field it has no translation for raises `Fallback`: the operation is then resolved as before, so
the compiled path only ever answers what it answers identically.

What depends on the variables' *values* without changing the statement's shape (ids, page
sizes, cursors) is bound per request by the plan's binders, which check the values exactly as
the resolvers do and fall back where a resolver would answer with an error.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from graphql import (
    BooleanValueNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
)
from graphql.execution.values import VariableValues, get_argument_values
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect

from app.errors import BadUserInput
from app.settings import Settings
from db.queries.rate_limits import charging
from schema.compiled import connections
from schema.compiled.documents import Documents
from schema.compiled.sql import (
    BY_ID,
    MEDIA_PARAMETERS,
    RELATIONS,
    TABLES,
    VIEWER,
    VISIBLE,
    Fallback,
    column_value,
    global_id,
    hmac_parameters,
    key_literal,
    media_parameters,
    media_url,
    text_literal,
)
from schema.mapping import Column, Computed, GlobalId, SignedMedia, mapping_of
from schema.queries import MAX_NODES
from schema.relay import cursor_secret, from_global_id
from schema.types.generation_job import GenerationJob
from schema.types.user import User
from schema.types.video import Video
from schema.types.voice_profile import VoiceProfile

#: A plan's parameters from the operation's variables and the cursor key.
Binder = Callable[[VariableValues, bytes], dict[str, Any]]
Fields = dict[str, list[FieldNode]]

#: json_build_object takes at most 100 arguments: 50 keys.
_MAX_KEYS = 50

_MAPPINGS = {
    name: mapping_of(graphql_type)
    for name, graphql_type in (
        ("User", User),
        ("Video", Video),
        ("GenerationJob", GenerationJob),
        ("VoiceProfile", VoiceProfile),
    )
}


@dataclass(frozen=True)
class Plan:
    """One statement and how to bind it; shared by every request with the same key."""

    #: The statement's two columns: ``data`` (the response's ``data``, JSON text) and ``ok``
    #: (whether the resolvers would answer it without an error).
    data: str
    ok: str
    binders: tuple[Binder, ...]
    sql: str = field(init=False)
    #: ``sql`` with PostgreSQL's ``$n`` parameters, and the names they stand for, in order.
    positional_sql: str = field(init=False)
    positional_names: tuple[str, ...] = field(init=False)
    #: Whether the statement signs media URLs or makes links absolute: read off its
    #: parameters, so no translation can forget to ask for `media_parameters`.
    signs_media: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sql", f"SELECT {self.data} AS data, {self.ok} AS ok")
        positional_sql, names = _positional(self.sql)
        object.__setattr__(self, "positional_sql", positional_sql)
        object.__setattr__(self, "positional_names", names)
        object.__setattr__(self, "signs_media", not MEDIA_PARAMETERS.isdisjoint(names))

    @cached_property
    def charged(self) -> tuple[str, tuple[str, ...]]:
        """``sql`` with the rate limits' charge (`db.queries.rate_limits.charging`: columns
        ``data``, ``ok``, ``taken``), positional as ``positional_sql`` is, with its names: one
        statement for a read and its charge (`schema.compiled.known`)."""
        return _positional(charging({"data": self.data, "ok": self.ok}))

    def parameters(
        self,
        variables: VariableValues,
        viewer_id: uuid.UUID,
        settings: Settings,
        bound: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """`Fallback` when a value rules the statement out (a malformed id or cursor …).
        ``bound``: what `bind` made of the same variables before."""
        cursor_key = cursor_secret(settings.secret_key)
        params: dict[str, Any] = {"viewer": viewer_id}
        params |= hmac_parameters(cursor_key)
        if self.signs_media:
            params |= media_parameters(settings)
        params |= self.bind(variables, cursor_key) if bound is None else bound
        return params

    def bind(self, variables: VariableValues, cursor_key: bytes) -> dict[str, Any]:
        """The parameters the variables give (the same for every request with them, whoever
        sends it); `Fallback` when a value rules the statement out."""
        params: dict[str, Any] = {}
        for binder in self.binders:
            params |= binder(variables, cursor_key)
        return params

    def positional(self, params: dict[str, Any], names: tuple[str, ...] | None = None) -> list[Any]:
        """``params`` in the order of ``positional_sql``'s ``$n`` (or of ``names``)."""
        return [params[name] for name in names or self.positional_names]


_ASYNCPG = asyncpg_dialect.dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy's own


def _positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """``sql`` with PostgreSQL's ``$n`` for its ``:name`` parameters, and the names in order."""
    compiled = text(sql).compile(dialect=_ASYNCPG)
    return compiled.string, tuple(compiled.positiontup or ())


class Builder:
    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: VariableValues,
    ) -> None:
        self.schema = schema
        self.variables = variables
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.operation = operation
        self.binders: list[Binder] = []
        self.checks: list[str] = []
        self.documents = Documents(self)
        self._aliases = 0

    def alias(self) -> str:
        self._aliases += 1
        return f"t{self._aliases}"

    def build(self) -> Plan:
        query = self.schema.query_type
        assert query is not None
        fields = self.collect(query, [self.operation.selection_set])
        parts = []
        for key, nodes in fields.items():
            parts += [key_literal(key), self.root_field(query, nodes)]
        data = _object(parts)
        # Every root reads as the viewer, whose account must still exist (else UNAUTHENTICATED).
        viewer_live = (
            f"EXISTS (SELECT 1 FROM users vu WHERE vu.id = {VIEWER} AND vu.deleted_at IS NULL)"
        )
        ok = " AND ".join([viewer_live, *self.checks])
        return Plan(f"CAST({data} AS text)", f"({ok})", tuple(self.binders))

    # --- selection sets ------------------------------------------------------------------

    def collect(
        self, parent: GraphQLObjectType, selection_sets: Sequence[SelectionSetNode]
    ) -> Fields:
        """Response key -> its field nodes, in document order (graphql-core's CollectFields)."""
        fields: Fields = {}
        visited: set[str] = set()

        def walk(selection_set: SelectionSetNode) -> None:
            for selection in selection_set.selections:
                if not self.included(selection):
                    continue
                if isinstance(selection, FieldNode):
                    key = (selection.alias or selection.name).value
                    fields.setdefault(key, []).append(selection)
                elif isinstance(selection, InlineFragmentNode):
                    if self.applies(selection.type_condition, parent):
                        walk(selection.selection_set)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    if name in visited:
                        continue
                    visited.add(name)
                    fragment = self.fragments[name]
                    if fragment.variable_definitions:
                        raise Fallback("fragment variables")
                    if self.applies(fragment.type_condition, parent):
                        walk(fragment.selection_set)

        for selection_set in selection_sets:
            walk(selection_set)
        if len(fields) > _MAX_KEYS:
            raise Fallback("too many keys for one json_build_object")
        return fields

    def included(self, selection: Any) -> bool:
        for directive in selection.directives or ():
            name = directive.name.value
            if name not in ("include", "skip"):
                raise Fallback(f"directive @{name}")
            (argument,) = directive.arguments
            value = argument.value
            condition: object = None
            if isinstance(value, BooleanValueNode):
                condition = value.value
            elif isinstance(value, VariableNode):
                condition = self.variables.coerced.get(value.name.value)
            else:
                raise Fallback("directive argument")
            if not isinstance(condition, bool):
                raise Fallback("directive condition")
            if condition != (name == "include"):
                return False
        return True

    def applies(self, condition: Any, parent: GraphQLObjectType) -> bool:
        if condition is None:
            return True
        target = self.schema.get_type(condition.name.value)
        if target is parent:
            return True
        return isinstance(target, GraphQLInterfaceType) and target in parent.interfaces

    def object_json(self, type_name: str, alias: str, nodes: Sequence[FieldNode]) -> str:
        graphql_type = self.schema.get_type(type_name)
        assert isinstance(graphql_type, GraphQLObjectType)
        fields = self.collect(graphql_type, [n.selection_set for n in nodes if n.selection_set])
        parts = []
        for key, field_nodes in fields.items():
            parts += [key_literal(key), self.field(graphql_type, alias, field_nodes)]
        return _object(parts)

    # --- fields --------------------------------------------------------------------------

    def field(self, parent: GraphQLObjectType, alias: str, nodes: list[FieldNode]) -> str:
        name = nodes[0].name.value
        type_name = parent.name
        if name == "__typename":
            return text_literal(type_name)
        source = _MAPPINGS[type_name].get(name)
        if isinstance(source, GlobalId):
            return global_id(source.type_name, f"{alias}.id")
        if isinstance(source, Column):
            return column_value(source.attribute, alias)
        if isinstance(source, Computed):
            column = source.attribute.property.columns[0].name
            return self.documents.field(type_name, name, f"{alias}.{column}", nodes)
        if isinstance(source, SignedMedia):
            return media_url(column_value(source.attribute, alias))
        relation = RELATIONS.get((type_name, name))
        if relation is not None:
            child_type, condition, tail = relation
            child = self.alias()
            table = TABLES[child_type].name
            where = condition.format(c=child, p=alias)
            body = self.object_json(child_type, child, nodes)
            return f"(SELECT {body} FROM {table} {child} WHERE {where}{tail.format(c=child)})"
        spec = connections.nested(type_name, name)
        if spec is not None:
            return connections.connection_sql(self, spec, f"{alias}.id", parent.fields[name], nodes)
        raise Fallback(f"{type_name}.{name}")

    def root_field(self, query: GraphQLObjectType, nodes: list[FieldNode]) -> str:
        name = nodes[0].name.value
        if name == "__typename":
            return text_literal(query.name)
        if name == "viewer":
            child = self.alias()
            body = self.object_json("User", child, nodes)
            return (
                f"(SELECT {body} FROM users {child}"
                f" WHERE {child}.id = {VIEWER} AND {child}.deleted_at IS NULL)"
            )
        if name in BY_ID:
            return self.by_id(query.fields[name], nodes, BY_ID[name])
        if name == "nodes":
            return self.by_ids(query.fields[name], nodes)
        spec = connections.root(name)
        if spec is not None:
            return connections.connection_sql(self, spec, VIEWER, query.fields[name], nodes)
        raise Fallback(f"Query.{name}")

    def by_id(self, definition: GraphQLField, nodes: list[FieldNode], expected: str | None) -> str:
        """`video(id:)`, `generationJob(id:)`, `node(id:)`: a malformed id, or one the viewer
        cannot see, is an error on the resolver path (BAD_USER_INPUT, NOT_FOUND): the
        statement's ``ok`` is false then, and the operation is resolved instead. ``node``
        chooses its type by the id's (a CASE over every type that compiles)."""
        n = len(self.binders)
        parameter, kind = f"id{n}", f"type{n}"
        choices = list(VISIBLE) if expected is None else [expected]
        node = nodes[0]

        def bind(variables: VariableValues, cursor_key: bytes) -> dict[str, Any]:
            given = get_argument_values(definition, node, variables)["id"]
            try:
                type_name, row_id = from_global_id(given, expected=expected)
            except BadUserInput:
                raise Fallback("malformed id") from None
            if type_name not in choices:
                raise Fallback(f"node of type {type_name}")
            return {parameter: row_id} | ({kind: type_name} if expected is None else {})

        self.binders.append(bind)
        rows, probes = [], []
        for type_name in choices:
            child, probe = self.alias(), self.alias()
            table, visible = TABLES[type_name].name, VISIBLE[type_name]
            where = f"{child}.id = CAST(:{parameter} AS uuid) AND {visible.format(c=child)}"
            body = self.object_json(type_name, child, nodes)
            rows.append(f"(SELECT {body} FROM {table} {child} WHERE {where})")
            found = f"{probe}.id = CAST(:{parameter} AS uuid) AND {visible.format(c=probe)}"
            probes.append(f"EXISTS (SELECT 1 FROM {table} {probe} WHERE {found})")
        if expected is not None:
            self.checks.append(probes[0])
            return rows[0]
        self.checks.append(_case(f"CAST(:{kind} AS text)", choices, probes))
        return _case(f"CAST(:{kind} AS text)", choices, rows)

    def by_ids(self, definition: GraphQLField, nodes: list[FieldNode]) -> str:
        """`nodes(ids:)`: the list in the ids' order, each entry chosen by its id's type as in
        `by_id`. One id that is malformed, of a type that does not compile, or not the
        viewer's is an error at its index on the resolver path: the check is false then."""
        n = len(self.binders)
        ids, kinds = f"ids{n}", f"types{n}"
        node = nodes[0]

        def bind(variables: VariableValues, cursor_key: bytes) -> dict[str, Any]:
            given = get_argument_values(definition, node, variables)["ids"]
            if len(given) > MAX_NODES:
                raise Fallback("too many ids")  # BAD_USER_INPUT on the resolver path
            decoded = []
            for given_id in given:
                try:
                    decoded.append(from_global_id(given_id))
                except BadUserInput:
                    raise Fallback("malformed id") from None
            if any(type_name not in VISIBLE for type_name, _ in decoded):
                raise Fallback("node of a type that does not compile")
            return {ids: [row_id for _, row_id in decoded], kinds: [t for t, _ in decoded]}

        self.binders.append(bind)
        listed = self.alias()
        rows, probes = [], []
        for type_name in VISIBLE:
            child, probe = self.alias(), self.alias()
            table, visible = TABLES[type_name].name, VISIBLE[type_name]
            body = self.object_json(type_name, child, nodes)
            where = f"{child}.id = {listed}.id AND {visible.format(c=child)}"
            rows.append(f"(SELECT {body} FROM {table} {child} WHERE {where})")
            found = f"{probe}.id = {listed}.id AND {visible.format(c=probe)}"
            probes.append(f"EXISTS (SELECT 1 FROM {table} {probe} WHERE {found})")
        given = (
            f"unnest(CAST(:{ids} AS uuid[]), CAST(:{kinds} AS text[])) WITH ORDINALITY"
            f" AS {listed}(id, kind, position)"
        )
        missing = _case(f"{listed}.kind", list(VISIBLE), probes)
        self.checks.append(f"NOT EXISTS (SELECT 1 FROM {given} WHERE NOT {missing})")
        entry = _case(f"{listed}.kind", list(VISIBLE), rows)
        return (
            f"(SELECT COALESCE(json_agg({entry} ORDER BY {listed}.position), '[]'::json)"
            f" FROM {given})"
        )

    def arguments(self, definition: GraphQLField, node: FieldNode) -> dict[str, Any]:
        return get_argument_values(definition, node, self.variables)


def _case(kind: str, choices: list[str], values: list[str]) -> str:
    """``values``' entry for the type name ``kind`` (an SQL text expression) names."""
    branches = " ".join(
        f"WHEN {text_literal(choice)} THEN {value}"
        for choice, value in zip(choices, values, strict=True)
    )
    return f"CASE {kind} {branches} END"


def _object(parts: list[str]) -> str:
    return f"json_build_object({', '.join(parts)})"

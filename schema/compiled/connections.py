"""Connections in SQL, with the keyset semantics of `db.queries.pagination.fetch_pages`.

A page is ``limit + 1`` rows read in the paging direction past the cursor (the extra row says
whether more follow); ``has_before`` is whether any row sits at or before the cursor. Backward
pages are read in reverse and aggregated in the connection's order. Cursors are signed in SQL
(`schema.compiled.sql.cursor`); a TITLE ordering's cursors carry free text, escaped in SQL as
``json.dumps`` escapes it (`schema.compiled.sql.json_ascii`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from graphql import FieldNode, GraphQLField, GraphQLObjectType, get_named_type
from graphql.execution.values import VariableValues, get_argument_values

from app.errors import BadUserInput
from schema.compiled.filters import video_filter_params, video_filter_sql
from schema.compiled.sql import (
    TABLES,
    VIEWER,
    Fallback,
    cursor,
    iso_datetime,
    json_ascii,
    key_literal,
    text_literal,
)
from schema.relay import ConnectionArgs, CursorCodec

if TYPE_CHECKING:
    from schema.compiled.plan import Builder


@dataclass(frozen=True)
class Spec:
    """One connection: its rows (``condition`` on alias ``{c}`` under parent ``{p}``) and
    orderings (GraphQL field -> column; the first is the default, descending)."""

    node_type: str
    prefix: str
    condition: str
    columns: tuple[tuple[str, str], ...]
    orderable: bool = False


_VIDEOS = Spec(
    "Video",
    "videos",
    "{c}.user_id = {p} AND {c}.deleted_at IS NULL",
    (("CREATED_AT", "created_at"), ("UPDATED_AT", "updated_at"), ("TITLE", "title")),
    orderable=True,
)
_VOICE_PROFILES = Spec(
    "VoiceProfile",
    "voice_profiles",
    "{c}.user_id = {p} AND {c}.deleted_at IS NULL",
    (("CREATED_AT", "created_at"),),
)
_JOBS = Spec(
    "GenerationJob",
    "jobs",
    "{c}.video_id = {p} AND EXISTS (SELECT 1 FROM videos ov WHERE ov.id = {c}.video_id"
    f" AND ov.user_id = {VIEWER} AND ov.deleted_at IS NULL)",
    (("QUEUED_AT", "queued_at"),),
)


def root(field_name: str) -> Spec | None:
    return {"videos": _VIDEOS, "voiceProfiles": _VOICE_PROFILES}.get(field_name)


def nested(type_name: str, field_name: str) -> Spec | None:
    return {
        ("User", "videos"): _VIDEOS,
        ("User", "voiceProfiles"): _VOICE_PROFILES,
        ("Video", "jobs"): _JOBS,
    }.get((type_name, field_name))


def connection_sql(
    builder: Builder, spec: Spec, parent: str, definition: GraphQLField, nodes: list[FieldNode]
) -> str:
    args = builder.arguments(definition, nodes[0])
    n = len(builder.binders)
    condition = spec.condition + video_filter_sql(args.get("filter"), n)
    field, descending = spec.columns[0][0], True
    order = args.get("orderBy") if spec.orderable else None
    if order is not None:
        field, descending = order["field"].value, order["direction"].value == "DESC"
    column = dict(spec.columns)[field]
    ordering = f"{spec.prefix}:{field}:{'DESC' if descending else 'ASC'}"
    free_text = field == "TITLE"
    backward = args.get("last") is not None or args.get("before") is not None
    has_cursor = args.get("after") is not None or args.get("before") is not None

    limit, value, row_id = f"CAST(:lim{n} AS integer)", f":cv{n}", f"CAST(:cid{n} AS uuid)"
    value = f"CAST({value} AS {'text' if free_text else 'timestamptz'})"
    builder.binders.append(
        _binder(definition, nodes[0], n, ordering, free_text, backward, has_cursor)
    )
    spec = replace(spec, condition=condition)

    reading = "DESC" if descending != backward else "ASC"
    table = TABLES[spec.node_type].name
    rows, inner, before = builder.alias(), builder.alias(), builder.alias()
    where = spec.condition.format(c=inner, p=parent)
    if has_cursor:
        where += f" AND ({inner}.{column}, {inner}.id) {'<' if reading == 'DESC' else '>'}"
        where += f" ({value}, {row_id})"
    order_by = f"{inner}.{column} {reading}, {inner}.id {reading}"
    page = (
        f"(SELECT {inner}.*, row_number() OVER (ORDER BY {order_by}) AS n_"
        f" FROM {table} {inner} WHERE {where} ORDER BY {order_by} LIMIT {limit} + 1) AS {rows}"
    )
    has_before = "false"
    if has_cursor:
        passed = ">=" if reading == "DESC" else "<="
        has_before = (
            f"EXISTS (SELECT 1 FROM {table} {before} WHERE"
            f" {spec.condition.format(c=before, p=parent)}"
            f" AND ({before}.{column}, {before}.id) {passed} ({value}, {row_id}))"
        )
    has_more = f"(count(*) > {limit})"
    in_page = f"{rows}.n_ <= {limit}"
    final, reverse = ("DESC", "ASC") if backward else ("ASC", "DESC")

    def cursor_of() -> str:
        value = f"{rows}.{column}"
        return cursor(
            ordering, json_ascii(value) if free_text else iso_datetime(value), f"{rows}.id"
        )

    def first_cursor(direction: str) -> str:
        ordered = f"{cursor_of()} ORDER BY {rows}.n_ {direction}"
        return f"(array_agg({ordered}) FILTER (WHERE {in_page}))[1]"

    connection_type = _object_type(definition)
    parts: list[str] = []
    for key, field_nodes in builder.collect(connection_type, _sets(nodes)).items():
        name = field_nodes[0].name.value
        if name == "__typename":
            sql = text_literal(connection_type.name)
        elif name == "totalCount":
            counted = builder.alias()
            condition = spec.condition.format(c=counted, p=parent)
            sql = f"(SELECT count(*) FROM {table} {counted} WHERE {condition})"
        elif name == "edges":
            edge_type = _object_type(connection_type.fields["edges"])
            edge_parts: list[str] = []
            for edge_key, edge_nodes in builder.collect(edge_type, _sets(field_nodes)).items():
                edge_field = edge_nodes[0].name.value
                if edge_field == "__typename":
                    edge_sql = text_literal(edge_type.name)
                elif edge_field == "cursor":
                    edge_sql = cursor_of()
                else:
                    edge_sql = builder.object_json(spec.node_type, rows, edge_nodes)
                edge_parts += [key_literal(edge_key), edge_sql]
            edge = f"json_build_object({', '.join(edge_parts)})"
            sql = (
                f"COALESCE(json_agg({edge} ORDER BY {rows}.n_ {final}) FILTER (WHERE {in_page}),"
                " '[]'::json)"
            )
        else:  # pageInfo
            info_type = _object_type(connection_type.fields["pageInfo"])
            info_parts: list[str] = []
            for info_key, info_nodes in builder.collect(info_type, _sets(field_nodes)).items():
                info_field = info_nodes[0].name.value
                if info_field == "hasNextPage":
                    info_sql = has_before if backward else has_more
                elif info_field == "hasPreviousPage":
                    info_sql = has_more if backward else has_before
                elif info_field == "startCursor":
                    info_sql = first_cursor(final)
                elif info_field == "endCursor":
                    info_sql = first_cursor(reverse)
                else:
                    info_sql = text_literal(info_type.name)
                info_parts += [key_literal(info_key), info_sql]
            sql = f"json_build_object({', '.join(info_parts)})"
        parts += [key_literal(key), sql]
    # GROUP BY (): one row even when nothing aggregates (only `totalCount` selected).
    return f"(SELECT json_build_object({', '.join(parts)}) FROM {page} GROUP BY ())"


def _binder(
    definition: GraphQLField,
    node: FieldNode,
    n: int,
    ordering: str,
    free_text: bool,
    backward: bool,
    has_cursor: bool,
) -> Any:
    def bind(variables: VariableValues, cursor_key: bytes) -> dict[str, Any]:
        args = get_argument_values(definition, node, variables)
        codec = CursorCodec(
            secret=cursor_key, ordering=ordering, value_type=str if free_text else datetime
        )
        given = ConnectionArgs(
            args.get("first"), args.get("after"), args.get("last"), args.get("before")
        )
        try:
            page = given.page_request(codec)  # the resolver's checks, to the letter
        except BadUserInput:
            raise Fallback("connection arguments") from None
        if page.backward != backward or (page.cursor is not None) != has_cursor:
            raise Fallback("arguments changed shape")  # the plan key rules it out
        params: dict[str, Any] = {f"lim{n}": page.limit}
        params |= video_filter_params(args.get("filter"), n)
        if page.cursor is not None:
            params[f"cv{n}"], params[f"cid{n}"] = page.cursor
        return params

    return bind


def _object_type(definition: GraphQLField) -> GraphQLObjectType:
    named = get_named_type(definition.type)
    assert isinstance(named, GraphQLObjectType)
    return named


def _sets(nodes: list[FieldNode]) -> list[Any]:
    return [node.selection_set for node in nodes if node.selection_set]

"""Keyset pagination for many parents in one statement (SPEC §5 Pagination, Batching).

A connection under N parents (each user's videos, each video's jobs) is read with one query:

    SELECT p.parent, <has rows before the cursor>, page.*
    FROM unnest(:parent_ids) AS p(parent)
    LEFT JOIN LATERAL (
        SELECT … FROM videos
        WHERE videos.user_id = p.parent AND <filters> AND (order_col, id) < (:value, :id)
        ORDER BY order_col DESC, id DESC
        LIMIT :limit + 1
    ) AS page ON true

Each parent is paged on its own and the inner query walks the (parent, order column, id) index,
so the cost is ``limit`` rows per parent whatever the table's size. No OFFSET anywhere: a cursor
is the last row's (order value, id), so pages stay stable while rows are added. The extra row
tells whether there is a next page; the EXISTS tells whether anything precedes the cursor.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    any_,
    bindparam,
    exists,
    false,
    func,
    literal,
    select,
    true,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased
from sqlalchemy.sql import Executable

from db.queries.arrays import bound_ids
from db.queries.detached import DetachedColumns
from db.queries.statements import StatementCache

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class Ordering:
    """A keyset order: one column, then the primary key, both in the same direction."""

    column: InstrumentedAttribute[Any]
    descending: bool


@dataclass(frozen=True)
class PageRequest:
    """One page of a connection: ``limit`` rows after (or, ``backward``, before) a cursor."""

    limit: int
    backward: bool = False
    cursor: tuple[Any, uuid.UUID] | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be between 0 and {MAX_PAGE_SIZE}")


@dataclass
class PageSlice(Generic[T]):
    """One parent's page, in the connection's order."""

    backward: bool
    rows: list[T] = field(default_factory=list)
    has_more: bool = False  # rows beyond the page, in the paging direction
    has_before_cursor: bool = False  # rows on the other side of the cursor

    @property
    def has_next_page(self) -> bool:
        return self.has_before_cursor if self.backward else self.has_more

    @property
    def has_previous_page(self) -> bool:
        return self.has_more if self.backward else self.has_before_cursor


@dataclass(frozen=True)
class Where:
    """The conditions a page or count adds to its parent filter, with their values bound at
    execution (`db.queries.statements`): ``build`` makes them with named `bindparam`
    placeholders, once per ``shape`` (same shape, same SQL), and ``values`` fills them."""

    shape: Hashable
    build: Callable[[], Sequence[ColumnElement[bool]]]
    values: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, *conditions: ColumnElement[bool]) -> Where:
        """Conditions that take no values (``deleted_at IS NULL``), named by their SQL."""
        return cls(tuple(str(condition) for condition in conditions), lambda: conditions)


async def fetch_pages(
    session: AsyncSession,
    model: type[T],
    parent_column: InstrumentedAttribute[uuid.UUID],
    parent_ids: Sequence[uuid.UUID],
    *,
    where: Where,
    ordering: Ordering,
    page: PageRequest,
    detached: bool = False,
) -> dict[uuid.UUID, PageSlice[T]]:
    """One page per parent, in one statement; every parent id gets a slice (maybe empty).

    ``detached``: the rows are `db.queries.detached` objects, not the session's instances (for
    an operation that only reads)."""
    cursor_types = None if page.cursor is None else tuple(map(_value_type, page.cursor))
    order = (ordering.column.key, ordering.descending)
    shape = (model, parent_column.key, where.shape, order, page.backward, cursor_types, detached)
    statement, columns = _PAGES.get(
        shape,
        lambda: _page_statement(
            model, parent_column, where, ordering, page.backward, page.cursor, detached=detached
        ),
    )
    values = {"parent_ids": list(parent_ids), "page_limit": page.limit + 1, **where.values}
    if page.cursor is not None:
        values["cursor_value"], values["cursor_id"] = page.cursor
    result = await session.execute(statement, values)

    slices: dict[uuid.UUID, PageSlice[T]] = {
        pid: PageSlice(backward=page.backward) for pid in parent_ids
    }
    rows: Any = (
        result
        if columns is None
        else ((found[0], found[1], columns.row(found[2:])) for found in result)
    )
    for parent_id, has_before, item in rows:
        current = slices[parent_id]
        current.has_before_cursor = bool(has_before)
        if item is None:
            continue
        if len(current.rows) < page.limit:
            current.rows.append(item)
        else:
            current.has_more = True
    if page.backward:
        for current in slices.values():
            current.rows.reverse()
    return slices


async def count_for_parents(
    session: AsyncSession,
    parent_column: InstrumentedAttribute[uuid.UUID],
    parent_ids: Sequence[uuid.UUID],
    *,
    where: Where,
) -> dict[uuid.UUID, int]:
    """``totalCount`` for many parents in one ``GROUP BY`` statement (0 for parents with none)."""
    statement = _COUNTS.get(
        (parent_column.class_, parent_column.key, where.shape),
        lambda: _count_statement(parent_column, where),
    )
    values = {"parent_ids": list(parent_ids), **where.values}
    counts: dict[uuid.UUID, int] = dict((await session.execute(statement, values)).all())
    return {pid: counts.get(pid, 0) for pid in parent_ids}


_PARENT_IDS = bound_ids("parent_ids")
_PAGES: StatementCache[tuple[Executable, DetachedColumns[Any] | None]] = StatementCache()
_COUNTS: StatementCache[Executable] = StatementCache()


def _count_statement(parent_column: InstrumentedAttribute[uuid.UUID], where: Where) -> Executable:
    return (
        select(parent_column, func.count())
        .where(parent_column == any_(_PARENT_IDS), *where.build())
        .group_by(parent_column)
    )


def _value_type(value: Any) -> Hashable:
    """What decides the type a cursor value is bound as (`literal` tells a datetime with a
    time zone from one without)."""
    return (type(value), isinstance(value, datetime) and value.tzinfo is not None)


def _page_statement(
    model: type[Any],
    parent_column: InstrumentedAttribute[uuid.UUID],
    where: Where,
    ordering: Ordering,
    backward: bool,
    cursor_example: tuple[Any, uuid.UUID] | None,
    *,
    detached: bool,
) -> tuple[Executable, DetachedColumns[Any] | None]:
    """The statement, and for ``detached`` rows the columns it selects them as."""
    id_column: InstrumentedAttribute[uuid.UUID] = model.id
    parents = func.unnest(_PARENT_IDS).table_valued("parent_id").render_derived(name="parents")
    parent = parents.c.parent_id
    # Walking backward (last/before) reads in the reverse order and flips the rows afterwards.
    descending = ordering.descending != backward
    key = tuple_(ordering.column, id_column)
    filters = list(where.build())
    conditions = [parent_column == parent, *filters]
    cursor = None
    if cursor_example is not None:
        # Typed as `literal` would type the values themselves.
        value, row_id = cursor_example
        cursor = tuple_(
            bindparam("cursor_value", type_=literal(value).type),
            bindparam("cursor_id", type_=literal(row_id).type),
        )
        conditions.append(key < cursor if descending else key > cursor)

    order_by = (
        (ordering.column.desc(), id_column.desc())
        if descending
        else (ordering.column.asc(), id_column.asc())
    )
    inner = (
        select(model)
        .where(*conditions)
        .order_by(*order_by)
        .limit(bindparam("page_limit", type_=Integer))
        .lateral("page")
    )
    before = _has_rows_before(model, parent_column, parent, filters, key, cursor, descending)
    columns = DetachedColumns.of(model, inner) if detached else None
    selected = [aliased(model, inner)] if columns is None else columns.columns
    statement = (
        select(parent, before.label("has_before"), *selected)
        .select_from(parents)
        .outerjoin(inner, true())
        .order_by(parent, *_inner_order(inner, ordering, descending))
    )
    return statement, columns


def _has_rows_before(
    model: type[Any],
    parent_column: InstrumentedAttribute[uuid.UUID],
    parent: ColumnElement[uuid.UUID],
    where: Sequence[ColumnElement[bool]],
    key: ColumnElement[Any],
    cursor: ColumnElement[Any] | None,
    descending: bool,
) -> ColumnElement[bool]:
    if cursor is None:
        return false()
    # The rows the cursor has already passed: the cursor row itself, and everything before it.
    passed = key >= cursor if descending else key <= cursor
    return exists(
        select(literal(1)).select_from(model).where(and_(parent_column == parent, *where, passed))
    )


def _inner_order(inner: Any, ordering: Ordering, descending: bool) -> list[ColumnElement[Any]]:
    column = inner.c[ordering.column.key]
    id_column = inner.c["id"]
    if descending:
        return [column.desc(), id_column.desc()]
    return [column.asc(), id_column.asc()]

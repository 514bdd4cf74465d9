"""Keyset pagination, property-tested (SPEC §5 Pagination).

Whatever the rows, the page sizes and the order, walking a connection visits every row exactly
once, in the order the connection promises (the order column, then ``id`` as the tie-breaker),
with ``hasNextPage``/``hasPreviousPage`` exactly right on every page; rows added while a client
pages never make it skip or repeat a row; and `fetch_pages` pages each parent on its own.

The end-to-end properties go through the GraphQL API; the expected order is computed here in
Python from the rows as written. Values are drawn from tiny domains so that ties on the order
column are the common case and the ``id`` tie-breaker is exercised on almost every page. Titles
use lowercase ASCII letters only, which sort the same in Python, in the C collation and in the
usual linguistic ones.

Hypothesis runs each example inside the test's one database transaction: every example works
in a savepoint that it rolls back, and under a user of its own.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import User, Video, VideoInputType
from db.queries.pagination import Ordering, PageRequest, Where, fetch_pages
from db.queries.videos import VIDEO_ORDER_COLUMNS
from schema.relay import from_global_id
from tests.factories import make_user
from tests.support.graphql import GraphQLClient

# The function-scoped fixtures (one transaction, one app) serve every example of a test; each
# example isolates itself (`own_example`). No example database: runs leave nothing behind.
PROPERTY_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
# The unparametrized properties are cheaper per example and get more of them.
MORE_EXAMPLES = settings(PROPERTY_SETTINGS, max_examples=60)

FIELDS = ("CREATED_AT", "UPDATED_AT", "TITLE")
ORDERS = [(field, direction) for field in FIELDS for direction in ("ASC", "DESC")]

BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)
# Offsets from BASE_TIME: equal values (ties), one microsecond apart (the cursor must keep full
# precision) and further apart. None leaves the column to its default, the transaction's now(),
# which every row of the test shares.
TIME_OFFSETS = st.sampled_from([0, 1, 2, 1_000_000, 1_000_001, 3_600_000_000])
TITLES = st.text(alphabet="ab", min_size=1, max_size=2)

CONNECTION_FIELDS = """
  totalCount
  pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  edges { cursor node { id } }
"""
QUERY_VIDEOS = f"""
query Page($first: Int, $after: String, $last: Int, $before: String, $order: VideoOrder) {{
  videos(first: $first, after: $after, last: $last, before: $before, orderBy: $order) {{
    {CONNECTION_FIELDS}
  }}
}}
"""
VIEWER_VIDEOS = f"""
query Page($first: Int, $after: String, $last: Int, $before: String, $order: VideoOrder) {{
  viewer {{
    videos(first: $first, after: $after, last: $last, before: $before, orderBy: $order) {{
      {CONNECTION_FIELDS}
    }}
  }}
}}
"""


# --- rows -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowSpec:
    """One video to write; ``None`` timestamps keep the database default.

    Ids are drawn too (``id_rank`` gives their order), not left to ``gen_random_uuid()``: the
    tie-breaker decides the order, and an example must replay the same way when Hypothesis
    shrinks it.
    """

    title: str
    created_offset: int | None
    updated_offset: int | None
    deleted: bool
    id_rank: int


def live_row_specs(*, max_size: int, min_size: int = 0) -> st.SearchStrategy[list[RowSpec]]:
    """Mostly live rows, now and then a soft-deleted one (which must never be listed)."""
    spec = st.builds(
        RowSpec,
        title=TITLES,
        created_offset=st.none() | TIME_OFFSETS,
        updated_offset=st.none() | TIME_OFFSETS,
        deleted=st.sampled_from([False, False, False, False, True]),
        id_rank=st.integers(min_value=0, max_value=2**16 - 1),
    )
    return st.lists(spec, min_size=min_size, max_size=max_size)


@dataclass(frozen=True)
class Row:
    """A written video as the expectations see it."""

    id: uuid.UUID
    title: str
    created_at: datetime
    updated_at: datetime
    deleted: bool

    def key(self, field: str) -> tuple[Any, uuid.UUID]:
        return (self.value(field), self.id)

    def value(self, field: str) -> Any:
        return getattr(self, VIDEO_ORDER_COLUMNS[field].key)


class Example:
    """What one Hypothesis example writes: its own owner, rows with reproducible ids."""

    def __init__(self, session: AsyncSession, owner: User) -> None:
        self.session = session
        self.owner = owner
        self._serial = itertools.count(1)

    async def write(self, specs: Sequence[RowSpec], owner: User | None = None) -> list[Row]:
        videos: list[Video] = []
        for spec in specs:
            values: dict[str, Any] = {
                # Drawn rank first, a serial number after it: unique, and ordered by the draw.
                "id": uuid.UUID(int=spec.id_rank << 64 | next(self._serial)),
                "user_id": (owner or self.owner).id,
                "title": spec.title,
                "input_type": VideoInputType.DESCRIPTION,
            }
            if spec.created_offset is not None:
                values["created_at"] = BASE_TIME + timedelta(microseconds=spec.created_offset)
            if spec.updated_offset is not None:
                values["updated_at"] = BASE_TIME + timedelta(microseconds=spec.updated_offset)
            if spec.deleted:
                values["deleted_at"] = BASE_TIME
            videos.append(Video(**values))
        self.session.add_all(videos)
        await self.session.flush()  # defaulted timestamps come back in RETURNING
        return [
            Row(
                id=video.id,
                title=video.title,
                created_at=video.created_at,
                updated_at=video.updated_at,
                deleted=video.deleted_at is not None,
            )
            for video in videos
        ]


@asynccontextmanager
async def own_example(session: AsyncSession) -> AsyncIterator[Example]:
    """A fresh owner inside a savepoint that is rolled back: nothing leaks into the next example."""
    savepoint = await session.begin_nested()
    try:
        yield Example(session, await make_user(session))
    finally:
        await savepoint.rollback()


# --- the order the connection promises ------------------------------------------------------


@dataclass(frozen=True)
class Order:
    field: str
    descending: bool

    def sorted(self, rows: Sequence[Row]) -> list[Row]:
        live = [row for row in rows if not row.deleted]
        return sorted(live, key=lambda row: row.key(self.field), reverse=self.descending)

    def after(self, row: Row, cursor: tuple[Any, uuid.UUID]) -> bool:
        """Whether ``row`` comes strictly after ``cursor`` in the connection's order."""
        key = row.key(self.field)
        return key < cursor if self.descending else key > cursor

    def before(self, row: Row, cursor: tuple[Any, uuid.UUID]) -> bool:
        key = row.key(self.field)
        return key > cursor if self.descending else key < cursor

    def variables(self) -> dict[str, str]:
        return {"field": self.field, "direction": "DESC" if self.descending else "ASC"}


def ids(rows: Sequence[Row]) -> list[uuid.UUID]:
    return [row.id for row in rows]


# --- the API --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    ids: list[uuid.UUID]
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None
    total_count: int


async def fetch_page(
    client: GraphQLClient,
    order: Order,
    *,
    through_viewer: bool,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> Page:
    variables: dict[str, Any] = {
        "first": first,
        "after": after,
        "last": last,
        "before": before,
        "order": order.variables(),
    }
    data = (await client.execute(VIEWER_VIDEOS if through_viewer else QUERY_VIDEOS, variables)).ok()
    connection = data["viewer"]["videos"] if through_viewer else data["videos"]
    edges = connection["edges"]
    info = connection["pageInfo"]
    cursors = [edge["cursor"] for edge in edges]
    assert info["startCursor"] == (cursors[0] if cursors else None)
    assert info["endCursor"] == (cursors[-1] if cursors else None)
    return Page(
        ids=[from_global_id(edge["node"]["id"], expected="Video")[1] for edge in edges],
        has_next_page=info["hasNextPage"],
        has_previous_page=info["hasPreviousPage"],
        start_cursor=info["startCursor"],
        end_cursor=info["endCursor"],
        total_count=connection["totalCount"],
    )


# --- walking the whole list -----------------------------------------------------------------

page_sizes = st.integers(min_value=1, max_value=15)


@pytest.mark.parametrize(("field", "direction"), ORDERS)
@PROPERTY_SETTINGS
@given(specs=live_row_specs(max_size=24), data=st.data())
async def test_paging_forward_visits_every_row_once_in_order(
    field: str,
    direction: str,
    specs: list[RowSpec],
    data: st.DataObject,
    session: AsyncSession,
    graphql: GraphQLClient,
) -> None:
    order = Order(field, descending=direction == "DESC")
    async with own_example(session) as example:
        expected = order.sorted(await example.write(specs))
        client = graphql.as_user(example.owner.id)

        visited: list[uuid.UUID] = []
        after: str | None = None
        for _ in range(len(expected) + 1):
            size = data.draw(page_sizes, label="first")
            through_viewer = data.draw(st.booleans(), label="through User.videos")
            page = await fetch_page(
                client, order, through_viewer=through_viewer, first=size, after=after
            )
            position = len(visited)
            assert page.ids == ids(expected[position : position + size])
            assert page.has_next_page == (position + size < len(expected))
            assert page.has_previous_page == (position > 0)
            assert page.total_count == len(expected)
            visited += page.ids
            if not page.has_next_page:
                break
            after = page.end_cursor
        else:
            pytest.fail("paging forward did not finish")

        assert visited == ids(expected)
        assert len(set(visited)) == len(visited)


@pytest.mark.parametrize(("field", "direction"), ORDERS)
@PROPERTY_SETTINGS
@given(specs=live_row_specs(max_size=24), data=st.data())
async def test_paging_backward_visits_every_row_once_in_order(
    field: str,
    direction: str,
    specs: list[RowSpec],
    data: st.DataObject,
    session: AsyncSession,
    graphql: GraphQLClient,
) -> None:
    order = Order(field, descending=direction == "DESC")
    async with own_example(session) as example:
        expected = order.sorted(await example.write(specs))
        client = graphql.as_user(example.owner.id)

        visited: list[uuid.UUID] = []  # in the connection's order, growing at the front
        before: str | None = None
        for _ in range(len(expected) + 1):
            size = data.draw(page_sizes, label="last")
            through_viewer = data.draw(st.booleans(), label="through User.videos")
            page = await fetch_page(
                client, order, through_viewer=through_viewer, last=size, before=before
            )
            end = len(expected) - len(visited)
            start = max(0, end - size)
            assert page.ids == ids(expected[start:end])
            assert page.has_previous_page == (start > 0)
            assert page.has_next_page == (end < len(expected))
            assert page.total_count == len(expected)
            visited = page.ids + visited
            if not page.has_previous_page:
                break
            before = page.start_cursor
        else:
            pytest.fail("paging backward did not finish")

        assert visited == ids(expected)
        assert len(set(visited)) == len(visited)


# --- rows added while paging ----------------------------------------------------------------

MAX_ADDING_PAGES = 4  # rows are added before each of the first pages only, so paging ends
MAX_ADDED_PER_PAGE = 3
small_page_sizes = st.integers(min_value=1, max_value=6)  # more pages, more chances to add rows


@MORE_EXAMPLES
@given(
    order=st.builds(Order, field=st.sampled_from(FIELDS), descending=st.booleans()),
    backward=st.booleans(),
    specs=live_row_specs(min_size=2, max_size=16),
    data=st.data(),
)
async def test_rows_added_while_paging_never_cause_a_skip_or_a_repeat(
    order: Order,
    backward: bool,
    specs: list[RowSpec],
    data: st.DataObject,
    session: AsyncSession,
    graphql: GraphQLClient,
) -> None:
    async with own_example(session) as example:
        existing = await example.write(specs)
        rows = list(existing)
        client = graphql.as_user(example.owner.id)
        # Whether a row is still ahead of a cursor, in the direction this client walks.
        ahead: Callable[[Row, tuple[Any, uuid.UUID]], bool] = (
            order.before if backward else order.after
        )
        by_id: dict[uuid.UUID, Row] = {row.id: row for row in rows}

        visited: list[uuid.UUID] = []
        added_ahead: set[uuid.UUID] = set()
        added_behind: set[uuid.UUID] = set()
        cursor: str | None = None
        position: tuple[Any, uuid.UUID] | None = None
        for page_number in range(len(rows) + MAX_ADDING_PAGES * MAX_ADDED_PER_PAGE + 1):
            size = data.draw(small_page_sizes, label="page size")
            page = await fetch_page(
                client,
                order,
                through_viewer=data.draw(st.booleans(), label="through User.videos"),
                first=None if backward else size,
                after=None if backward else cursor,
                last=size if backward else None,
                before=cursor if backward else None,
            )

            # This page, against the rows as they are now.
            listed = order.sorted(rows)
            if position is None:
                remaining = listed if not backward else listed[::-1]
                passed: list[Row] = []
            else:
                remaining = [row for row in listed if ahead(row, position)]
                if backward:
                    remaining.reverse()
                passed = [row for row in listed if not ahead(row, position)]
            window = remaining[:size]
            assert page.ids == ids(window[::-1] if backward else window)
            more, other_side = len(remaining) > size, bool(passed)
            assert (page.has_previous_page, page.has_next_page) == (
                (more, other_side) if backward else (other_side, more)
            )

            visited += page.ids if not backward else page.ids[::-1]
            more_to_come = page.has_previous_page if backward else page.has_next_page
            if not more_to_come:
                break
            cursor = page.start_cursor if backward else page.end_cursor
            last_seen = by_id[visited[-1]]
            position = last_seen.key(order.field)

            # Someone adds videos before the next page: some land behind the client, some ahead.
            if page_number >= MAX_ADDING_PAGES:
                continue
            added = data.draw(
                live_row_specs(min_size=1, max_size=MAX_ADDED_PER_PAGE), label="added"
            )
            new_rows = await example.write(added)
            for row in new_rows:
                rows.append(row)
                by_id[row.id] = row
                if row.deleted:
                    continue
                (added_ahead if ahead(row, position) else added_behind).add(row.id)
        else:
            pytest.fail("paging did not finish")

        event(f"rows added ahead of the client: {bool(added_ahead)}")
        event(f"rows added behind the client: {bool(added_behind)}")
        assert len(set(visited)) == len(visited), "a row was listed twice"
        assert {row.id for row in existing if not row.deleted} <= set(visited), "a row was skipped"
        assert added_ahead <= set(visited), "a row added ahead of the client was never listed"
        assert not added_behind & set(visited), "a row added behind the client was listed"
        walked = [by_id[row_id] for row_id in visited]
        in_order = order.sorted(walked)
        assert visited == ids(in_order[::-1] if backward else in_order)


# --- many parents in one statement ----------------------------------------------------------


@dataclass(frozen=True)
class CursorChoice:
    """Where the cursor sits: at a row of some owner, at a free value, or absent."""

    kind: str  # "none" | "row" | "value"
    index: int
    offset: int
    title: str


cursor_choices = st.builds(
    CursorChoice,
    kind=st.sampled_from(["none", "row", "value"]),
    index=st.integers(min_value=0, max_value=1000),
    offset=TIME_OFFSETS,
    title=TITLES,
)


@MORE_EXAMPLES
@given(
    order=st.builds(Order, field=st.sampled_from(FIELDS), descending=st.booleans()),
    owners_specs=st.lists(live_row_specs(max_size=10), min_size=1, max_size=4),
    with_unknown_parent=st.booleans(),
    limit=st.integers(min_value=0, max_value=8),
    backward=st.booleans(),
    choice=cursor_choices,
    shuffle=st.randoms(use_true_random=False),
)
async def test_fetch_pages_pages_each_parent_on_its_own(
    order: Order,
    owners_specs: list[list[RowSpec]],
    with_unknown_parent: bool,
    limit: int,
    backward: bool,
    choice: CursorChoice,
    shuffle: random.Random,
    session: AsyncSession,
) -> None:
    async with own_example(session) as example:
        owners = [example.owner, *[await make_user(session) for _ in owners_specs[1:]]]
        rows_by_owner = {
            owner.id: await example.write(specs, owner)
            for owner, specs in zip(owners, owners_specs, strict=True)
        }
        parent_ids = list(rows_by_owner)
        if with_unknown_parent:
            parent_ids.append(uuid.UUID(int=(1 << 128) - 1))  # no such owner
        shuffle.shuffle(parent_ids)

        every_row = [row for rows in rows_by_owner.values() for row in rows]
        cursor: tuple[Any, uuid.UUID] | None
        if choice.kind == "row" and every_row:
            cursor = every_row[choice.index % len(every_row)].key(order.field)
        elif choice.kind == "value":
            value: Any = (
                choice.title
                if order.field == "TITLE"
                else BASE_TIME + timedelta(microseconds=choice.offset)
            )
            cursor = (value, uuid.UUID(int=choice.index << 64))
        else:
            cursor = None

        page = PageRequest(limit=limit, backward=backward, cursor=cursor)
        ordering = Ordering(VIDEO_ORDER_COLUMNS[order.field], descending=order.descending)
        where = Where.of(Video.deleted_at.is_(None))
        slices = await fetch_pages(
            session, Video, Video.user_id, parent_ids, where=where, ordering=ordering, page=page
        )

        assert set(slices) == set(parent_ids)
        for parent_id in parent_ids:
            listed = order.sorted(rows_by_owner.get(parent_id, []))
            if cursor is None:
                remaining, passed = listed, []
            elif backward:
                remaining = [row for row in listed if order.before(row, cursor)]
                passed = [row for row in listed if not order.before(row, cursor)]
            else:
                remaining = [row for row in listed if order.after(row, cursor)]
                passed = [row for row in listed if not order.after(row, cursor)]
            if backward:
                window = remaining[max(0, len(remaining) - limit) :] if limit else []
            else:
                window = remaining[:limit]

            got = slices[parent_id]
            assert [row.id for row in got.rows] == ids(window), parent_id
            assert all(row.user_id == parent_id for row in got.rows)
            assert got.has_more == (len(remaining) > limit)
            assert got.has_before_cursor == bool(passed)

            # The same page, asked for this parent alone.
            alone = await fetch_pages(
                session,
                Video,
                Video.user_id,
                [parent_id],
                where=where,
                ordering=ordering,
                page=page,
            )
            assert [row.id for row in alone[parent_id].rows] == [row.id for row in got.rows]
            assert alone[parent_id].has_next_page == got.has_next_page
            assert alone[parent_id].has_previous_page == got.has_previous_page

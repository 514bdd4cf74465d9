"""Every list order and filter is index-backed, and no list uses OFFSET (SPEC §5 Pagination).

The statements are the ones `db.queries` really sends: they are captured on the connection
(``before_cursor_execute``) and explained with the same parameters.

Plans depend on statistics, and a table of a handful of rows is read faster whole than through
any index, so these tests run on a database of their own: migrated like every test database,
filled once with owners who have thousands of videos (the case the indexes exist for), vacuumed
and analyzed, then dropped. Each test works in a transaction that is rolled back, with
``enable_seqscan`` off so that a sequential scan shows up as a failure rather than as the
planner's preference.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.settings import Settings
from db.engine import create_engine
from db.models import VideoStatus
from db.queries import jobs, videos, voice_profiles
from db.queries.pagination import PageRequest
from db.url import DatabaseURL
from tests.support.server import PgServer

OWNERS = 6
VIDEOS_PER_OWNER = 2000
VOICE_PROFILES_PER_OWNER = 400
BIG_TABLES = {"users", "videos", "voice_profiles", "generation_jobs"}

SEED_SIZES = {
    "owners": OWNERS,
    "videos_per_owner": VIDEOS_PER_OWNER,
    "voice_profiles_per_owner": VOICE_PROFILES_PER_OWNER,
}
SEED = [
    """
    INSERT INTO users (email)
    SELECT 'owner-' || n || '@example.com' FROM generate_series(1, :owners) AS n
    """,
    # Distinct titles and timestamps; one video in 400 mentions a zeppelin; one in 50 is deleted.
    """
    INSERT INTO videos (user_id, title, description, input_type, status,
                        created_at, updated_at, deleted_at)
    SELECT u.id,
           'Video ' || n,
           CASE WHEN n % 400 = 0 THEN 'A zeppelin over the bay, part ' || n
                ELSE 'How things work, part ' || n END,
           'DESCRIPTION',
           CASE WHEN n % 3 = 0 THEN 'READY' ELSE 'DRAFT' END::video_status,
           timestamptz '2026-01-01 00:00:00+00' + n * interval '1 minute',
           timestamptz '2026-06-01 00:00:00+00' + ((n * 7919) % 5003) * interval '1 second',
           CASE WHEN n % 50 = 0 THEN timestamptz '2026-07-01 00:00:00+00' END
    FROM users AS u, generate_series(1, :videos_per_owner) AS n
    """,
    # Most videos ran once or twice; every hundredth one (all live) was retried many times.
    """
    INSERT INTO generation_jobs (video_id, status, attempt, queued_at)
    SELECT v.id, 'SUCCEEDED', 1,
           v.created_at + n * interval '1 minute'
    FROM videos AS v
    CROSS JOIN LATERAL generate_series(
        1, CASE WHEN v.title LIKE '%07' THEN 60 ELSE 1 + length(v.title) % 2 END
    ) AS n
    """,
    """
    INSERT INTO voice_profiles (user_id, name, created_at)
    SELECT u.id, 'Voice ' || n, timestamptz '2026-01-01 00:00:00+00' + n * interval '1 hour'
    FROM users AS u, generate_series(1, :voice_profiles_per_owner) AS n
    """,
]


# --- a database with statistics worth planning with -----------------------------------------


@pytest.fixture(scope="module")
def planner_database(pg_server: PgServer) -> Iterator[DatabaseURL]:
    with pg_server.temporary_database(prefix="studio_plans") as database:
        yield database


@pytest.fixture(scope="module")
async def planner_engine(
    settings: Settings, planner_database: DatabaseURL
) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings, planner_database, pooled=False)
    try:
        async with engine.begin() as connection:
            for statement in SEED:
                await connection.execute(text(statement), SEED_SIZES)
        async with engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("VACUUM ANALYZE"))
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def planner_connection(planner_engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with planner_engine.connect() as connection:
        transaction = await connection.begin()
        try:
            # Any table can be read whole; only an index scan proves that an index serves.
            await connection.execute(text("SET LOCAL enable_seqscan = off"))
            yield connection
        finally:
            await transaction.rollback()


@pytest.fixture
async def planner_session(planner_connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    async with AsyncSession(
        bind=planner_connection, join_transaction_mode="create_savepoint"
    ) as session:
        yield session


async def owner_ids(connection: AsyncConnection, count: int = 3) -> list[uuid.UUID]:
    rows = await connection.execute(
        text("SELECT id FROM users WHERE email LIKE 'owner-%' ORDER BY email LIMIT :n"),
        {"n": count},
    )
    return list(rows.scalars())


async def video_ids(connection: AsyncConnection, owner_id: uuid.UUID) -> list[uuid.UUID]:
    """A page's worth of the owner's videos, among them some retried many times."""
    rows = await connection.execute(
        text(
            "SELECT id FROM videos WHERE user_id = :owner AND deleted_at IS NULL "
            "ORDER BY title LIMIT 20"
        ),
        {"owner": owner_id},
    )
    return list(rows.scalars())


# --- capturing and explaining -------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    sql: str
    parameters: Any


@dataclass
class Captured:
    statements: list[Statement] = field(default_factory=list)

    def one(self) -> Statement:
        assert len(self.statements) == 1, [statement.sql for statement in self.statements]
        return self.statements[0]


@contextmanager
def capture(connection: AsyncConnection) -> Iterator[Captured]:
    """The statements (with their driver-level parameters) sent inside the block."""
    captured = Captured()

    def before_cursor_execute(
        _conn: Any, _cursor: Any, sql: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        if not sql.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK")):
            captured.statements.append(Statement(sql, parameters))

    sync_connection = connection.sync_connection
    assert sync_connection is not None
    event.listen(sync_connection, "before_cursor_execute", before_cursor_execute)
    try:
        yield captured
    finally:
        event.remove(sync_connection, "before_cursor_execute", before_cursor_execute)


@dataclass(frozen=True)
class PlanNode:
    node_type: str
    relation: str | None
    index: str | None
    direction: str | None
    index_cond: str | None
    parent_type: str | None
    subplan: str | None  # the SubPlan (EXISTS) the node belongs to, if any

    def describe(self) -> str:
        on = f" on {self.relation}" if self.relation else ""
        using = f" using {self.index}" if self.index else ""
        direction = f" ({self.direction})" if self.direction not in (None, "Forward") else ""
        return f"{self.node_type}{using}{on}{direction}"


@dataclass(frozen=True)
class Plan:
    nodes: list[PlanNode]

    def scans(self, relation: str, *, in_subplan: bool = False) -> list[PlanNode]:
        """The nodes that read ``relation`` (both halves of a bitmap scan)."""
        return [
            node
            for node in self.nodes
            if node.relation == relation and (node.subplan is not None) == in_subplan
        ]

    def indexes(self, relation: str) -> set[str]:
        return {node.index for node in self.nodes if node.relation == relation and node.index}

    def summary(self) -> str:
        return "; ".join(node.describe() for node in self.nodes if node.relation or node.index)


def _walk(
    node: dict[str, Any],
    parent_type: str | None,
    subplan: str | None,
    heap: str | None,
    out: list[PlanNode],
) -> None:
    if node.get("Parent Relationship") == "SubPlan":
        subplan = node.get("Subplan Name", "SubPlan")
    # A Bitmap Index Scan names no table: it feeds the Bitmap Heap Scan above it (maybe through
    # a BitmapAnd/BitmapOr).
    relation = node.get("Relation Name") or (
        heap if node["Node Type"] == "Bitmap Index Scan" else None
    )
    if node["Node Type"] == "Bitmap Heap Scan":
        heap = relation
    out.append(
        PlanNode(
            node_type=node["Node Type"],
            relation=relation,
            index=node.get("Index Name"),
            direction=node.get("Scan Direction"),
            index_cond=node.get("Index Cond"),
            parent_type=parent_type,
            subplan=subplan,
        )
    )
    for child in node.get("Plans", []):
        _walk(child, node["Node Type"], subplan, heap, out)


async def explain(connection: AsyncConnection, statement: Statement) -> Plan:
    result = await connection.exec_driver_sql(
        "EXPLAIN (FORMAT JSON) " + statement.sql, statement.parameters
    )
    document = result.scalar_one()
    if isinstance(document, str):
        document = json.loads(document)
    nodes: list[PlanNode] = []
    _walk(document[0]["Plan"], None, None, None, nodes)
    return Plan(nodes)


def assert_no_offset(statement: Statement) -> None:
    assert not re.search(r"\bOFFSET\b", statement.sql, re.IGNORECASE), statement.sql


def assert_no_sequential_scans(plan: Plan) -> None:
    sequential = [
        node.describe()
        for node in plan.nodes
        if node.node_type == "Seq Scan" and node.relation in BIG_TABLES
    ]
    assert not sequential, plan.summary()


def assert_page_read_in_index_order(
    plan: Plan, relation: str, index: str, *, backward_scan: bool
) -> PlanNode:
    """The page comes straight off ``index`` in the connection's order and stops at the LIMIT:
    an index scan directly under the Limit, no Sort in between."""
    scan = plan.scans(relation)
    assert len(scan) == 1, plan.summary()
    node = scan[0]
    assert node.node_type in {"Index Scan", "Index Only Scan"}, plan.summary()
    assert node.index == index, plan.summary()
    assert node.parent_type == "Limit", plan.summary()
    assert node.direction == ("Backward" if backward_scan else "Forward"), plan.summary()
    return node


# --- videos ---------------------------------------------------------------------------------

VIDEO_ORDER_INDEXES = {
    "CREATED_AT": "ix_videos_user_id_created_at_id",
    "UPDATED_AT": "ix_videos_user_id_updated_at_id",
    "TITLE": "ix_videos_user_id_title_id",
}


# Cursors in the middle of each owner's list, where hundreds of rows lie on either side.
MIDDLE_VALUES: dict[str, Any] = {
    "CREATED_AT": datetime(2026, 1, 1, 16, 40, tzinfo=UTC),  # video 1000 of 2000
    "UPDATED_AT": datetime(2026, 6, 1, 0, 41, 40, tzinfo=UTC),  # halfway through the spread
    "TITLE": "Video 5",
    "VOICE_PROFILES": datetime(2026, 1, 9, 8, tzinfo=UTC),  # profile 200 of 400
}


def middle_cursor(key: str) -> tuple[Any, uuid.UUID]:
    return (MIDDLE_VALUES[key], uuid.UUID(int=2**127))


@pytest.mark.parametrize("paging", ["first page", "after a cursor", "before a cursor"])
@pytest.mark.parametrize("descending", [True, False], ids=["DESC", "ASC"])
@pytest.mark.parametrize("order_field", list(VIDEO_ORDER_INDEXES))
async def test_each_video_order_reads_its_own_index(
    order_field: str,
    descending: bool,
    paging: str,
    planner_connection: AsyncConnection,
    planner_session: AsyncSession,
) -> None:
    owners = await owner_ids(planner_connection)
    cursor = None if paging == "first page" else middle_cursor(order_field)
    backward = paging == "before a cursor"
    with capture(planner_connection) as captured:
        await videos.list_for_owners(
            planner_session,
            owners,
            video_filter=videos.VideoFilter(),
            order=videos.VideoOrder(order_field, descending=descending),
            page=PageRequest(limit=20, backward=backward, cursor=cursor),
        )
    statement = captured.one()
    assert_no_offset(statement)
    plan = await explain(planner_connection, statement)

    index = VIDEO_ORDER_INDEXES[order_field]
    page_scan = assert_page_read_in_index_order(
        plan, "videos", index, backward_scan=descending != backward
    )
    if cursor is not None:
        # The keyset condition narrows the index range; it is not a filter over read rows.
        assert page_scan.index_cond is not None
        assert "ROW(" in page_scan.index_cond, plan.summary()
        # "Is there anything on the other side of the cursor?" probes the same index.
        (probe,) = plan.scans("videos", in_subplan=True)
        assert probe.index == index, plan.summary()
        assert probe.node_type in {"Index Scan", "Index Only Scan"}, plan.summary()
    else:
        assert plan.scans("videos", in_subplan=True) == []
    assert_no_sequential_scans(plan)


async def test_video_filters_stay_on_the_order_index(
    planner_connection: AsyncConnection, planner_session: AsyncSession
) -> None:
    """Status, input type and date filters narrow the rows read off the order index."""
    owners = await owner_ids(planner_connection)
    with capture(planner_connection) as captured:
        await videos.list_for_owners(
            planner_session,
            owners,
            video_filter=videos.VideoFilter(
                statuses=(VideoStatus.READY,),
                created_after=datetime(2026, 1, 1, 6, tzinfo=UTC),
                created_before=datetime(2026, 1, 2, tzinfo=UTC),
            ),
            order=videos.VideoOrder("CREATED_AT", descending=True),
            page=PageRequest(limit=20),
        )
    statement = captured.one()
    assert_no_offset(statement)
    plan = await explain(planner_connection, statement)
    assert plan.indexes("videos") == {"ix_videos_user_id_created_at_id"}, plan.summary()
    assert_no_sequential_scans(plan)


async def test_video_search_uses_the_search_index(
    planner_connection: AsyncConnection, planner_session: AsyncSession
) -> None:
    owners = await owner_ids(planner_connection)
    with capture(planner_connection) as captured:
        await videos.list_for_owners(
            planner_session,
            owners,
            video_filter=videos.VideoFilter(search="zeppelin"),
            order=videos.VideoOrder(),
            page=PageRequest(limit=20),
        )
    statement = captured.one()
    assert_no_offset(statement)
    plan = await explain(planner_connection, statement)
    assert "ix_videos_search" in plan.indexes("videos"), plan.summary()
    assert_no_sequential_scans(plan)


async def test_video_count_uses_an_owner_index(
    planner_connection: AsyncConnection, planner_session: AsyncSession
) -> None:
    owners = await owner_ids(planner_connection)
    with capture(planner_connection) as captured:
        counts = await videos.count_for_owners(
            planner_session, owners, video_filter=videos.VideoFilter()
        )
    assert set(counts.values()) == {VIDEOS_PER_OWNER - VIDEOS_PER_OWNER // 50}
    statement = captured.one()
    assert_no_offset(statement)
    plan = await explain(planner_connection, statement)
    used = plan.indexes("videos")
    assert used, plan.summary()
    assert all(name.startswith("ix_videos_user_id") for name in used), plan.summary()
    assert_no_sequential_scans(plan)


# --- voice profiles -------------------------------------------------------------------------


@pytest.mark.parametrize("paging", ["first page", "after a cursor", "before a cursor"])
async def test_voice_profile_pages_read_their_index(
    paging: str, planner_connection: AsyncConnection, planner_session: AsyncSession
) -> None:
    owners = await owner_ids(planner_connection)
    cursor = None if paging == "first page" else middle_cursor("VOICE_PROFILES")
    backward = paging == "before a cursor"
    with capture(planner_connection) as captured:
        await voice_profiles.list_for_owners(
            planner_session, owners, page=PageRequest(limit=20, backward=backward, cursor=cursor)
        )
    statement = captured.one()
    assert_no_offset(statement)
    plan = await explain(planner_connection, statement)
    assert_page_read_in_index_order(
        plan,
        "voice_profiles",
        "ix_voice_profiles_user_id_created_at_id",
        backward_scan=not backward,  # newest first
    )
    assert_no_sequential_scans(plan)


# --- generation jobs ------------------------------------------------------------------------


JOB_INDEX = "ix_generation_jobs_video_id_queued_at_id"


def assert_reads_jobs_by_video_through_the_index(plan: Plan, *, in_subplan: bool = False) -> None:
    index_scans = [
        node
        for node in plan.scans("generation_jobs", in_subplan=in_subplan)
        if node.index is not None
    ]
    assert index_scans, plan.summary()
    for node in index_scans:
        assert node.index == JOB_INDEX, plan.summary()
        assert node.index_cond is not None
        assert "video_id" in node.index_cond, plan.summary()


@pytest.mark.parametrize("paging", ["first page", "after a cursor", "before a cursor"])
async def test_job_pages_use_the_video_queue_index(
    paging: str, planner_connection: AsyncConnection, planner_session: AsyncSession
) -> None:
    (owner,) = await owner_ids(planner_connection, 1)
    videos_of_owner = await video_ids(planner_connection, owner)
    cursor: tuple[Any, uuid.UUID] | None = None
    if paging != "first page":
        # Halfway through the jobs of a video that was retried many times.
        row = (
            await planner_connection.execute(
                text(
                    "SELECT j.queued_at, j.id FROM generation_jobs AS j "
                    "JOIN videos AS v ON v.id = j.video_id "
                    "WHERE v.user_id = :owner AND v.title = 'Video 1007' "
                    "ORDER BY j.queued_at DESC, j.id DESC OFFSET 30 LIMIT 1"
                ),
                {"owner": owner},
            )
        ).one()
        cursor = (row.queued_at, row.id)
    backward = paging == "before a cursor"
    with capture(planner_connection) as captured:
        await jobs.list_for_videos(
            planner_session,
            owner,
            videos_of_owner,
            page=PageRequest(limit=20, backward=backward, cursor=cursor),
        )
    statement = captured.one()
    assert_no_offset(statement)
    plan = await explain(planner_connection, statement)
    assert_reads_jobs_by_video_through_the_index(plan)
    if cursor is not None:
        assert_reads_jobs_by_video_through_the_index(plan, in_subplan=True)
    assert_no_sequential_scans(plan)


async def test_latest_job_uses_the_video_queue_index(
    planner_connection: AsyncConnection, planner_session: AsyncSession
) -> None:
    (owner,) = await owner_ids(planner_connection, 1)
    videos_of_owner = await video_ids(planner_connection, owner)
    with capture(planner_connection) as captured:
        latest = await jobs.latest_for_videos(planner_session, owner, videos_of_owner)
    assert set(latest) == set(videos_of_owner)
    statement = captured.one()
    assert_no_offset(statement)
    plan = await explain(planner_connection, statement)
    assert_reads_jobs_by_video_through_the_index(plan)
    assert_no_sequential_scans(plan)

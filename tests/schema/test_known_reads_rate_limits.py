"""With rate limits on, a read answered on the known path (`schema.compiled.known`) is charged
inside its own statement (`db.queries.rate_limits.charging`): one statement per request, a
refused one reading nothing and answered as the full path answers it, and every operation
charged once.

The app here is the one ``studio serve`` runs: its own engine, on a database of the test's own,
so that the known path runs on the driver, outside any transaction. Statements are counted at
the wire (`bench.wire_count`), since the driver path bypasses SQLAlchemy's events.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from graphql import GraphQLSchema, OperationDefinitionNode, parse
from graphql.execution.values import VariableValues, get_variable_values
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.routing import Route

from app.auth import issue_access_token
from app.main import create_app
from app.settings import Settings, load_settings
from bench.wire_count import CountingProxy, counting_proxy
from db.queries.rate_limits import Charge, charge_parameters, charging
from db.url import DatabaseURL
from schema import StudioSchema
from schema.relay import to_global_id
from schema.transport.view import GraphQLView
from tests.factories import make_user, make_video
from tests.schema.test_known_reads import known_reads
from tests.support.jobs import committing_sessions

SLOW = 0.0001  # one unit per 10,000 minutes: nothing refills while a test runs
VIDEO = "query Video($id: ID!) { video(id: $id) { id title } }"


@pytest.fixture
def proxy(migrated_database: DatabaseURL) -> Iterator[CountingProxy]:
    with counting_proxy(migrated_database) as counting:
        yield counting


class Client:
    def __init__(self, http: httpx.AsyncClient, token: str) -> None:
        self.http = http
        self.token = token

    async def post(self, variables: dict[str, Any]) -> httpx.Response:
        return await self.http.post(
            "/graphql",
            json={"query": VIDEO, "variables": variables},
            headers={"Authorization": f"Bearer {self.token}"},
        )


@asynccontextmanager
async def _studio(proxy: CountingProxy, **limits: Any) -> AsyncIterator[tuple[Any, Settings]]:
    settings = load_settings(
        database_url=proxy.url.render(hide_password=False),
        compiled_reads=True,
        rate_limit_enabled=True,
        rate_limit_operations_per_minute=SLOW,
        rate_limit_ip_operations_per_minute=SLOW,
        **limits,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app, settings


async def _users_with_videos(database: DatabaseURL, count: int) -> list[tuple[uuid.UUID, str]]:
    """Committed users, each with a video of their own: (user id, the video's global id)."""
    made: list[tuple[uuid.UUID, str]] = []
    async with committing_sessions(database) as sessions, sessions.begin() as session:
        for _ in range(count):
            user = await make_user(session)
            video = await make_video(session, user, title="Charged")
            made.append((user.id, str(to_global_id("Video", video.id))))
    return made


def _client(app: Any, settings: Settings, user_id: uuid.UUID, address: str) -> Client:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    http = httpx.AsyncClient(transport=transport, base_url="http://studio.test")
    return Client(http, issue_access_token(settings, user_id).token)


def graphql_schema(app: Any) -> GraphQLSchema:
    for route in app.routes:
        if isinstance(route, Route) and isinstance(route.endpoint, GraphQLView):
            schema = route.endpoint.schema
            assert isinstance(schema, StudioSchema)
            return schema._schema
    raise AssertionError("no GraphQL route")


def _refused(response: httpx.Response) -> None:
    body = response.json()
    assert body.get("data") is None, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED", error
    assert response.headers["Retry-After"] == str(error["extensions"]["retryAfter"])


async def test_a_known_read_and_its_charge_are_one_statement(
    proxy: CountingProxy, migrated_database: DatabaseURL
) -> None:
    [(user_id, video_id)] = await _users_with_videos(migrated_database, 1)
    async with _studio(proxy) as (app, settings):
        client = _client(app, settings, user_id, "192.0.2.10")
        first = await client.post({"id": video_id})  # the full path: the charge, the read
        assert first.json() == {"data": {"video": {"id": video_id, "title": "Charged"}}}
        proxy.take()
        for _ in range(5):
            assert (await client.post({"id": video_id})).content == first.content
        statements = proxy.take()
        assert known_reads(app).answered == 5
        await client.http.aclose()
    assert len(statements) == 5, statements
    assert all("rate_limit_buckets" in s and "json" in s for s in statements), statements


async def test_a_refused_known_read_is_refused_as_on_the_full_path_and_costs_nothing(
    proxy: CountingProxy, migrated_database: DatabaseURL
) -> None:
    """User A's bucket refuses on the known path; the address A shares with B is charged for
    none of A's refused reads."""
    (a, a_video), (b, b_video) = await _users_with_videos(migrated_database, 2)
    async with _studio(proxy, rate_limit_operations_burst=3, rate_limit_ip_operations_burst=5) as (
        app,
        settings,
    ):
        caller_a = _client(app, settings, a, "192.0.2.20")
        caller_b = _client(app, settings, b, "192.0.2.20")
        for _ in range(3):  # A: 3 of 3 (the first on the full path); the address: 3 of 5
            assert (await caller_a.post({"id": a_video})).json()["data"]["video"]
        for _ in range(3):
            _refused(await caller_a.post({"id": a_video}))
        for _ in range(2):  # the address: 5 of 5
            assert (await caller_b.post({"id": b_video})).json()["data"]["video"]
        _refused(await caller_b.post({"id": b_video}))
        # A's second and third, B's first two (the document is known, whoever sent it).
        assert known_reads(app).answered == 4
        for caller in (caller_a, caller_b):
            await caller.http.aclose()


async def test_a_known_read_handed_to_the_resolvers_is_charged_once(
    proxy: CountingProxy, migrated_database: DatabaseURL
) -> None:
    """A known read whose resolver answer carries an error (another user's video: NOT_FOUND)
    was charged by its statement; the full path charges it again, so that charge is given
    back."""
    (a, a_video), (_, b_video) = await _users_with_videos(migrated_database, 2)
    async with _studio(proxy, rate_limit_operations_burst=4) as (app, settings):
        caller = _client(app, settings, a, "192.0.2.30")
        assert (await caller.post({"id": a_video})).json()["data"]["video"]  # 1 of 4
        for _ in range(2):  # 2 and 3 of 4
            missing = (await caller.post({"id": b_video})).json()
            assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND", missing
        assert (await caller.post({"id": a_video})).json()["data"]["video"]  # 4 of 4
        _refused(await caller.post({"id": a_video}))
        await caller.http.aclose()


async def test_a_refused_known_read_scans_no_table(
    proxy: CountingProxy, migrated_database: DatabaseURL
) -> None:
    """The plan the known path runs, charged and refused: its transaction's statistics show
    no scan of the tables it reads; let through, they do."""
    [(user_id, video_id)] = await _users_with_videos(migrated_database, 1)
    async with _studio(proxy) as (app, settings):
        client = _client(app, settings, user_id, "192.0.2.40")
        assert (await client.post({"id": video_id})).json()["data"]["video"]
        await client.http.aclose()
        [plan] = [plan for plan in known_reads(app).plans.plans() if plan is not None]
        schema = graphql_schema(app)
    [operation] = parse(VIDEO).definitions
    assert isinstance(operation, OperationDefinitionNode)
    definitions = operation.variable_definitions or ()
    variables = get_variable_values(schema, definitions, {"id": video_id})
    assert isinstance(variables, VariableValues)
    params = plan.parameters(variables, user_id, settings)
    sql, names = plan.charged
    connection = await asyncpg.connect(
        migrated_database.url.set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        for burst, reads in ((0, False), (5, True)):
            charges = [Charge(f"test:{uuid.uuid4()}", timedelta(minutes=1), burst)]
            async with connection.transaction():
                row = await connection.fetchrow(
                    sql, *plan.positional(params | charge_parameters(charges), names)
                )
                scans = await connection.fetchval(_SCANS)
            assert row is not None
            assert (row["data"] is not None, scans > 0) == (reads, reads), (row, scans)
    finally:
        await connection.close()


#: Scans of the tables a read reads, in the current transaction.
_SCANS = """
SELECT COALESCE(sum(seq_scan + COALESCE(idx_scan, 0)), 0) FROM pg_stat_xact_user_tables
WHERE relname IN ('users', 'videos', 'voice_profiles', 'generation_jobs')
"""


async def test_a_charged_statement_reads_nothing_when_a_bucket_refuses(
    engine: AsyncEngine,
) -> None:
    """The read divides by zero if it runs: refused, it does not run and nothing is charged
    (not even the bucket with room); let through, it runs (and its failure undoes the charge
    with the rest of the statement)."""
    read = {"data": "CAST((SELECT 1 / (count(*) - count(*)) FROM pg_class) AS text)"}
    roomy, full = f"test:{uuid.uuid4()}", f"test:{uuid.uuid4()}"
    refused = [Charge(roomy, timedelta(minutes=1), 5), Charge(full, timedelta(minutes=1), 0)]
    async with engine.connect() as connection:
        row = (await connection.execute(text(charging(read)), charge_parameters(refused))).one()
        assert (row.taken, row.data) == (None, None)
        assert await connection.scalar(_TAT, {"key": roomy}) is None
        await connection.rollback()
        fits = charge_parameters([Charge(full, timedelta(minutes=1), 5)])
        with pytest.raises(DBAPIError, match="division by zero"):
            await connection.execute(text(charging(read)), fits)


_TAT = text("SELECT tat FROM rate_limit_buckets WHERE key = :key")


async def test_a_charged_read_leaves_its_buckets_unlocked_while_it_reads(
    database: DatabaseURL,
) -> None:
    """The charge comes after the read: while a slow read runs, another operation can lock
    (and so charge) the same bucket; the read's own charge still lands."""
    key = f"test:{uuid.uuid4()}"
    charges = [Charge(key, timedelta(minutes=1), 5)]
    reader, other = await _connect(database), await _connect(database)
    try:
        sql, args = _positional(charging({"data": "pg_sleep(1) IS NULL"}), charges)
        await other.fetchrow(sql, *args)  # the bucket's row exists
        reading = asyncio.ensure_future(reader.fetchrow(sql, *args))
        await _wait_for_event(other, reader, "PgSleep")
        async with other.transaction():
            assert await other.fetchval(_LOCK, key) == key  # NOWAIT: not locked
        row = await reading
        assert row["taken"] == [key]
    finally:
        await reader.close()
        await other.close()


async def test_a_bucket_emptied_during_the_read_refuses_its_charge(
    database: DatabaseURL,
) -> None:
    """Room when the statement started, none when it charges (another operation took the last
    unit meanwhile): the upsert decides under the row's lock, as `take` does, and refuses."""
    key = f"test:{uuid.uuid4()}"
    charges = [Charge(key, timedelta(minutes=1), 1)]
    reader, other, watcher = [await _connect(database) for _ in range(3)]
    try:
        sql, args = _positional(charging({"data": "'read'"}), charges)
        async with other.transaction():
            assert (await other.fetchrow(sql, *args))["taken"] == [key]  # locked, uncommitted
            reading = asyncio.ensure_future(reader.fetchrow(sql, *args))
            await _wait_for_event(watcher, reader, None, wait_type="Lock")
        row = await reading  # the other's charge committed: no room left
        assert (row["data"], row["taken"]) == ("read", None)
    finally:
        for connection in (reader, other, watcher):
            await connection.close()


_LOCK = "SELECT key FROM rate_limit_buckets WHERE key = $1 FOR UPDATE NOWAIT"


async def _connect(database: DatabaseURL) -> asyncpg.Connection:
    url = database.url.set(drivername="postgresql").render_as_string(hide_password=False)
    return await asyncpg.connect(url)


def _positional(sql: str, charges: list[Charge]) -> tuple[str, list[Any]]:
    compiled = text(sql).compile(dialect=asyncpg_dialect.dialect())  # type: ignore[no-untyped-call]
    values = charge_parameters(charges)
    return compiled.string, [values[name] for name in compiled.positiontup or ()]


async def _wait_for_event(
    watcher: asyncpg.Connection,
    watched: asyncpg.Connection,
    event: str | None,
    *,
    wait_type: str | None = None,
) -> None:
    """Until ``watched``'s backend waits on ``event`` (or on any event of ``wait_type``)."""
    pid = watched.get_server_pid()
    async with asyncio.timeout(10):
        while True:
            row = await watcher.fetchrow(
                "SELECT wait_event_type, wait_event FROM pg_stat_activity WHERE pid = $1", pid
            )
            if row is not None and (
                (event is not None and row["wait_event"] == event)
                or (wait_type is not None and row["wait_event_type"] == wait_type)
            ):
                return
            await asyncio.sleep(0.01)

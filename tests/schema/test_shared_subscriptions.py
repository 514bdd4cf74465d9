"""Shared subscriptions (`schema.transport.feeds`): subscribers of the same operation, variables
and viewer are served by one run, over real websockets, with each subscriber's own rules kept.

The app runs under uvicorn in a thread (`tests.schema.conftest`); what it runs is read from its
``/metrics`` (subscriptions open, and the runs serving them) and its SQL from its engine.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from app.auth import issue_access_token
from app.main import create_app
from app.settings import Settings, load_settings
from app.state import AppState
from db.models import JobStage, JobStatus
from db.url import DatabaseURL
from schema.transport.feeds import MAX_BACKLOG, Result, _Member, _Signal
from tests.support.browser import serve
from tests.support.jobs import wait_for
from tests.support.live_jobs import (
    JOB_PROGRESS,
    VIDEO_UPDATED,
    LiveJob,
    create_live_job,
    eventually,
    update_job,
    update_jobs,
    update_video,
    writer_engine,
)
from tests.support.websocket import (
    LEGACY_WS,
    TRANSPORT_WS,
    GraphQLWebSocket,
    bearer,
    open_websocket,
)

both_protocols = pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])

STEPS: list[dict[str, Any]] = [
    {"status": JobStatus.RUNNING, "stage": JobStage.SCRIPT, "progress": 10},
    {"stage": JobStage.VOICE, "progress": 40},
    {"progress": 45},
    {"stage": JobStage.CAPTIONS, "progress": 70},
]


@pytest.fixture(scope="module")
def live_overrides() -> dict[str, Any]:
    return {"max_subscriptions_per_connection": 10, "max_connections_per_user": 4}


async def _gauges(server: str, field: str = "jobProgress") -> tuple[float, float]:
    """(subscriptions open, runs serving them) of ``field``, from the app's ``/metrics``."""
    async with httpx.AsyncClient(base_url=server) as http:
        text = (await http.get("/metrics")).text
    values = {
        "studio_graphql_subscriptions_active": 0.0,
        "studio_graphql_subscription_runs_active": 0.0,
    }
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in values and sample.labels.get("field") == field:
                values[sample.name] = sample.value
    return (
        values["studio_graphql_subscriptions_active"],
        values["studio_graphql_subscription_runs_active"],
    )


async def _gauges_are(server: str, expected: tuple[float, float]) -> None:
    async def reached() -> bool:
        return await _gauges(server) == expected

    await wait_for(reached, within=10, what=f"(subscriptions, runs) == {expected}")


def _state_of(app: Starlette) -> AppState:
    state = app.state.studio
    assert isinstance(state, AppState)
    return state


@contextmanager
def _statements(app: Starlette) -> Iterator[list[str]]:
    """Every SQL statement the app sends inside the block."""
    seen: list[str] = []

    def before_cursor_execute(*args: Any) -> None:
        seen.append(str(args[2]))

    engine = _state_of(app).engine.sync_engine
    event.listen(engine, "before_cursor_execute", before_cursor_execute)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before_cursor_execute)


async def _state(ws: GraphQLWebSocket, operation_id: str) -> tuple[str, str | None, int]:
    payload = await ws.next_data(operation_id)
    assert "errors" not in payload, payload
    state = payload["data"]["jobProgress"]
    return state["status"], state["stage"], state["progress"]


async def _next_of_each(ws: GraphQLWebSocket, operations: int) -> dict[str, dict[str, Any]]:
    """The next ``jobProgress`` state of each of ``operations`` subscriptions on ``ws``, by
    operation id (in any order between them: each is sent on its own)."""
    states: dict[str, dict[str, Any]] = {}
    while len(states) < operations:
        message = await ws.receive()
        assert message["type"] in ("next", "data"), message
        assert message["id"] not in states, message
        states[message["id"]] = message["payload"]["data"]["jobProgress"]
    return states


async def _each_state(ws: GraphQLWebSocket, operations: int) -> list[tuple[str, str | None, int]]:
    states = (await _next_of_each(ws, operations)).values()
    return [(state["status"], state["stage"], state["progress"]) for state in states]


async def _subscribers(
    stack: AsyncExitStack,
    server: str,
    token: str,
    job: LiveJob,
    *,
    sockets: int,
    each: int,
    protocol: str = TRANSPORT_WS,
    first: tuple[str, str | None, int] = ("QUEUED", None, 0),
) -> list[tuple[GraphQLWebSocket, str]]:
    """``sockets`` connections with ``each`` subscriptions of ``job`` on each, every one past
    its first state, ``first``."""
    subscribers = []
    for _ in range(sockets):
        ws = await stack.enter_async_context(open_websocket(server, protocol=protocol))
        assert (await ws.init(bearer(token)))["type"] == "connection_ack"
        for index in range(each):
            await ws.subscribe(str(index), JOB_PROGRESS, {"id": job.job_gid})
            assert await _state(ws, str(index)) == first
            subscribers.append((ws, str(index)))
    return subscribers


@both_protocols
async def test_subscribers_of_one_job_share_one_run_and_its_reads(
    server: str, live_app: Starlette, writer: AsyncEngine, job: LiveJob, protocol: str
) -> None:
    """Six subscribers of one job on two sockets: one run serves them all, and each change
    costs the statements one subscriber's costs, not six times as many."""
    per_change: list[int] = []
    async with AsyncExitStack() as stack:
        alone = await _subscribers(
            stack, server, job.token, job, sockets=1, each=1, protocol=protocol
        )
        await _gauges_are(server, (1, 1))
        with _statements(live_app) as statements:
            await update_job(writer, job.job_id, **STEPS[0])
            assert await _state(*alone[0]) == ("RUNNING", "SCRIPT", 10)
        per_change.append(len(statements))

        more = await _subscribers(
            stack,
            server,
            job.token,
            job,
            sockets=2,
            each=3,
            protocol=protocol,
            first=("RUNNING", "SCRIPT", 10),
        )
        # They joined a run past its first state: theirs is the current one.
        await _gauges_are(server, (7, 1))
        sockets = list(dict.fromkeys(ws for ws, _ in more))
        for step in STEPS[1:]:
            with _statements(live_app) as statements:
                await update_job(writer, job.job_id, **step)
                states = [state for ws in sockets for state in await _each_state(ws, 3)]
                states += [await _state(*alone[0])]
            per_change.append(len(statements))
            assert len(set(states)) == 1, states
    await _gauges_are(server, (0, 0))
    assert per_change[0] > 0
    assert set(per_change) == {per_change[0]}, per_change


async def test_a_subscriber_that_joins_a_running_share_gets_the_current_state_first(
    server: str, writer: AsyncEngine, job: LiveJob
) -> None:
    async with open_websocket(server) as first, open_websocket(server) as later:
        await first.init(bearer(job.token))
        await first.subscribe("a", JOB_PROGRESS, {"id": job.job_gid})
        assert await _state(first, "a") == ("QUEUED", None, 0)
        await update_job(writer, job.job_id, **STEPS[0])
        assert await _state(first, "a") == ("RUNNING", "SCRIPT", 10)

        await later.init(bearer(job.token))
        await later.subscribe("b", JOB_PROGRESS, {"id": job.job_gid})
        assert await _state(later, "b") == ("RUNNING", "SCRIPT", 10)
        await _gauges_are(server, (2, 1))
        await update_job(writer, job.job_id, status=JobStatus.SUCCEEDED, progress=100)
        for ws, operation in ((first, "a"), (later, "b")):
            assert await _state(ws, operation) == ("SUCCEEDED", "SCRIPT", 100)
            assert await ws.receive() == {"id": operation, "type": "complete"}
    await _gauges_are(server, (0, 0))


async def test_nothing_is_shared_across_viewers(
    server: str, writer: AsyncEngine, live_settings: Settings, job: LiveJob
) -> None:
    """Another user asking for the same job, with the same document and variables, is refused
    as always while the owner's run goes on; each user's own job runs for them alone."""
    theirs = await create_live_job(writer, live_settings)
    async with open_websocket(server) as owner, open_websocket(server) as other:
        await owner.init(bearer(job.token))
        await owner.subscribe("1", JOB_PROGRESS, {"id": job.job_gid})
        assert await _state(owner, "1") == ("QUEUED", None, 0)

        await other.init(bearer(theirs.token))
        await other.subscribe("1", JOB_PROGRESS, {"id": job.job_gid})
        refused = await other.next_data("1")
        assert refused["data"] is None
        assert refused["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        assert await other.receive() == {"id": "1", "type": "complete"}
        await other.subscribe("2", JOB_PROGRESS, {"id": theirs.job_gid})
        assert await _state(other, "2") == ("QUEUED", None, 0)
        await _gauges_are(server, (2, 2))

        await update_job(writer, job.job_id, **STEPS[0])
        assert await _state(owner, "1") == ("RUNNING", "SCRIPT", 10)
        with pytest.raises(TimeoutError):  # the owner's change is not the other user's
            await other.receive(within=0.5)


async def test_each_subscriber_ends_at_its_own_tokens_expiry(
    server: str,
    writer: AsyncEngine,
    live_settings: Settings,
    job: LiveJob,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A subscriber whose token expires ends with UNAUTHENTICATED and its socket closes with
    4403, as an unshared one does; the run goes on for the others. Each has its own log line."""
    issued = datetime.now(UTC) - timedelta(seconds=live_settings.token_ttl_seconds - 2)
    short = issue_access_token(live_settings, job.user_id, now=issued).token
    caplog.set_level(logging.INFO, logger="studio.access")
    async with open_websocket(server) as lasting, open_websocket(server) as expiring:
        await lasting.init(bearer(job.token))
        await lasting.subscribe("1", JOB_PROGRESS, {"id": job.job_gid})
        assert await _state(lasting, "1") == ("QUEUED", None, 0)
        await expiring.init(bearer(short))
        await expiring.subscribe("1", JOB_PROGRESS, {"id": job.job_gid})
        assert await _state(expiring, "1") == ("QUEUED", None, 0)
        await _gauges_are(server, (2, 1))

        ended = await expiring.next_data("1")
        assert ended == {
            "data": None,
            "errors": [
                {
                    "message": "The access token has expired; connect again with a new one.",
                    "extensions": {"code": "UNAUTHENTICATED"},
                }
            ],
        }
        assert await expiring.receive() == {"id": "1", "type": "complete"}
        assert await expiring.closed() == (4403, "Token expired")

        await update_job(writer, job.job_id, **STEPS[0])
        assert await _state(lasting, "1") == ("RUNNING", "SCRIPT", 10)
        await _gauges_are(server, (1, 1))
    await _gauges_are(server, (0, 0))
    lines = [
        record
        for record in caplog.records
        if getattr(record, "operation_name", None) == "Progress"
        and getattr(record, "viewer_id", None) == str(job.user_id)
    ]
    logged = sorted((vars(record)["outcome"], vars(record)["error_codes"]) for record in lines)
    assert logged == [("error", ["UNAUTHENTICATED"]), ("ok", [])]
    assert {vars(record)["path"] for record in lines} == {"shared"}


async def test_the_run_stops_with_its_last_subscriber(
    server: str, live_app: Starlette, job: LiveJob
) -> None:
    hub = _state_of(live_app).events
    async with open_websocket(server) as ws:
        await ws.init(bearer(job.token))
        for operation in ("1", "2"):
            await ws.subscribe(operation, JOB_PROGRESS, {"id": job.job_gid})
            assert await _state(ws, operation) == ("QUEUED", None, 0)
        await _gauges_are(server, (2, 1))
        await ws.stop("1")
        await _gauges_are(server, (1, 1))
        await ws.stop("2")
        await _gauges_are(server, (0, 0))
        await eventually(lambda: hub.subscriber_count == 0, within=5, what="no listener")
        # A new subscriber starts a new run, from the current state.
        await ws.subscribe("3", JOB_PROGRESS, {"id": job.job_gid})
        assert await _state(ws, "3") == ("QUEUED", None, 0)
        await _gauges_are(server, (1, 1))


async def test_a_resumed_subscription_and_another_document_run_alone(
    server: str, writer: AsyncEngine, job: LiveJob
) -> None:
    """``afterVersion`` starts from a version of the subscriber's own; a different document
    (here one more field) is a different operation."""
    async with open_websocket(server) as ws:
        await ws.init(bearer(job.token))
        await ws.subscribe("1", JOB_PROGRESS, {"id": job.job_gid})
        assert await _state(ws, "1") == ("QUEUED", None, 0)
        resumed = (
            "subscription R($id: ID!) "
            "{ jobProgress(jobId: $id, afterVersion: 0) { id status stage progress } }"
        )
        await ws.subscribe("2", resumed, {"id": job.job_gid})
        assert (await ws.next_data("2"))["data"]["jobProgress"]["status"] == "QUEUED"
        other = JOB_PROGRESS.replace("progress video", "progress version video")
        await ws.subscribe("3", other, {"id": job.job_gid})
        assert (await ws.next_data("3"))["data"]["jobProgress"]["status"] == "QUEUED"
        await _gauges_are(server, (3, 3))
        await update_job(writer, job.job_id, **STEPS[0])
        states = await _next_of_each(ws, 3)
        assert {operation: state["stage"] for operation, state in states.items()} == {
            "1": "SCRIPT",
            "2": "SCRIPT",
            "3": "SCRIPT",
        }


async def test_a_deleted_video_ends_every_subscriber_of_its_share(
    server: str, writer: AsyncEngine, job: LiveJob
) -> None:
    async with open_websocket(server) as one, open_websocket(server, protocol=LEGACY_WS) as two:
        for ws in (one, two):
            await ws.init(bearer(job.token))
            await ws.subscribe("v", VIDEO_UPDATED, {"id": job.video_gid})
            assert (await ws.next_data("v"))["data"]["videoUpdated"]["id"] == job.video_gid
        await update_video(writer, job.video_id, deleted_at=datetime.now(UTC))
        for ws in (one, two):
            gone = await ws.next_data("v")
            assert gone["errors"][0]["extensions"]["code"] == "NOT_FOUND"
            assert (await ws.receive())["type"] == "complete"


@asynccontextmanager
async def _two_subscribers(
    database: DatabaseURL, **overrides: Any
) -> AsyncIterator[tuple[str, AsyncEngine, LiveJob, GraphQLWebSocket]]:
    """An app of the test's own (``overrides``: its settings), a job, and one websocket with two
    subscriptions of it past their first state: (the app's URL, a writer, the job, the socket)."""
    settings = load_settings(database_url=database.render(hide_password=False), **overrides)
    writer = writer_engine(database)
    try:
        job = await create_live_job(writer, settings)
        with serve(create_app(settings)) as server:
            async with open_websocket(server) as ws:
                await ws.init(bearer(job.token))
                for operation in ("1", "2"):
                    await ws.subscribe(operation, JOB_PROGRESS, {"id": job.job_gid})
                    assert await _state(ws, operation) == ("QUEUED", None, 0)
                yield server, writer, job, ws
    finally:
        await writer.dispose()


async def test_a_rate_limited_subscriber_is_refused_alone(migrated_database: DatabaseURL) -> None:
    """Each subscriber is charged its own operation: past the user's burst, the next one is
    refused RATE_LIMITED as an unshared one is, and those admitted go on."""
    limits = {
        "rate_limit_enabled": True,
        "rate_limit_operations_burst": 2,
        "rate_limit_operations_per_minute": 1,
    }
    async with _two_subscribers(migrated_database, **limits) as (_, writer, job, ws):
        await ws.subscribe("3", JOB_PROGRESS, {"id": job.job_gid})
        [refused] = (await ws.next_data("3"))["errors"]
        assert refused["extensions"]["code"] == "RATE_LIMITED"
        assert refused["extensions"]["retryAfter"] > 0
        assert await ws.receive() == {"id": "3", "type": "complete"}
        await update_job(writer, job.job_id, **STEPS[0])
        assert await _each_state(ws, 2) == [("RUNNING", "SCRIPT", 10)] * 2


async def test_off_every_subscriber_has_a_run_of_its_own(migrated_database: DatabaseURL) -> None:
    async with _two_subscribers(migrated_database, shared_subscriptions=False) as (server, *_):
        await _gauges_are(server, (2, 2))


async def test_a_subscriber_too_far_behind_is_told_so() -> None:
    """Past `MAX_BACKLOG` results not yet sent, a subscriber is behind: its connection is then
    closed (1013), and a client that resubscribes with ``afterVersion`` misses nothing."""

    class _Feed:  # what a member needs of its feed here: nothing
        pass

    member = _Member(_Feed())  # type: ignore[arg-type]
    results = [Result(str(index), ()) for index in range(MAX_BACKLOG)]
    for result in results:
        member.push(result)
    assert [await member.next() for _ in range(3)] == results[:3]
    for result in results[:4]:
        member.push(result)
    assert await member.next() is _Signal.BEHIND


PROGRESS_ONLY = (
    "subscription Progress($id: ID!) { jobProgress(jobId: $id) { id status stage progress } }"
)


async def test_rows_changed_together_are_read_again_in_one_statement(
    migrated_database: DatabaseURL,
) -> None:
    """Five jobs of two users, changed in one transaction: the five shared runs read them again
    in one statement (`schema.change_reads`), each row checked against its own viewer, and each
    subscriber gets its own job's new state and nothing else."""
    settings = load_settings(
        database_url=migrated_database.render(hide_password=False),
        subscription_reread_window_ms=200,  # wide enough for a busy machine's scheduling
    )
    writer = writer_engine(migrated_database)
    try:
        theirs = []
        for count in (3, 2):
            jobs = [await create_live_job(writer, settings)]
            for _ in range(count - 1):
                jobs.append(await create_live_job(writer, settings, user_id=jobs[0].user_id))
            theirs.append(jobs)
        app = create_app(settings)
        with serve(app) as server:
            async with AsyncExitStack() as stack:
                sockets = []
                for jobs in theirs:
                    ws = await stack.enter_async_context(open_websocket(server))
                    await ws.init(bearer(jobs[0].token))
                    for live in jobs:
                        await ws.subscribe(live.job_gid, PROGRESS_ONLY, {"id": live.job_gid})
                        assert await _state(ws, live.job_gid) == ("QUEUED", None, 0)
                    sockets.append((ws, jobs))
                await _gauges_are(server, (5, 5))
                with _statements(app) as statements:
                    everyone = [live.job_id for jobs in theirs for live in jobs]
                    await update_jobs(writer, everyone, **STEPS[0])
                    for ws, jobs in sockets:
                        states = await _next_of_each(ws, len(jobs))
                        assert set(states) == {live.job_gid for live in jobs}
                        for operation, state in states.items():
                            assert state == {
                                "id": operation,
                                "status": "RUNNING",
                                "stage": "SCRIPT",
                                "progress": 10,
                            }
                jobs_read = [sql for sql in statements if "FROM generation_jobs" in sql]
                assert len(jobs_read) == 1, statements
                assert "unnest" in jobs_read[0]
    finally:
        await writer.dispose()

"""Subscriptions over real websockets (SPEC §4 Subscription, §5 Live progress).

The app runs under uvicorn in a thread, on a database of this module's own (the app commits and
the test commits: no rolled-back transaction can be shared across threads). Jobs are changed
from the test the way a worker changes them, one committed write at a time. The app is set up
with small limits (3 operations per connection, 2 connections per user) so that the limits can
be reached.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport
from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from app.auth import issue_access_token
from app.events import EventHub
from app.settings import Settings
from db.models import GenerationJob, JobStage, JobStatus, Video
from schema.relay import to_global_id
from tests.support.live_jobs import (
    JOB_PROGRESS,
    VIDEO_UPDATED,
    VIEWER_JOBS,
    LiveJob,
    create_live_job,
    eventually,
    update_job,
    update_video,
)
from tests.support.live_states import assert_job_states
from tests.support.websocket import (
    LEGACY_WS,
    TRANSPORT_WS,
    GraphQLWebSocket,
    bearer,
    open_websocket,
    websocket_url,
)

MAX_OPERATIONS = 3
MAX_CONNECTIONS = 2


@pytest.fixture(scope="module")
def live_overrides() -> dict[str, Any]:
    return {
        "max_subscriptions_per_connection": MAX_OPERATIONS,
        "max_connections_per_user": MAX_CONNECTIONS,
    }


async def _progress(ws: GraphQLWebSocket, operation_id: str = "1") -> tuple[str, str | None, int]:
    payload = await ws.next_data(operation_id)
    assert "errors" not in payload, payload
    state = payload["data"]["jobProgress"]
    return state["status"], state["stage"], state["progress"]


# --- what a subscriber sees ---------------------------------------------------------------------


async def test_job_progress_sends_current_state_then_each_change_and_ends(
    server: str, writer: AsyncEngine, job: LiveJob
) -> None:
    async with open_websocket(server) as ws:
        assert (await ws.init(bearer(job.token)))["type"] == "connection_ack"
        await ws.subscribe("1", JOB_PROGRESS, {"id": job.job_gid})
        assert await _progress(ws) == ("QUEUED", None, 0)

        steps = [
            (JobStatus.RUNNING, JobStage.SCRIPT, 10),
            (JobStatus.RUNNING, JobStage.VOICE, 40),
            (JobStatus.RUNNING, JobStage.CAPTIONS, 70),
            (JobStatus.RUNNING, JobStage.RENDER, 90),
        ]
        for status, stage, progress in steps:
            await update_job(writer, job.job_id, status=status, stage=stage, progress=progress)
            assert await _progress(ws) == (status.value, stage.value, progress)
        await update_job(writer, job.job_id, status=JobStatus.SUCCEEDED, progress=100)
        assert await _progress(ws) == ("SUCCEEDED", "RENDER", 100)
        assert await ws.receive() == {"id": "1", "type": "complete"}


async def test_a_burst_of_changes_arrives_in_order_without_duplicates(
    server: str, writer: AsyncEngine, job: LiveJob
) -> None:
    async with open_websocket(server) as ws:
        await ws.init(bearer(job.token))
        await ws.subscribe("1", JOB_PROGRESS, {"id": job.job_gid})
        seen = [(await ws.next_data("1"))["data"]["jobProgress"]]
        assert seen[0]["status"] == "QUEUED"
        for progress in range(1, 41):
            await update_job(writer, job.job_id, status=JobStatus.RUNNING, progress=progress)
        await update_job(writer, job.job_id, status=JobStatus.FAILED, error="boom")

        while (message := await ws.receive())["type"] == "next":
            seen.append(message["payload"]["data"]["jobProgress"])
        assert message == {"id": "1", "type": "complete"}
    # In commit order, the last one always: states written faster than they are read merge
    # into the newest. Nothing twice: each state sent has a newer version than the one before.
    assert_job_states(seen, ends="FAILED")
    assert seen[-1]["progress"] == 40
    running = [state["progress"] for state in seen if state["status"] == "RUNNING"]
    assert running == sorted(set(running))


#: A run's status and stage changes, as a worker makes them.
RUN: list[dict[str, Any]] = [
    {"status": JobStatus.RUNNING, "stage": JobStage.SCRIPT, "progress": 10},
    {"stage": JobStage.VOICE, "progress": 40},
    {"progress": 45},  # progress alone: may merge into the next state
    {"stage": JobStage.CAPTIONS, "progress": 70},
    {"stage": JobStage.RENDER, "progress": 90},
    {"status": JobStatus.SUCCEEDED, "progress": 100},
]
RUN_STATES = [
    ("QUEUED", None),
    ("RUNNING", "SCRIPT"),
    ("RUNNING", "VOICE"),
    ("RUNNING", "CAPTIONS"),
    ("RUNNING", "RENDER"),
    ("SUCCEEDED", "RENDER"),
]
VERSIONED_PROGRESS = """subscription Progress($id: ID!, $after: Int) {
  jobProgress(jobId: $id, afterVersion: $after) { status stage progress version }
}"""


async def _run_in_one_transaction(writer: AsyncEngine, job_id: uuid.UUID) -> None:
    """Every step of `RUN` committed at once: each UPDATE notifies, but a re-read after the
    first notification already sees the last state."""
    async with writer.begin() as connection:
        for values in RUN:
            await connection.execute(
                update(GenerationJob).where(GenerationJob.id == job_id).values(**values)
            )


async def _job_states(ws: GraphQLWebSocket, operation_id: str) -> list[dict[str, Any]]:
    seen = []
    while (message := await ws.receive())["type"] == "next":
        assert "errors" not in message["payload"], message
        seen.append(message["payload"]["data"]["jobProgress"])
    assert message == {"id": operation_id, "type": "complete"}
    return seen


async def test_no_status_or_stage_is_skipped_however_fast_they_commit(
    server: str, writer: AsyncEngine, job: LiveJob
) -> None:
    """SPEC §5: "each change in order". Progress may merge; a status or a stage may not."""
    async with open_websocket(server) as ws:
        await ws.init(bearer(job.token))
        await ws.subscribe("1", VERSIONED_PROGRESS, {"id": job.job_gid})
        assert (await ws.next_data("1"))["data"]["jobProgress"]["status"] == "QUEUED"
        await _run_in_one_transaction(writer, job.job_id)
        seen = await _job_states(ws, "1")
    assert [(s["status"], s["stage"]) for s in seen] == RUN_STATES[1:]
    assert [s["progress"] for s in seen] == [10, 40, 70, 90, 100]
    versions = [s["version"] for s in seen]
    assert versions == sorted(set(versions))


async def test_a_resumed_subscription_first_sends_the_status_changes_it_missed(
    server: str, writer: AsyncEngine, job: LiveJob
) -> None:
    """A client that saw version 1 (QUEUED) and reconnects after the run ended gets each
    status and stage it missed, in order, then the current state; one that saw them all gets
    the current state alone."""
    await _run_in_one_transaction(writer, job.job_id)
    async with open_websocket(server) as ws:
        await ws.init(bearer(job.token))
        await ws.subscribe("1", VERSIONED_PROGRESS, {"id": job.job_gid, "after": 1})
        missed = await _job_states(ws, "1")
        assert [(s["status"], s["stage"]) for s in missed] == RUN_STATES[1:]
        await ws.subscribe("2", VERSIONED_PROGRESS, {"id": job.job_gid, "after": 3})
        later = await _job_states(ws, "2")
        assert [(s["status"], s["stage"]) for s in later] == RUN_STATES[3:]
        current = missed[-1]["version"]
        await ws.subscribe("3", VERSIONED_PROGRESS, {"id": job.job_gid, "after": current})
        assert await _job_states(ws, "3") == [missed[-1]]
        await ws.subscribe("4", VERSIONED_PROGRESS, {"id": job.job_gid, "after": -1})
        refused = await ws.next_data("4")
        assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_video_updated_sends_every_status_of_a_fast_start(
    server: str, writer: AsyncEngine, job: LiveJob
) -> None:
    """DRAFT, QUEUED and PROCESSING committed at once (a run that starts at once) all arrive."""
    query = """subscription Video($id: ID!) { videoUpdated(videoId: $id) { status version } }"""
    async with open_websocket(server) as ws:
        await ws.init(bearer(job.token))
        await ws.subscribe("v", query, {"id": job.video_gid})
        first = (await ws.next_data("v"))["data"]["videoUpdated"]
        assert first["status"] == "DRAFT"
        async with writer.begin() as connection:
            for status in ("QUEUED", "PROCESSING"):
                await connection.execute(
                    update(Video).where(Video.id == job.video_id).values(status=status)
                )
        statuses = [(await ws.next_data("v"))["data"]["videoUpdated"] for _ in range(2)]
    assert [s["status"] for s in statuses] == ["QUEUED", "PROCESSING"]
    assert [s["version"] for s in statuses] == [first["version"] + 1, first["version"] + 2]


async def test_viewer_jobs_sends_every_status_of_each_job(
    server: str, writer: AsyncEngine, job: LiveJob
) -> None:
    viewer_jobs = "subscription { viewerJobs { id status stage } }"
    async with open_websocket(server) as ws:
        await ws.init(bearer(job.token))
        await ws.subscribe("mine", viewer_jobs)
        await _run_in_one_transaction(writer, job.job_id)
        seen = [(await ws.next_data("mine"))["data"]["viewerJobs"] for _ in RUN_STATES[1:]]
    assert [(s["status"], s["stage"]) for s in seen] == RUN_STATES[1:]


async def test_a_finished_job_sends_its_state_and_ends(
    server: str, writer: AsyncEngine, job: LiveJob
) -> None:
    await update_job(writer, job.job_id, status=JobStatus.CANCELLED)
    async with open_websocket(server) as ws:
        await ws.init(bearer(job.token))
        await ws.subscribe("1", JOB_PROGRESS, {"id": job.job_gid})
        assert (await _progress(ws))[0] == "CANCELLED"
        assert await ws.receive() == {"id": "1", "type": "complete"}


async def test_other_users_job_is_not_found_like_a_missing_one(
    server: str, writer: AsyncEngine, live_settings: Settings, job: LiveJob
) -> None:
    stranger = await create_live_job(writer, live_settings)
    missing = to_global_id("GenerationJob", uuid.uuid4())
    async with open_websocket(server) as ws:
        await ws.init(bearer(stranger.token))
        answers = []
        for operation_id, job_id in (("theirs", job.job_gid), ("missing", missing)):
            await ws.subscribe(operation_id, JOB_PROGRESS, {"id": job_id})
            payload = await ws.next_data(operation_id)
            assert payload["data"] is None
            [error] = payload["errors"]
            answers.append((error["extensions"]["code"], error["message"].replace(job_id, "…")))
            assert await ws.receive() == {"id": operation_id, "type": "complete"}
    assert answers[0] == answers[1]
    assert answers[0][0] == "NOT_FOUND"


async def test_video_updated_follows_the_video_and_ends_when_it_is_deleted(
    server: str, writer: AsyncEngine, job: LiveJob
) -> None:
    async with open_websocket(server) as ws:
        await ws.init(bearer(job.token))
        await ws.subscribe("v", VIDEO_UPDATED, {"id": job.video_gid})
        assert (await ws.next_data("v"))["data"]["videoUpdated"]["status"] == "DRAFT"
        await update_video(writer, job.video_id, status="PROCESSING", progress=30)
        state = (await ws.next_data("v"))["data"]["videoUpdated"]
        assert (state["status"], state["progress"]) == ("PROCESSING", 30)

        await update_video(writer, job.video_id, deleted_at=func.now())
        payload = await ws.next_data("v")
        assert payload["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        assert await ws.receive() == {"id": "v", "type": "complete"}


async def test_viewer_jobs_sees_every_job_of_the_viewer_and_no_one_elses(
    server: str, writer: AsyncEngine, live_settings: Settings, job: LiveJob
) -> None:
    second = await create_live_job(writer, live_settings, user_id=job.user_id)
    stranger = await create_live_job(writer, live_settings)
    async with open_websocket(server) as ws:
        await ws.init(bearer(job.token))
        await ws.subscribe("mine", VIEWER_JOBS)
        # Nothing is sent before a change; then each change of either job. Each change is
        # waited for before the next is made: changes made faster than they are read may merge
        # (the viewer's first job at 10 and then 30 would arrive as 30 alone).
        await update_job(writer, stranger.job_id, status=JobStatus.RUNNING, progress=5)
        seen = []
        for changed, values in (
            (job, {"status": JobStatus.RUNNING, "progress": 10}),
            (second, {"status": JobStatus.RUNNING, "progress": 20}),
            (job, {"progress": 30}),
        ):
            await update_job(writer, changed.job_id, **values)
            seen.append((await ws.next_data("mine"))["data"]["viewerJobs"])
    # The stranger's change came first: had it been sent, it would have been the first seen.
    assert [(state["id"], state["progress"]) for state in seen] == [
        (job.job_gid, 10),
        (second.job_gid, 20),
        (job.job_gid, 30),
    ]


async def test_a_client_that_goes_away_is_unsubscribed(
    server: str, live_app: Starlette, job: LiveJob
) -> None:
    hub: EventHub = live_app.state.studio.events
    async with open_websocket(server) as ws:
        await ws.init(bearer(job.token))
        await ws.subscribe("1", JOB_PROGRESS, {"id": job.job_gid})
        await ws.subscribe("2", VIEWER_JOBS)
        await _progress(ws)
        await eventually(lambda: hub.subscriber_count == 2, within=5, what="both subscribed")
        await ws.connection.close()  # no `complete`: the client just leaves
    await eventually(lambda: hub.subscriber_count == 0, within=5, what="the unsubscribe")


async def test_a_subscription_ends_when_the_access_token_expires(
    server: str, live_settings: Settings, job: LiveJob
) -> None:
    # A token that expires in one second.
    issued = datetime.now(UTC) - timedelta(seconds=live_settings.token_ttl_seconds - 1)
    token = issue_access_token(live_settings, job.user_id, now=issued).token
    async with open_websocket(server) as ws:
        await ws.init(bearer(token))
        await ws.subscribe("1", JOB_PROGRESS, {"id": job.job_gid})
        assert await _progress(ws) == ("QUEUED", None, 0)
        payload = await ws.next_data("1")
        assert payload["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert await ws.receive() == {"id": "1", "type": "complete"}


# --- credentials -------------------------------------------------------------------------------


async def test_token_in_the_upgrade_request_header_is_enough(
    server: str, writer: AsyncEngine, job: LiveJob
) -> None:
    async with open_websocket(server, headers=bearer(job.token)) as ws:
        assert (await ws.init())["type"] == "connection_ack"
        await ws.subscribe("1", JOB_PROGRESS, {"id": job.job_gid})
        assert await _progress(ws) == ("QUEUED", None, 0)


async def test_token_in_connection_init_wins_over_a_bad_header(
    server: str, writer: AsyncEngine, job: LiveJob
) -> None:
    async with open_websocket(server, headers=bearer("not-a-token")) as ws:
        assert (await ws.init({"authorization": f"Bearer {job.token}"}))["type"] == "connection_ack"
        await ws.subscribe("1", JOB_PROGRESS, {"id": job.job_gid})
        assert await _progress(ws) == ("QUEUED", None, 0)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"Authorization": "Bearer not-a-token"}, "Invalid access token"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "Invalid access token"),
        ({}, "Missing access token"),
    ],
)
async def test_bad_or_missing_token_closes_with_4403(
    server: str, payload: dict[str, str], reason: str
) -> None:
    async with open_websocket(server) as ws:
        await ws.send({"type": "connection_init", "payload": payload})
        assert await ws.closed() == (4403, reason)


async def test_legacy_protocol_reports_a_bad_token_then_closes_with_4403(server: str) -> None:
    async with open_websocket(server, protocol=LEGACY_WS) as ws:
        answer = await ws.init({"Authorization": "Bearer not-a-token"})
        assert answer["type"] == "connection_error"
        assert answer["payload"]["extensions"]["code"] == "UNAUTHENTICATED"
        assert await ws.closed() == (4403, "Invalid access token")


async def test_legacy_graphql_ws_protocol_streams_job_progress(
    server: str, writer: AsyncEngine, job: LiveJob
) -> None:
    async with open_websocket(server, protocol=LEGACY_WS) as ws:
        assert (await ws.init({"Authorization": f"Bearer {job.token}"}))["type"] == "connection_ack"
        await ws.subscribe("1", JOB_PROGRESS, {"id": job.job_gid})
        assert await _progress(ws) == ("QUEUED", None, 0)
        await update_job(writer, job.job_id, status=JobStatus.RUNNING, progress=50)
        assert await _progress(ws) == ("RUNNING", None, 50)
        await update_job(writer, job.job_id, status=JobStatus.SUCCEEDED, progress=100)
        assert await _progress(ws) == ("SUCCEEDED", None, 100)
        assert await ws.receive() == {"id": "1", "type": "complete"}


# --- limits ------------------------------------------------------------------------------------


async def test_operations_per_connection_are_capped(server: str, job: LiveJob) -> None:
    async with open_websocket(server) as ws:
        await ws.init(bearer(job.token))
        for n in range(MAX_OPERATIONS):
            await ws.subscribe(f"s{n}", JOB_PROGRESS, {"id": job.job_gid})
            await ws.next_data(f"s{n}")
        await ws.subscribe("over", JOB_PROGRESS, {"id": job.job_gid})
        refused = await ws.receive()
        assert refused["type"] == "error"
        assert refused["id"] == "over"
        assert refused["payload"][0]["extensions"]["code"] == "RATE_LIMITED"

        # Stopping one frees its place; the connection stayed usable.
        await ws.stop("s0")
        await ws.subscribe("again", JOB_PROGRESS, {"id": job.job_gid})
        assert (await ws.next_data("again"))["data"]["jobProgress"]["id"] == job.job_gid


async def test_connections_per_user_are_capped_in_each_process(server: str, job: LiveJob) -> None:
    async with open_websocket(server) as first, open_websocket(server) as second:
        for ws in (first, second):
            assert (await ws.init(bearer(job.token)))["type"] == "connection_ack"
        async with open_websocket(server) as third:
            await third.send({"type": "connection_init", "payload": bearer(job.token)})
            assert await third.closed() == (4403, "Too many connections")
    # Closed connections no longer count.
    async with open_websocket(server) as ws:
        assert (await ws.init(bearer(job.token)))["type"] == "connection_ack"


# --- queries over a websocket, subscriptions over HTTP -----------------------------------------


async def test_queries_and_mutations_run_over_graphql_transport_ws(
    server: str, job: LiveJob
) -> None:
    async with open_websocket(server) as ws:
        await ws.init(bearer(job.token))
        await ws.subscribe("q", "query { viewer { id } }")
        assert (await ws.next_data("q"))["data"]["viewer"]["id"] == to_global_id(
            "User", job.user_id
        )
        assert await ws.receive() == {"id": "q", "type": "complete"}
        await ws.subscribe(
            "m",
            'mutation($id: ID!) { updateVideo(input: {id: $id, title: "Renamed"}) '
            "{ video { title } } }",
            {"id": job.video_gid},
        )
        assert (await ws.next_data("m"))["data"]["updateVideo"]["video"]["title"] == "Renamed"


async def test_subscriptions_are_not_served_over_http(server: str, job: LiveJob) -> None:
    async with httpx.AsyncClient(base_url=server) as client:
        response = await client.post(
            "/graphql",
            json={"query": JOB_PROGRESS, "variables": {"id": job.job_gid}},
            headers=bearer(job.token) | {"Accept": "multipart/mixed;subscriptionSpec=1.0"},
        )
    assert "Subscriptions are served over websockets" in response.text


# --- a third-party client ----------------------------------------------------------------------


async def test_gql_client_follows_a_job_to_its_end(
    server: str, writer: AsyncEngine, job: LiveJob
) -> None:
    transport = WebsocketsTransport(
        url=websocket_url(server),
        init_payload={"Authorization": f"Bearer {job.token}"},
        subprotocols=[TRANSPORT_WS],
        connect_args={"proxy": None},
    )
    seen: list[tuple[str, int]] = []
    async with Client(transport=transport) as session:
        request = GraphQLRequest(JOB_PROGRESS, variable_values={"id": job.job_gid})
        async for result in session.subscribe(request):
            state = result["jobProgress"]
            seen.append((state["status"], state["progress"]))
            if len(seen) == 1:
                await update_job(writer, job.job_id, status=JobStatus.RUNNING, progress=25)
            elif len(seen) == 2:
                await update_job(writer, job.job_id, status=JobStatus.SUCCEEDED, progress=100)
    # The loop ended because the server completed the subscription.
    assert seen == [("QUEUED", 0), ("RUNNING", 25), ("SUCCEEDED", 100)]


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_queries_and_mutations_over_a_websocket_answer_once(
    server: str, job: LiveJob, protocol: str
) -> None:
    rename = """mutation($id: ID!) {
        updateVideo(input: {id: $id, title: "Renamed over a websocket"}) { video { title } }
    }"""
    async with open_websocket(server, protocol=protocol) as ws:
        await ws.init(bearer(job.token))
        await ws.subscribe("q", "query($id: ID!) { node(id: $id) { id } }", {"id": job.job_gid})
        assert await ws.next_data("q") == {"data": {"node": {"id": job.job_gid}}}
        assert await ws.receive() == {"id": "q", "type": "complete"}
        await ws.subscribe("m", rename, {"id": job.video_gid})
        renamed = await ws.next_data("m")
        assert renamed == {
            "data": {"updateVideo": {"video": {"title": "Renamed over a websocket"}}}
        }
        assert await ws.receive() == {"id": "m", "type": "complete"}
        await ws.subscribe("bad", "{ nope }")
        refused = await ws.receive()
        assert refused["type"] == "error", refused
        assert "INTERNAL" not in str(refused)


async def test_the_upgrade_answers_with_the_request_id(server: str, job: LiveJob) -> None:
    offered = "ws-upgrade.7"
    async with open_websocket(server, headers={"X-Request-ID": offered}) as ws:
        assert ws.connection.response is not None
        assert ws.connection.response.headers["X-Request-ID"] == offered
        await ws.init(bearer(job.token))
    async with open_websocket(server) as ws:  # none offered: one is made
        assert ws.connection.response is not None
        assert len(ws.connection.response.headers["X-Request-ID"]) >= 16

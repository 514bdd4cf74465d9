"""Live progress across real processes (issue 5, item 7; SPEC §5 Live progress).

Two ``studio serve`` processes on one database. The job's row is changed from this test, one
committed write per step, the way a worker process writes progress; a client subscribed through
API process 1 (the third-party ``gql`` client, graphql-transport-ws) and one subscribed through
API process 2 (legacy graphql-ws) both see every step, in order, and the end.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

from app.settings import Settings, load_settings
from db.models import JobStage, JobStatus
from db.url import DatabaseURL
from tests.support.live_jobs import JOB_PROGRESS, create_live_job, update_job, writer_engine
from tests.support.websocket import LEGACY_WS, TRANSPORT_WS, open_websocket, websocket_url

SECRET = "live-progress-test-secret-key-0123456789"
STEPS = [
    (JobStatus.RUNNING, JobStage.SCRIPT, 5),
    (JobStatus.RUNNING, JobStage.SCRIPT, 20),
    (JobStatus.RUNNING, JobStage.VOICE, 35),
    (JobStatus.RUNNING, JobStage.VOICE, 50),
    (JobStatus.RUNNING, JobStage.CAPTIONS, 70),
    (JobStatus.RUNNING, JobStage.RENDER, 85),
    (JobStatus.SUCCEEDED, JobStage.RENDER, 100),
]


@pytest.fixture
def api_env() -> dict[str, str]:
    return {"STUDIO_SECRET_KEY": SECRET}


async def test_every_progress_step_reaches_subscribers_of_both_api_processes(
    api_processes: list[str], migrated_database: DatabaseURL
) -> None:
    settings: Settings = load_settings(
        database_url=migrated_database.render(hide_password=False), secret_key=SECRET
    )
    writer = writer_engine(migrated_database)
    job = await create_live_job(writer, settings)
    via_gql: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def follow_with_gql() -> None:
        transport = WebsocketsTransport(
            url=websocket_url(api_processes[0]),
            init_payload={"Authorization": f"Bearer {job.token}"},
            subprotocols=[TRANSPORT_WS],
            connect_args={"proxy": None},
        )
        async with Client(transport=transport) as session:
            request = GraphQLRequest(JOB_PROGRESS, variable_values={"id": job.job_gid})
            async for result in session.subscribe(request):
                via_gql.put_nowait(result["jobProgress"])

    async def next_from_gql() -> tuple[str, str | None, int]:
        state = await asyncio.wait_for(via_gql.get(), timeout=10)
        return state["status"], state["stage"], state["progress"]

    try:
        gql_follower = asyncio.create_task(follow_with_gql())
        async with open_websocket(api_processes[1], protocol=LEGACY_WS) as legacy:
            await legacy.init({"Authorization": f"Bearer {job.token}"})
            await legacy.subscribe("job", JOB_PROGRESS, {"id": job.job_gid})

            async def next_from_legacy() -> tuple[str, str | None, int]:
                state = (await legacy.next_data("job"))["data"]["jobProgress"]
                return state["status"], state["stage"], state["progress"]

            assert await next_from_gql() == ("QUEUED", None, 0)
            assert await next_from_legacy() == ("QUEUED", None, 0)
            for status, stage, progress in STEPS:
                # A worker's progress write: its own committed transaction.
                await update_job(writer, job.job_id, status=status, stage=stage, progress=progress)
                expected = (status.value, stage.value, progress)
                assert await next_from_gql() == expected
                assert await next_from_legacy() == expected
            assert await legacy.receive() == {"id": "job", "type": "complete"}
        # The gql client's loop ends when API process 1 completes the subscription.
        await asyncio.wait_for(gql_follower, timeout=10)
    finally:
        await writer.dispose()

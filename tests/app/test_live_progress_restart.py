"""A subscription outlives a database restart and loses no state (issue 5, item 7).

The app runs under uvicorn in a thread on a throwaway embedded PostgreSQL (never the shared
server), with a subscriber on a job. The database is stopped and started again:

* a progress write committed after the restart but *while the app's listener is still
  disconnected* (its NOTIFY reaches no one) arrives through the resync the listener asks for
  when it reconnects — which it does when ``/readyz`` asks, not on its own: its backoff is
  longer than the test;
* the final state, committed once the listener is back, arrives as usual and ends the stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from app.main import create_app
from app.settings import load_settings
from db.events import ChangeListener
from db.models import JobStage, JobStatus
from db.url import DatabaseURL
from tests.support.browser import serve
from tests.support.live_jobs import (
    JOB_PROGRESS,
    create_live_job,
    eventually,
    update_job,
    writer_engine,
)
from tests.support.throwaway_postgres import ThrowawayPostgres
from tests.support.websocket import GraphQLWebSocket, bearer, open_websocket

#: The listener's wait between attempts in this test (±20 % jitter): far longer than the test,
#: so the write after the restart is certainly made while it is away; ``/readyz`` ends the wait.
BACKOFF_SECONDS = 600.0


@pytest.fixture
def throwaway() -> Iterator[tuple[ThrowawayPostgres, DatabaseURL]]:
    postgres = ThrowawayPostgres()
    try:
        yield postgres, postgres.start()
    finally:
        postgres.close()


async def _progress(ws: GraphQLWebSocket) -> tuple[str, int]:
    state = (await ws.next_data("job", within=20))["data"]["jobProgress"]
    return state["status"], state["progress"]


async def test_subscription_survives_a_database_restart_without_losing_state(
    throwaway: tuple[ThrowawayPostgres, DatabaseURL],
) -> None:
    postgres, database = throwaway
    settings = load_settings(
        database_url=database.render(hide_password=False), inprocess_worker=False
    )
    app = create_app(settings)
    writer = writer_engine(database)
    try:
        with serve(app) as base_url:
            async with httpx.AsyncClient(base_url=base_url) as client:
                assert (await client.get("/readyz")).json()["checks"]["listener"] == {"ok": True}
            listener: ChangeListener = app.state.studio.listener

            def listening() -> bool:
                return listener.connected

            job = await create_live_job(writer, settings)
            async with open_websocket(base_url) as ws:
                await ws.init(bearer(job.token))
                await ws.subscribe("job", JOB_PROGRESS, {"id": job.job_gid})
                assert await _progress(ws) == ("QUEUED", 0)
                await update_job(
                    writer, job.job_id, status=JobStatus.RUNNING, stage=JobStage.VOICE, progress=30
                )
                assert await _progress(ws) == ("RUNNING", 30)

                listener.min_backoff = listener.max_backoff = BACKOFF_SECONDS
                failures = listener.failed_attempts
                await asyncio.to_thread(postgres.stop_server)
                # It noticed, tried once at once (refused), and now waits out its backoff.
                await eventually(
                    lambda: not listening() and listener.failed_attempts > failures,
                    within=10,
                    what="the listener to lose the database",
                )
                await asyncio.to_thread(postgres.start_server)

                await update_job(writer, job.job_id, progress=60)
                assert not listening(), "the write must be made while nobody listens"
                async with httpx.AsyncClient(base_url=base_url) as client:
                    await client.get("/readyz")  # makes the listener try again now
                assert await _progress(ws) == ("RUNNING", 60)  # through the resync
                assert listening()

                await update_job(writer, job.job_id, status=JobStatus.SUCCEEDED, progress=100)
                assert await _progress(ws) == ("SUCCEEDED", 100)
                assert await ws.receive() == {"id": "job", "type": "complete"}
    finally:
        await writer.dispose()

"""A client whose API process dies in the middle of a run reconnects to another one and loses no
status (SPEC §5 Live progress: "a client that reconnects loses nothing").

Real processes: two ``studio serve`` on one database and a ``studio worker`` running the job,
its stages slowed down so that the run has a middle. The client follows the job on the first
API process, which is killed (SIGKILL) while the job runs; when the run has ended, the client
subscribes on the second process with the last version it saw, and gets every status and stage
it missed, in order, then the final state.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from websockets.exceptions import ConnectionClosed

from db.models import User
from db.url import DatabaseURL
from schema.relay import to_global_id
from tests.support.jobs import committing_sessions, load_job, load_video, start_jobs, wait_for
from tests.support.processes import (
    clean_env,
    free_port,
    running_studio,
    start_studio,
    stop,
    studio_token,
    wait_until_ready,
)
from tests.support.websocket import GraphQLWebSocket, bearer, open_websocket
from tests.support.workers import Workers

PROGRESS = """subscription Progress($id: ID!, $after: Int) {
  jobProgress(jobId: $id, afterVersion: $after) { status stage progress version }
}"""


async def _states(ws: GraphQLWebSocket, seen: list[dict[str, Any]]) -> None:
    """Append each state to ``seen`` until the subscription completes."""
    while (message := await ws.receive(within=30))["type"] == "next":
        assert "errors" not in message["payload"], message
        seen.append(message["payload"]["data"]["jobProgress"])
    assert message["type"] == "complete", message


async def test_a_client_resumes_on_another_process_after_its_process_dies(
    migrated_database: DatabaseURL, tmp_path: Path, workers: Workers
) -> None:
    env = clean_env(
        DATABASE_URL=migrated_database.render(hide_password=False), STUDIO_LOG_LEVEL="WARNING"
    )
    async with committing_sessions(migrated_database) as sessions:
        (job,) = await start_jobs(sessions, 1)
        owner = (await load_video(sessions, job.video_id)).user_id
        async with sessions() as session:
            email = await session.scalar(select(User.email).where(User.id == owner))
        assert email is not None
        token = studio_token(env, email)
        job_id = to_global_id("GenerationJob", job.id)

        port, log = free_port(), tmp_path / "api1.log"
        first_api = start_studio("serve", "--port", str(port), env=env, log=log)
        try:
            wait_until_ready(port, first_api, log)
            with running_studio(env, tmp_path, name="api2") as second_api:
                seen: list[dict[str, Any]] = []
                async with open_websocket(f"http://127.0.0.1:{port}") as ws:
                    await ws.init(bearer(token))
                    await ws.subscribe("1", PROGRESS, {"id": job_id})
                    seen.append((await ws.next_data("1"))["data"]["jobProgress"])
                    assert seen[0]["status"] == "QUEUED"
                    workers.start(STUDIO_PIPELINE_STAGE_DELAY_MS="500")
                    while seen[-1]["status"] != "RUNNING":
                        seen.append((await ws.next_data("1", within=30))["data"]["jobProgress"])
                    first_api.kill()  # mid-run: the client hears nothing more from it
                    first_api.wait(timeout=10)
                    with pytest.raises(ConnectionClosed):
                        await _states(ws, seen)
                await _finished(sessions, job.id)

                after = seen[-1]["version"]
                resumed: list[dict[str, Any]] = []
                async with open_websocket(second_api.url) as ws:
                    await ws.init(bearer(token))
                    await ws.subscribe("1", PROGRESS, {"id": job_id, "after": after})
                    await _states(ws, resumed)
        finally:
            if first_api.poll() is None:
                stop(first_api)

        async with sessions() as session:
            history = (
                await session.execute(
                    text(
                        "SELECT state->>'status', state->>'stage', version"
                        " FROM job_state_changes WHERE job_id = :id ORDER BY version"
                    ),
                    {"id": job.id},
                )
            ).all()
    # What the two connections received together is every status and stage the job went
    # through, in order (progress alone may merge), each version once, the last one final.
    received = seen + resumed
    versions = [state["version"] for state in received]
    assert versions == sorted(set(versions))
    assert all(state["version"] > after for state in resumed)
    assert _steps(received) == [(status, stage) for status, stage, _ in history]
    assert resumed[-1]["status"] == "SUCCEEDED"
    assert len(resumed) >= 2, "the run had more to tell after the process died"


def _steps(states: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    steps: list[tuple[str, str | None]] = []
    for state in states:
        step = (state["status"], state["stage"])
        if not steps or steps[-1] != step:
            steps.append(step)
    return steps


async def _finished(sessions: Any, job_id: uuid.UUID) -> None:
    async def check() -> bool:
        return not (await load_job(sessions, job_id)).status.is_active

    await wait_for(check, within=60, what="the run to end")

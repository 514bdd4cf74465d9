"""A real ``studio serve`` process with its in-process worker holds one ``LISTEN`` connection: the
worker hears of queued and cancelled jobs through the API's listener (SPEC §5)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import GenerationJob, JobStage, JobStatus
from db.queries import job_queue
from db.url import DatabaseURL
from tests.support.jobs import committing_sessions, load_job, load_video, start_jobs, wait_for
from tests.support.processes import clean_env, running_studio

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
def studio_serve(migrated_database: DatabaseURL, tmp_path: Path) -> Iterator[None]:
    """``studio serve`` with its worker on. Neither its safety-net poll (60 s) nor its lease
    renewal (every 100 s) comes within a test's waits, and each stage after SCRIPT takes a
    minute: only notifications can wake the worker or stop a stage in time."""
    env = clean_env(
        DATABASE_URL=migrated_database.render(hide_password=False),
        STUDIO_INPROCESS_WORKER="true",
        STUDIO_WORKER_POLL_SECONDS="60",
        STUDIO_WORKER_LEASE_SECONDS="300",
        STUDIO_PIPELINE_STAGE_DELAY_MS="60000",
        STUDIO_LOG_LEVEL="WARNING",
    )
    with running_studio(env, tmp_path):
        yield


async def test_studio_serve_and_its_worker_share_one_listen_connection(
    migrated_database: DatabaseURL, studio_serve: None
) -> None:
    async with committing_sessions(migrated_database) as sessions:
        first, second = await start_jobs(sessions, 2)
        running = await _one_in_voice(sessions, first.id, second.id)  # woken by NOTIFY
        waiting = second if running.id == first.id else first

        async with sessions() as session:
            listening = await session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
                )
            )
        assert listening == 1

        await _cancel(sessions, running.id)  # stops the stage: the worker takes the next job

        async def next_running() -> GenerationJob | None:
            job = await load_job(sessions, waiting.id)
            return job if job.status is JobStatus.RUNNING else None

        moved_on = await wait_for(next_running, within=10, what="the next job to start")
        assert moved_on.lease_owner == running.lease_owner
        await _cancel(sessions, waiting.id)  # so that the process stops without a grace period


async def _one_in_voice(sessions: Sessions, *job_ids: uuid.UUID) -> GenerationJob:
    async def check() -> GenerationJob | None:
        for job_id in job_ids:
            job = await load_job(sessions, job_id)
            if job.status is JobStatus.RUNNING and job.stage is JobStage.VOICE:
                return job
        return None

    return await wait_for(check, within=20, what="a job in VOICE")


async def _cancel(sessions: Sessions, job_id: uuid.UUID) -> None:
    owner = (await load_video(sessions, (await load_job(sessions, job_id)).video_id)).user_id
    async with sessions.begin() as session:
        await job_queue.cancel(session, owner, job_id, request_id=None)

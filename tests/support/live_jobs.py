"""Committed jobs for the live-progress tests, changed the way a worker changes them.

The app under test runs in another thread or process, so these rows are committed for real (each
call is its own transaction, as each progress write of a worker is). Every test makes its own
user, so tests sharing a database never see each other's events. What a subscriber of a job that
ran for real may expect to see is `tests.support.live_states`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from app.auth import issue_access_token
from app.settings import Settings
from db.models import GenerationJob, User, Video, VideoInputType
from db.url import DatabaseURL
from schema.relay import to_global_id

JOB_PROGRESS = """
subscription Progress($id: ID!) {
  jobProgress(jobId: $id) { id status stage progress video { id title } }
}
"""
VIDEO_UPDATED = """
subscription Video($id: ID!) { videoUpdated(videoId: $id) { id title status progress } }
"""
VIEWER_JOBS = "subscription { viewerJobs { id status progress video { id } } }"


@dataclass(frozen=True)
class LiveJob:
    user_id: uuid.UUID
    video_id: uuid.UUID
    job_id: uuid.UUID
    token: str

    @property
    def job_gid(self) -> str:
        return to_global_id("GenerationJob", self.job_id)

    @property
    def video_gid(self) -> str:
        return to_global_id("Video", self.video_id)


def writer_engine(database: DatabaseURL) -> AsyncEngine:
    return create_async_engine(
        database.url, connect_args=database.connect_args(), poolclass=NullPool
    )


async def create_live_job(
    engine: AsyncEngine, settings: Settings, *, user_id: uuid.UUID | None = None
) -> LiveJob:
    """A user (new unless ``user_id``), a video and a QUEUED job, committed."""
    async with engine.begin() as connection:
        if user_id is None:
            user_id = (
                await connection.execute(
                    insert(User)
                    .values(email=f"live-{uuid.uuid4().hex[:10]}@example.com")
                    .returning(User.id)
                )
            ).scalar_one()
        video_id = (
            await connection.execute(
                insert(Video)
                .values(
                    user_id=user_id,
                    title="Live",
                    description="Watched as it is made.",
                    input_type=VideoInputType.DESCRIPTION,
                )
                .returning(Video.id)
            )
        ).scalar_one()
        job_id = (
            await connection.execute(
                insert(GenerationJob).values(video_id=video_id).returning(GenerationJob.id)
            )
        ).scalar_one()
    token = issue_access_token(settings, user_id).token
    return LiveJob(user_id=user_id, video_id=video_id, job_id=job_id, token=token)


async def update_job(engine: AsyncEngine, job_id: uuid.UUID, **values: Any) -> int:
    """Change the job in a transaction of its own; its new version."""
    async with engine.begin() as connection:
        version: int = (
            await connection.execute(
                update(GenerationJob)
                .where(GenerationJob.id == job_id)
                .values(**values)
                .returning(GenerationJob.version)
            )
        ).scalar_one()
    return version


async def update_jobs(engine: AsyncEngine, job_ids: list[uuid.UUID], **values: Any) -> None:
    """Change several jobs the same way in one transaction (their changes commit together)."""
    async with engine.begin() as connection:
        await connection.execute(
            update(GenerationJob).where(GenerationJob.id.in_(job_ids)).values(**values)
        )


async def update_video(engine: AsyncEngine, video_id: uuid.UUID, **values: Any) -> int:
    async with engine.begin() as connection:
        version: int = (
            await connection.execute(
                update(Video).where(Video.id == video_id).values(**values).returning(Video.version)
            )
        ).scalar_one()
    return version


async def eventually(condition: Callable[[], bool], *, within: float, what: str) -> None:
    """Poll a condition that no event announces (state in another thread); fail after
    ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.02)  # polling interval, not a wait for work to finish

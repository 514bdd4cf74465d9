"""Committed jobs on a test's own database, and waiting for them by polling with a deadline.

For tests whose workers run in other tasks or other processes: they cannot share the test's
rolled-back transaction, so the rows are committed and the database is polled for the outcome.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from db.models import GenerationJob, User, Video, VideoInputType
from db.queries import job_queue
from db.url import DatabaseURL

T = TypeVar("T")

DESCRIPTION = (
    "Sunlight is made of photons. When they strike a solar cell, they knock electrons loose.\n\n"
    "The loose electrons flow as an electric current, which an inverter turns into household "
    "power."
)


@asynccontextmanager
async def committing_sessions(
    database: DatabaseURL,
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine: AsyncEngine = create_async_engine(
        database.url, connect_args=database.connect_args(), poolclass=NullPool
    )
    try:
        yield async_sessionmaker(engine, expire_on_commit=False)
    finally:
        await engine.dispose()


#: The cloud metadata service's address: what a URL video's SCRIPT stage must refuse.
METADATA_URL = "http://169.254.169.254/latest/meta-data/"


async def start_jobs(
    sessions: async_sessionmaker[AsyncSession],
    count: int = 1,
    *,
    description: str = DESCRIPTION,
    input_type: VideoInputType = VideoInputType.DESCRIPTION,
    max_attempts: int = 3,
) -> list[GenerationJob]:
    """A new user with ``count`` videos, each with a queued job (committed in one go)."""
    async with sessions.begin() as session:
        user_id = await session.scalar(
            insert(User)
            .values(email=f"jobs-{uuid.uuid4().hex[:10]}@example.com")
            .returning(User.id)
        )
        assert user_id is not None
        jobs = []
        for index in range(count):
            video = Video(
                user_id=user_id,
                title=f"Video {index}",
                description=description,
                input_type=input_type,
                # A URL refused before any lookup or connection: jobs fail at SCRIPT, offline.
                source_url=METADATA_URL if input_type is VideoInputType.URL else None,
            )
            session.add(video)
            await session.flush()
            jobs.append(
                await job_queue.enqueue(
                    session, user_id, video.id, request_id=None, max_attempts=max_attempts
                )
            )
        return jobs


async def load_job(sessions: async_sessionmaker[AsyncSession], job_id: uuid.UUID) -> GenerationJob:
    async with sessions() as session:
        job = await session.scalar(select(GenerationJob).where(GenerationJob.id == job_id))
        assert job is not None
        return job


async def load_video(sessions: async_sessionmaker[AsyncSession], video_id: uuid.UUID) -> Video:
    async with sessions() as session:
        video = await session.scalar(select(Video).where(Video.id == video_id))
        assert video is not None
        return video


async def wait_for(
    check: Callable[[], Awaitable[T | None]],
    *,
    within: float,
    what: str,
    interval: float = 0.05,
) -> T:
    """Poll ``check`` until it returns something other than ``None``/``False``; fail after
    ``within`` seconds. (The interval is the polling rate, not a wait for the work.)"""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(interval)

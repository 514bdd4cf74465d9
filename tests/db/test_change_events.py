"""Every committed change to a job or a video is announced with NOTIFY; a rolled-back one is not.

These tests commit for real, on a database of their own, and listen with a plain asyncpg
connection, as any API process's listener does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import delete, func, insert, update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from app.settings import load_settings
from db.models import GenerationJob, JobStage, JobStatus, User, Video, VideoInputType
from db.url import DatabaseURL
from tests.support.live_jobs import create_live_job

CHANNEL = "studio_events"


@pytest.fixture
async def engine(migrated_database: DatabaseURL) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(
        migrated_database.url, connect_args=migrated_database.connect_args(), poolclass=NullPool
    )
    yield engine
    await engine.dispose()


async def _listening(database: DatabaseURL) -> asyncpg.Connection:
    """A plain connection, as an API process's listener has."""
    url = database.url
    return await asyncpg.connect(
        host=url.host or url.query.get("host"),
        port=url.port or int(str(url.query.get("port", 5432))),
        user=url.username,
        database=url.database,
    )


@pytest.fixture
async def events(migrated_database: DatabaseURL) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
    connection = await _listening(migrated_database)
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await connection.add_listener(CHANNEL, lambda *args: queue.put_nowait(json.loads(args[3])))
    yield queue
    await connection.close()


async def _next(queue: asyncio.Queue[dict[str, Any]]) -> dict[str, Any]:
    return await asyncio.wait_for(queue.get(), timeout=5)


async def test_job_changes_are_announced_with_owner_and_version(
    engine: AsyncEngine, events: asyncio.Queue[dict[str, Any]]
) -> None:
    job = await create_live_job(engine, load_settings())  # user, video and job in one commit
    user_id, video_id, job_id = job.user_id, job.video_id, job.job_id
    video_event, job_event = await _next(events), await _next(events)
    assert video_event["kind"] == "video"
    assert video_event["owner_id"] == str(user_id)
    assert job_event == {
        "kind": "job",
        "id": str(job_id),
        "video_id": str(video_id),
        "owner_id": str(user_id),
        "status": "QUEUED",
        "stage": None,
        "progress": 0,
        "version": 1,
    }

    async with engine.begin() as connection:
        await connection.execute(
            update(GenerationJob)
            .where(GenerationJob.id == job_id)
            .values(status=JobStatus.RUNNING, stage=JobStage.SCRIPT, progress=5, attempt=1)
        )
    changed = await _next(events)
    assert (changed["status"], changed["stage"], changed["progress"], changed["version"]) == (
        "RUNNING",
        "SCRIPT",
        5,
        2,
    )


async def test_a_rolled_back_change_announces_nothing(
    engine: AsyncEngine, events: asyncio.Queue[dict[str, Any]]
) -> None:
    async with engine.connect() as connection:
        transaction = await connection.begin()
        await connection.execute(insert(User).values(email="gone@example.com"))
        user_id = (
            await connection.execute(
                insert(User).values(email="gone2@example.com").returning(User.id)
            )
        ).scalar_one()
        await connection.execute(
            insert(Video).values(
                user_id=user_id, title="T", description="D", input_type=VideoInputType.DESCRIPTION
            )
        )
        await transaction.rollback()
    # A later committed change arrives first: nothing from the rolled-back one came before it.
    async with engine.begin() as connection:
        user_id = (
            await connection.execute(
                insert(User).values(email="kept@example.com").returning(User.id)
            )
        ).scalar_one()
        await connection.execute(
            insert(Video).values(
                user_id=user_id,
                title="Kept",
                description="D",
                input_type=VideoInputType.DESCRIPTION,
            )
        )
    event = await _next(events)
    assert event["owner_id"] == str(user_id)
    assert events.empty()


async def test_an_account_that_ends_is_announced_once_and_only_then(
    engine: AsyncEngine, migrated_database: DatabaseURL
) -> None:
    """``studio_accounts`` carries the user id when a user is soft-deleted or deleted; other
    changes of a user, and a rolled-back deletion, announce nothing."""
    connection = await _listening(migrated_database)
    ended: asyncio.Queue[str] = asyncio.Queue()
    await connection.add_listener("studio_accounts", lambda *args: ended.put_nowait(args[3]))
    try:
        async with engine.begin() as writer:
            soft, hard = [
                (
                    await writer.execute(
                        insert(User).values(email=f"{name}@example.com").returning(User.id)
                    )
                ).scalar_one()
                for name in ("soft", "hard")
            ]
        async with engine.begin() as writer:
            await writer.execute(update(User).where(User.id == soft).values(display_name="x"))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ended.get(), timeout=0.3)
        async with engine.connect() as writer:
            await writer.execute(update(User).where(User.id == soft).values(deleted_at=func.now()))
            await writer.rollback()
        async with engine.begin() as writer:
            await writer.execute(update(User).where(User.id == soft).values(deleted_at=func.now()))
        assert await asyncio.wait_for(ended.get(), timeout=5) == str(soft)
        async with engine.begin() as writer:  # already deleted: no second end
            await writer.execute(update(User).where(User.id == soft).values(deleted_at=func.now()))
            await writer.execute(delete(User).where(User.id == hard))
        assert await asyncio.wait_for(ended.get(), timeout=5) == str(hard)
        assert ended.empty()
    finally:
        await connection.close()

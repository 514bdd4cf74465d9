from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from db.models import GenerationJob, JobStatus, Video

ACTIVE_JOB_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)


async def get_video(
    session: AsyncSession, owner_id: uuid.UUID, video_id: uuid.UUID, *, deleted: bool = False
) -> Video | None:
    """The owner's video; ``deleted=True`` looks among the soft-deleted ones instead."""
    return await session.scalar(_owned_video(owner_id, video_id, deleted=deleted))


async def soft_delete_video(
    session: AsyncSession, owner_id: uuid.UUID, video_id: uuid.UUID
) -> Video:
    """Hide the video and cancel its queued or running job, in the caller's transaction."""
    video = await _lock_video(session, owner_id, video_id, deleted=False)
    now = await _now(session)
    video.deleted_at = now
    await session.execute(
        update(GenerationJob)
        .where(GenerationJob.video_id == video.id, GenerationJob.status.in_(ACTIVE_JOB_STATUSES))
        .values(status=JobStatus.CANCELLED, finished_at=now, error="The video was deleted.")
    )
    await session.flush()
    return video


async def restore_video(session: AsyncSession, owner_id: uuid.UUID, video_id: uuid.UUID) -> Video:
    video = await _lock_video(session, owner_id, video_id, deleted=True)
    video.deleted_at = None
    await session.flush()
    return video


def _owned_video(owner_id: uuid.UUID, video_id: uuid.UUID, *, deleted: bool) -> Select[Video]:
    deleted_filter = Video.deleted_at.is_not(None) if deleted else Video.deleted_at.is_(None)
    return select(Video).where(Video.id == video_id, Video.user_id == owner_id, deleted_filter)


async def _lock_video(
    session: AsyncSession, owner_id: uuid.UUID, video_id: uuid.UUID, *, deleted: bool
) -> Video:
    video = await session.scalar(
        _owned_video(owner_id, video_id, deleted=deleted).with_for_update()
    )
    if video is None:
        raise NotFound("Video not found.")
    return video


async def _now(session: AsyncSession) -> datetime:
    # The transaction's clock, the same one the timestamp defaults and the trigger use.
    now = await session.scalar(select(func.now()))
    assert isinstance(now, datetime)
    return now

"""Generation jobs. A job belongs to whoever owns its (live) video."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import ColumnElement, Uuid, any_, bindparam, exists, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import GenerationJob, Video
from db.queries.arrays import bound_ids
from db.queries.live import live
from db.queries.pagination import (
    Ordering,
    PageRequest,
    PageSlice,
    Where,
    count_for_parents,
    fetch_pages,
)

JOB_ORDERING = Ordering(GenerationJob.queued_at, descending=True)


def owned_by(owner_id: uuid.UUID | ColumnElement[uuid.UUID]) -> ColumnElement[bool]:
    """Jobs of the owner's live videos (soft-deleted videos take their jobs out of sight)."""
    return exists().where(
        Video.id == GenerationJob.video_id, Video.user_id == owner_id, live(Video)
    )


async def jobs_by_ids(
    session: AsyncSession, owner_id: uuid.UUID, job_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, GenerationJob]:
    rows = await session.scalars(_JOBS_BY_IDS, {"owner_id": owner_id, "ids": list(job_ids)})
    return {job.id: job for job in rows}


async def list_for_videos(
    session: AsyncSession,
    owner_id: uuid.UUID,
    video_ids: Sequence[uuid.UUID],
    *,
    page: PageRequest,
    detached: bool = False,
) -> dict[uuid.UUID, PageSlice[GenerationJob]]:
    """Each video's jobs, newest first, each video paged on its own, one statement
    (``detached``: see `fetch_pages`)."""
    return await fetch_pages(
        session,
        GenerationJob,
        GenerationJob.video_id,
        video_ids,
        where=_owned_by(owner_id),
        ordering=JOB_ORDERING,
        page=page,
        detached=detached,
    )


async def count_for_videos(
    session: AsyncSession, owner_id: uuid.UUID, video_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    return await count_for_parents(
        session, GenerationJob.video_id, video_ids, where=_owned_by(owner_id)
    )


async def latest_for_videos(
    session: AsyncSession, owner_id: uuid.UUID, video_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, GenerationJob]:
    """The most recently queued job of each video (``DISTINCT ON``; the all-descending order
    lets PostgreSQL walk the (video_id, queued_at, id) index backward instead of sorting)."""
    rows = await session.scalars(_LATEST_FOR_VIDEOS, {"owner_id": owner_id, "ids": list(video_ids)})
    return {job.video_id: job for job in rows}


# Built once, run with their values (`db.queries.statements`).
_OWNER = bindparam("owner_id", type_=Uuid())
_JOBS_BY_IDS = select(GenerationJob).where(
    GenerationJob.id == any_(bound_ids("ids")), owned_by(_OWNER)
)
_LATEST_FOR_VIDEOS = (
    select(GenerationJob)
    .where(GenerationJob.video_id == any_(bound_ids("ids")), owned_by(_OWNER))
    .ext(distinct_on(GenerationJob.video_id))
    .order_by(
        GenerationJob.video_id.desc(), GenerationJob.queued_at.desc(), GenerationJob.id.desc()
    )
)


def _owned_by(owner_id: uuid.UUID) -> Where:
    return Where("jobs owned", lambda: [owned_by(_OWNER)], {"owner_id": owner_id})

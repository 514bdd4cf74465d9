from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.errors import BadUserInput, Conflict, NotFound
from db.integrity import constraint_errors
from db.models import GenerationJob, JobStatus, Video, VideoInputType, VideoStatus, VoiceProfile
from db.models.video import search_document
from db.queries.arrays import is_any_of
from db.queries.audit import changes, record_event
from db.queries.pagination import (
    Ordering,
    PageRequest,
    PageSlice,
    count_for_parents,
    fetch_pages,
)

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
    cancelled = await session.execute(
        update(GenerationJob)
        .where(GenerationJob.video_id == video.id, GenerationJob.status.in_(ACTIVE_JOB_STATUSES))
        .values(status=JobStatus.CANCELLED, finished_at=now, error="The video was deleted.")
    )
    if cancelled.rowcount:  # type: ignore[attr-defined]
        # No run goes on: a restored video must not show QUEUED or PROCESSING forever.
        video.status, video.progress = status_without_job(video), 0
    await session.flush()
    return video


def status_without_job(video: Video) -> VideoStatus:
    """The status a video returns to when its run ends without a result (cancelled)."""
    if video.script is None:
        return VideoStatus.DRAFT
    return VideoStatus.PUBLISHED if video.published_to else VideoStatus.READY


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


@dataclass(frozen=True)
class VideoFilter:
    """The list filters of SPEC ``VideoFilter``; every field optional, all of them ANDed."""

    statuses: tuple[VideoStatus, ...] = ()
    search: str | None = None
    input_type: VideoInputType | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


VIDEO_ORDER_COLUMNS: dict[str, InstrumentedAttribute[Any]] = {
    "CREATED_AT": Video.created_at,
    "UPDATED_AT": Video.updated_at,
    "TITLE": Video.title,
}


@dataclass(frozen=True)
class VideoOrder:
    """SPEC ``VideoOrder``: a key of `VIDEO_ORDER_COLUMNS` and a direction (id breaks ties)."""

    field: str = "CREATED_AT"
    descending: bool = True

    def ordering(self) -> Ordering:
        return Ordering(VIDEO_ORDER_COLUMNS[self.field], descending=self.descending)


async def videos_by_ids(
    session: AsyncSession, owner_id: uuid.UUID, video_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Video]:
    """The owner's live videos among ``video_ids``; others' and deleted ones are simply absent."""
    rows = await session.scalars(
        select(Video).where(
            is_any_of(Video.id, video_ids),
            Video.user_id == owner_id,
            Video.deleted_at.is_(None),
        )
    )
    return {video.id: video for video in rows}


async def list_for_owners(
    session: AsyncSession,
    owner_ids: Sequence[uuid.UUID],
    *,
    video_filter: VideoFilter,
    order: VideoOrder,
    page: PageRequest,
) -> dict[uuid.UUID, PageSlice[Video]]:
    """A page of each owner's videos, in one statement (see `db.queries.pagination`)."""
    return await fetch_pages(
        session,
        Video,
        Video.user_id,
        owner_ids,
        where=_video_conditions(video_filter),
        ordering=order.ordering(),
        page=page,
    )


async def count_for_owners(
    session: AsyncSession, owner_ids: Sequence[uuid.UUID], *, video_filter: VideoFilter
) -> dict[uuid.UUID, int]:
    return await count_for_parents(
        session, Video.user_id, owner_ids, where=_video_conditions(video_filter)
    )


def search_query(text_: str) -> str | None:
    """A prefix ``tsquery`` for free text: every word must start a word of title/description.

    Words are reduced to letters and digits, so no ``tsquery`` syntax from the client survives.
    """
    words = re.findall(r"\w+", text_.lower())[:_MAX_SEARCH_WORDS]
    return " & ".join(f"{word}:*" for word in words) or None


_MAX_SEARCH_WORDS = 8


def _video_conditions(video_filter: VideoFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Video.deleted_at.is_(None)]
    if video_filter.statuses:
        conditions.append(Video.status.in_(video_filter.statuses))
    if video_filter.input_type is not None:
        conditions.append(Video.input_type == video_filter.input_type)
    if video_filter.created_after is not None:
        conditions.append(Video.created_at >= video_filter.created_after)
    if video_filter.created_before is not None:
        conditions.append(Video.created_at < video_filter.created_before)
    if video_filter.search and (query := search_query(video_filter.search)):
        # Matches the GIN index ix_videos_search (same expression, same 'simple' dictionary).
        document = search_document(Video.title, Video.description)
        conditions.append(document.bool_op("@@")(func.to_tsquery("simple", query)))
    return conditions


# --- writes (each in the caller's transaction, each audited) ------------------------------

#: Columns that feed generation: changing them while a job is queued or running is a CONFLICT.
GENERATION_INPUTS = frozenset({"description", "source_url", "voice_profile_id", "audio_settings"})
_AUDITED_COLUMNS = (
    "title",
    "description",
    "input_type",
    "source_url",
    "voice_profile_id",
    "audio_settings",
    "status",
    "published_to",
    "deleted_at",
)


async def create_video(
    session: AsyncSession, owner_id: uuid.UUID, values: Mapping[str, Any], *, request_id: str | None
) -> Video:
    await _check_voice_profile(session, owner_id, values.get("voice_profile_id"))
    video = Video(user_id=owner_id, **values)
    async with constraint_errors(session):
        session.add(video)
    await record_event(
        session,
        actor_id=owner_id,
        action="video.create",
        object_type="Video",
        object_id=video.id,
        request_id=request_id,
        diff=_snapshot(video),
    )
    return video


async def update_video(
    session: AsyncSession,
    owner_id: uuid.UUID,
    video_id: uuid.UUID,
    values: Mapping[str, Any],
    *,
    request_id: str | None,
) -> Video:
    """Apply ``values`` under a row lock, so concurrent updates queue rather than overwrite."""
    video = await _lock_video(session, owner_id, video_id, deleted=False)
    changed = {key: value for key, value in values.items() if getattr(video, key) != value}
    if GENERATION_INPUTS & changed.keys() and await has_active_job(session, video.id):
        raise Conflict(
            "The video is being generated; its description, source, voice and audio settings "
            "can change once the job ends (or is cancelled)."
        )
    if "voice_profile_id" in changed:
        await _check_voice_profile(session, owner_id, changed["voice_profile_id"])
    before = _snapshot(video)
    async with constraint_errors(session):
        for key, value in changed.items():
            setattr(video, key, value)
    await record_event(
        session,
        actor_id=owner_id,
        action="video.update",
        object_type="Video",
        object_id=video.id,
        request_id=request_id,
        diff=changes(before, _snapshot(video)),
    )
    return video


async def delete_video(
    session: AsyncSession, owner_id: uuid.UUID, video_id: uuid.UUID, *, request_id: str | None
) -> Video:
    video = await soft_delete_video(session, owner_id, video_id)
    await record_event(
        session,
        actor_id=owner_id,
        action="video.delete",
        object_type="Video",
        object_id=video.id,
        request_id=request_id,
        diff={"deleted_at": [None, video.deleted_at]},
    )
    return video


async def undelete_video(
    session: AsyncSession, owner_id: uuid.UUID, video_id: uuid.UUID, *, request_id: str | None
) -> Video:
    video = await restore_video(session, owner_id, video_id)
    await record_event(
        session,
        actor_id=owner_id,
        action="video.restore",
        object_type="Video",
        object_id=video.id,
        request_id=request_id,
        diff={"deleted_at": ["(deleted)", None]},
    )
    return video


async def add_publication(
    session: AsyncSession,
    owner_id: uuid.UUID,
    video_id: uuid.UUID,
    publication: Mapping[str, Any],
    *,
    request_id: str | None,
) -> Video:
    """Record a publication; only READY (or already PUBLISHED) videos can be published."""
    video = await _lock_video(session, owner_id, video_id, deleted=False)
    if video.status not in (VideoStatus.READY, VideoStatus.PUBLISHED):
        raise Conflict(f"Only a READY video can be published; this one is {video.status.value}.")
    video.published_to = [*video.published_to, dict(publication)]
    video.status = VideoStatus.PUBLISHED
    await session.flush()
    await record_event(
        session,
        actor_id=owner_id,
        action="video.publish",
        object_type="Video",
        object_id=video.id,
        request_id=request_id,
        diff={"published_to": [None, dict(publication)]},
    )
    return video


async def get_video_for_update(
    session: AsyncSession, owner_id: uuid.UUID, video_id: uuid.UUID
) -> Video:
    """The owner's live video, locked for the rest of the transaction; `NotFound` otherwise."""
    return await _lock_video(session, owner_id, video_id, deleted=False)


async def has_active_job(session: AsyncSession, video_id: uuid.UUID) -> bool:
    return bool(
        await session.scalar(
            select(
                exists().where(
                    GenerationJob.video_id == video_id,
                    GenerationJob.status.in_(ACTIVE_JOB_STATUSES),
                )
            )
        )
    )


async def _check_voice_profile(
    session: AsyncSession, owner_id: uuid.UUID, profile_id: uuid.UUID | None
) -> None:
    if profile_id is None:
        return
    found = await session.scalar(
        select(VoiceProfile.id).where(
            VoiceProfile.id == profile_id,
            VoiceProfile.user_id == owner_id,
            VoiceProfile.deleted_at.is_(None),
        )
    )
    if found is None:
        raise BadUserInput("Voice profile not found.", field="voiceProfileId")


def _snapshot(video: Video) -> dict[str, Any]:
    return {column: getattr(video, column) for column in _AUDITED_COLUMNS}

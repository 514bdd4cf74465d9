"""Video writes: each filters by the owner, runs in the caller's transaction (which commits),
locks the row it changes, and records its audit event.

Concurrent updates of one video queue on the row lock (``SELECT … FOR UPDATE``), so a
read-merge-write (``audio_settings``) never loses another request's change.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import BadUserInput, Conflict, NotFound
from db.integrity import constraint_errors
from db.models import GenerationJob, JobStatus, Video, VideoStatus, VoiceProfile
from db.queries.audit import changes, record_owned_change, transaction_now
from db.queries.live import live
from db.queries.videos import ACTIVE_JOB_STATUSES, owned_video

#: Columns that feed generation: changing them while a job is queued or running is a CONFLICT.
GENERATION_INPUTS = frozenset(
    {"description", "source_url", "voice_profile_id", "audio_settings", "target_duration_seconds"}
)
_AUDITED_COLUMNS = (
    "title",
    "description",
    "input_type",
    "source_url",
    "voice_profile_id",
    "audio_settings",
    "target_duration_seconds",
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
    await _audit(session, video, "video.create", request_id, _snapshot(video))
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
            "The video is being generated; its description, source, voice, audio settings and "
            "target duration can change once the job ends (or is cancelled)."
        )
    if "voice_profile_id" in changed:
        await _check_voice_profile(session, owner_id, changed["voice_profile_id"])
    before = _snapshot(video)
    async with constraint_errors(session):
        for key, value in changed.items():
            setattr(video, key, value)
    await _audit(session, video, "video.update", request_id, changes(before, _snapshot(video)))
    return video


async def delete_video(
    session: AsyncSession, owner_id: uuid.UUID, video_id: uuid.UUID, *, request_id: str | None
) -> Video:
    video = await soft_delete_video(session, owner_id, video_id)
    await _audit(
        session, video, "video.delete", request_id, {"deleted_at": [None, video.deleted_at]}
    )
    return video


async def undelete_video(
    session: AsyncSession, owner_id: uuid.UUID, video_id: uuid.UUID, *, request_id: str | None
) -> Video:
    video = await restore_video(session, owner_id, video_id)
    await _audit(session, video, "video.restore", request_id, {"deleted_at": ["(deleted)", None]})
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
    check_publishable(video)
    video.published_to = [*video.published_to, dict(publication)]
    video.status = VideoStatus.PUBLISHED
    await session.flush()
    await _audit(
        session, video, "video.publish", request_id, {"published_to": [None, dict(publication)]}
    )
    return video


def check_publishable(video: Video) -> None:
    """`Conflict` unless ``video`` is READY (or PUBLISHED) with a rendered MP4."""
    if video.status not in (VideoStatus.READY, VideoStatus.PUBLISHED):
        raise Conflict(f"Only a READY video can be published; this one is {video.status.value}.")
    if video.media_path is None:
        raise Conflict("This video has no rendered media yet; generate it first.")


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
            live(VoiceProfile),
        )
    )
    if found is None:
        raise BadUserInput("Voice profile not found.", field="voiceProfileId")


def _snapshot(video: Video) -> dict[str, Any]:
    return {column: getattr(video, column) for column in _AUDITED_COLUMNS}


async def soft_delete_video(
    session: AsyncSession, owner_id: uuid.UUID, video_id: uuid.UUID
) -> Video:
    """Hide the video and cancel its queued or running job, in the caller's transaction."""
    video = await _lock_video(session, owner_id, video_id, deleted=False)
    now = await transaction_now(session)
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


async def _lock_video(
    session: AsyncSession, owner_id: uuid.UUID, video_id: uuid.UUID, *, deleted: bool
) -> Video:
    video = await session.scalar(owned_video(owner_id, video_id, deleted=deleted).with_for_update())
    if video is None:
        raise NotFound("Video not found.")
    return video


async def _audit(
    session: AsyncSession,
    video: Video,
    action: str,
    request_id: str | None,
    diff: Mapping[str, Any],
) -> None:
    await record_owned_change(
        session, video, object_type="Video", action=action, request_id=request_id, diff=diff
    )

"""What `studio purge` removes for good, and which stored files are still in use.

Deleting a video or a voice profile only hides it (``deleted_at``); its files stay, so a restore
brings everything back. A purge removes the rows deleted before a cutoff (a video's generation
jobs go with it), and `app.purge` then removes the files nothing refers to any more.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import (
    GenerationJob,
    JobStateChange,
    JobStatus,
    Video,
    VideoStateChange,
    VoiceProfile,
)

ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


@dataclass(frozen=True)
class PurgedRows:
    videos: list[uuid.UUID]
    voice_profiles: list[uuid.UUID]
    #: Entries of the job and video state histories recorded before the cutoff.
    state_changes: int = 0


async def purge_deleted(
    session: AsyncSession, cutoff: datetime, *, dry_run: bool = False
) -> PurgedRows:
    """Remove the videos and voice profiles deleted before ``cutoff`` (only list them with
    ``dry_run``). A video's jobs go with it; videos that used a purged profile keep going
    without one (``voice_profile_id`` becomes NULL). The state histories lose what was recorded
    before ``cutoff``: a subscriber resuming from a version that old gets the current state."""
    purged = []
    for model in (Video, VoiceProfile):
        deleted_long_ago = model.deleted_at < cutoff
        if dry_run:
            found = await session.scalars(select(model.id).where(deleted_long_ago))
        else:
            found = await session.scalars(delete(model).where(deleted_long_ago).returning(model.id))
        purged.append(list(found.all()))
    state_changes = 0
    for history in (JobStateChange, VideoStateChange):
        recorded_long_ago = history.changed_at < cutoff
        if dry_run:
            counted = select(func.count()).select_from(history).where(recorded_long_ago)
            state_changes += await session.scalar(counted) or 0
        else:
            removed = await session.execute(delete(history).where(recorded_long_ago))
            state_changes += removed.rowcount or 0  # type: ignore[attr-defined]
    return PurgedRows(purged[0], purged[1], state_changes)


@dataclass
class VideoFiles:
    """What one video's folder must keep: the run folders its media and captions are in, and
    the folders of its queued or running jobs (named ``<job id>.<attempt>``)."""

    runs_in_use: set[str] = field(default_factory=set)


async def files_in_use(
    session: AsyncSession, video_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, VideoFiles]:
    """For each of ``video_ids`` that still exists (live or deleted, not purged), the run
    folders in use; a video missing from the answer has no row any more."""
    in_use: dict[uuid.UUID, VideoFiles] = {}
    rows = await session.execute(
        select(Video.id, Video.media_path, Video.poster_path, Video.caption_tracks).where(
            Video.id.in_(video_ids)
        )
    )
    for video_id, media_path, poster_path, tracks in rows:
        paths = [media_path, poster_path, *(track.get("path") for track in tracks or [])]
        in_use[video_id] = VideoFiles(set(_run_folders(video_id, paths)))
    jobs = await session.execute(
        select(GenerationJob.video_id, GenerationJob.id, GenerationJob.attempt).where(
            GenerationJob.video_id.in_(video_ids), GenerationJob.status.in_(ACTIVE)
        )
    )
    for video_id, job_id, attempt in jobs:
        if video_id in in_use:
            in_use[video_id].runs_in_use.add(f"{job_id}.{attempt}")
    return in_use


async def existing_profiles(
    session: AsyncSession, profile_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of ``profile_ids`` still have a row (live or deleted, not purged)."""
    found = await session.scalars(select(VoiceProfile.id).where(VoiceProfile.id.in_(profile_ids)))
    return set(found.all())


def _run_folders(video_id: uuid.UUID, paths: Iterable[object]) -> Iterable[str]:
    """The run folder names (``<job id>.<attempt>``) of ``videos/<video id>/<run>/…`` paths."""
    for path in paths:
        if isinstance(path, str):
            parts = PurePosixPath(path).parts
            if len(parts) > 3 and parts[1] == str(video_id):
                yield parts[2]

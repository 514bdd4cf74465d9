"""A worker's writes to the job it holds (SPEC §5, issue 5), each fenced by its `Lease`.

A worker that `db.queries.job_queue.claim_next` gave a job then calls `renew_lease`,
`report_progress`, `check_lease`, and at the end one of `finish`, `fail` or `hand_back`. Every
one of these is *fenced*: its ``UPDATE`` only matches ``id = :job AND lease_owner = :worker AND
attempt = :attempt AND status = 'RUNNING'``, and zero rows raise `LeaseLost`. A worker that was
paused or cut off while its job was reclaimed (attempt + 1) or cancelled can therefore never
overwrite the new state. An expired lease that nobody has reclaimed yet still passes the fence:
no one else owns the job then.

Time is the database's (``now()``), as in `db.queries.job_queue`. Every function runs in the
caller's transaction and never commits; the worker commits right after one call and rolls back
on any exception — `LeaseLost` included: a fenced function may have touched the video before
finding that the job is no longer the worker's. Lock order is the video, then its job (see
`db.queries.job_queue`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypedDict

from sqlalchemy import Integer, cast, extract, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import GenerationJob, JobStage, JobStatus, Video, VideoStatus


class LeaseLost(Exception):
    """The worker no longer holds the job: it was cancelled, reclaimed or finished."""


@dataclass(frozen=True)
class Lease:
    """What a worker proves on every write: the job, its video, who it is and which attempt."""

    job_id: uuid.UUID
    video_id: uuid.UUID
    worker_id: str
    attempt: int


class VideoArtefacts(TypedDict):
    """What a successful run leaves on its video (`Video` columns)."""

    script: dict[str, Any]
    caption_tracks: list[dict[str, Any]]
    media_path: str | None
    poster_path: str | None
    duration_ms: int | None


async def renew_lease(session: AsyncSession, lease: Lease, lease_seconds: float) -> None:
    await _fenced_update(
        session,
        lease,
        lease_expires_at=func.now() + timedelta(seconds=lease_seconds),
        heartbeat_at=func.now(),
    )


async def check_lease(session: AsyncSession, lease: Lease) -> None:
    """Raise `LeaseLost` unless the worker still holds the job (the cancellation check)."""
    held = await session.scalar(select(GenerationJob.id).where(*_fence(lease)))
    if held is None:
        raise LeaseLost(await _why_lost(session, lease))


async def report_progress(
    session: AsyncSession, lease: Lease, *, stage: JobStage, progress: int
) -> None:
    """Record the stage and overall progress; progress never goes backwards within an attempt."""
    # Video first (lock order); unchanged progress writes nothing and sends no event.
    await session.execute(
        update(Video)
        .where(Video.id == lease.video_id, Video.progress < progress)
        .values(progress=progress)
    )
    await _fenced_update(
        session, lease, stage=stage, progress=func.greatest(GenerationJob.progress, progress)
    )


async def finish(
    session: AsyncSession,
    lease: Lease,
    *,
    artefacts: VideoArtefacts,
) -> None:
    """The run succeeded: the job SUCCEEDED and the video READY with its ``artefacts``."""
    await _lock_video(session, lease)
    await _fenced_update(
        session,
        lease,
        status=JobStatus.SUCCEEDED,
        progress=100,
        error=None,
        finished_at=func.now(),
        execution_time_ms=_elapsed_ms(),
        lease_expires_at=None,
    )
    await session.execute(
        update(Video)
        .where(Video.id == lease.video_id)
        .values(
            status=VideoStatus.READY,
            progress=100,
            error_message=None,
            script=artefacts["script"],
            caption_tracks=artefacts["caption_tracks"],
            media_path=artefacts["media_path"],
            poster_path=artefacts["poster_path"],
            duration_ms=artefacts["duration_ms"],
        )
    )


async def fail(
    session: AsyncSession,
    lease: Lease,
    message: str,
    *,
    retry: bool,
    backoff_seconds: float,
) -> JobStatus:
    """The run failed with ``message`` (shown to the user). With ``retry`` and attempts left, the
    job is queued again after ``backoff_seconds * 2 ** (attempt - 1)``; otherwise it is FAILED and
    the video ERROR. Returns the job's new status."""
    await _lock_video(session, lease)
    job = await session.scalar(select(GenerationJob).where(*_fence(lease)).with_for_update())
    if job is None:
        raise LeaseLost(await _why_lost(session, lease))
    if retry and job.attempt < job.max_attempts:
        delay = timedelta(seconds=backoff_seconds * 2 ** (job.attempt - 1))
        await _requeue(session, lease, error=message, available_at=func.now() + delay)
        return JobStatus.QUEUED
    await _fenced_update(
        session,
        lease,
        status=JobStatus.FAILED,
        error=message,
        finished_at=func.now(),
        execution_time_ms=_elapsed_ms(),
        lease_expires_at=None,
    )
    await session.execute(
        update(Video)
        .where(Video.id == lease.video_id)
        .values(status=VideoStatus.ERROR, error_message=message)
    )
    return JobStatus.FAILED


async def hand_back(session: AsyncSession, lease: Lease) -> None:
    """Give the job back unfinished (the worker is shutting down): queued again, available now.

    A graceful hand-back is not a failure, so it does not use up an attempt: ``max_attempts``
    grows by one. ``attempt`` itself only ever grows, which keeps the fencing token unique.
    """
    await _lock_video(session, lease)
    await _requeue(
        session,
        lease,
        error=None,
        available_at=func.now(),
        max_attempts=GenerationJob.max_attempts + 1,
    )


# --- helpers ------------------------------------------------------------------------------


def _fence(lease: Lease) -> tuple[Any, ...]:
    return (
        GenerationJob.id == lease.job_id,
        GenerationJob.lease_owner == lease.worker_id,
        GenerationJob.attempt == lease.attempt,
        GenerationJob.status == JobStatus.RUNNING,
    )


async def _fenced_update(session: AsyncSession, lease: Lease, **values: Any) -> None:
    updated = await session.scalar(
        update(GenerationJob)
        .where(*_fence(lease))
        .values(**values)
        .returning(GenerationJob.id)
        .execution_options(synchronize_session=False)
    )
    if updated is None:
        raise LeaseLost(await _why_lost(session, lease))


async def _why_lost(session: AsyncSession, lease: Lease) -> str:
    row = (
        await session.execute(
            select(GenerationJob.status, GenerationJob.attempt).where(
                GenerationJob.id == lease.job_id
            )
        )
    ).one_or_none()
    if row is None:
        return "the job no longer exists"
    status, attempt = row
    if status is JobStatus.CANCELLED:
        return "the job was cancelled"
    if attempt != lease.attempt:
        return f"the job was reclaimed (now attempt {attempt})"
    return f"the job is {status.value}"


async def _lock_video(session: AsyncSession, lease: Lease) -> None:
    await session.execute(select(Video.id).where(Video.id == lease.video_id).with_for_update())


async def _requeue(session: AsyncSession, lease: Lease, **values: Any) -> None:
    await _fenced_update(
        session,
        lease,
        status=JobStatus.QUEUED,
        stage=None,
        progress=0,
        lease_owner=None,
        lease_expires_at=None,
        **values,
    )
    await session.execute(
        update(Video)
        .where(Video.id == lease.video_id)
        .values(status=VideoStatus.QUEUED, progress=0)
    )


def _elapsed_ms() -> Any:
    return cast(func.round(extract("epoch", func.now() - GenerationJob.started_at) * 1000), Integer)

"""The job queue: ``generation_jobs`` rows moved through their life (SPEC §5, issue 5).

The table is the queue; there is no second source of truth. Two kinds of callers write it:

* the API — `enqueue` and `cancel` — owner-checked and audited like every mutation;
* workers — `claim_next` (and `seconds_until_claimable` while idle), then, holding the job's
  `Lease`, the fenced writes of `db.queries.job_leases`: `renew_lease`, `report_progress`,
  `check_lease`, `finish`, `fail` or `hand_back`. A worker whose job was reclaimed or cancelled
  meanwhile gets `LeaseLost` there instead of overwriting the new state.

Time is the database's (``now()``), never a worker's clock, so workers on several machines agree
on when a lease runs out. Every function runs in the caller's transaction and never commits;
callers commit right after one call, so row locks are held for milliseconds, and roll back on any
exception.

Lock order is the video, then its job — the order `db.queries.video_writes.soft_delete_video` uses —
so that a worker finishing a job and a user deleting its video never deadlock. Claiming locks
both rows at once with ``SKIP LOCKED`` and never waits.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, extract, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import BadUserInput, Conflict, NotFound
from db.integrity import constraint_errors
from db.models import GenerationJob, JobStatus, Video, VideoInputType, VideoStatus
from db.queries.audit import record_event
from db.queries.job_leases import Lease
from db.queries.jobs import owned_by
from db.queries.video_writes import get_video_for_update, has_active_job, status_without_job

ACTIVE_CONFLICT = "This video already has a generation job queued or running."


@dataclass(frozen=True)
class Claim:
    """A job a worker now runs, and its video; `lease` fences the worker's writes."""

    job: GenerationJob
    video: Video

    @property
    def lease(self) -> Lease:
        assert self.job.lease_owner is not None
        return Lease(self.job.id, self.video.id, self.job.lease_owner, self.job.attempt)


# --- the API side -------------------------------------------------------------------------


async def enqueue(
    session: AsyncSession,
    owner_id: uuid.UUID,
    video_id: uuid.UUID,
    *,
    request_id: str | None,
    max_attempts: int = 3,
) -> GenerationJob:
    """Queue a run of the owner's live video and move the video to QUEUED, in one transaction.

    The video's row lock serializes two racing starts; the partial unique index
    ``uq_generation_jobs_active_video_id`` is the last word if anything slips past.
    The video keeps its last good script and captions until a run replaces them.
    """
    video = await get_video_for_update(session, owner_id, video_id)
    if await has_active_job(session, video.id):
        raise Conflict(ACTIVE_CONFLICT)
    _check_generation_input(video)
    job = GenerationJob(video_id=video.id, status=JobStatus.QUEUED, max_attempts=max_attempts)
    async with constraint_errors(session):
        session.add(job)
    before = video.status
    video.status, video.progress, video.error_message = VideoStatus.QUEUED, 0, None
    await session.flush()
    await record_event(
        session,
        actor_id=owner_id,
        action="job.start",
        object_type="GenerationJob",
        object_id=job.id,
        request_id=request_id,
        diff={"video_id": video.id, "video_status": [before, video.status]},
    )
    return job


async def cancel(
    session: AsyncSession, owner_id: uuid.UUID, job_id: uuid.UUID, *, request_id: str | None
) -> GenerationJob:
    """Cancel the owner's queued or running job; a finished one is a `Conflict`.

    The video goes back to what it was before the run: READY (or PUBLISHED) when it still has
    the script of an earlier successful run, else DRAFT. A running worker hears of the change at
    once (the NOTIFY this commit sends, `app.worker.job_monitor`), checks its lease and stops; its
    fenced writes fail from now on.
    """
    found = await session.scalar(
        select(GenerationJob.video_id).where(GenerationJob.id == job_id, owned_by(owner_id))
    )
    if found is None:
        raise NotFound("Generation job not found.")
    video = await get_video_for_update(session, owner_id, found)
    before = await session.scalar(
        select(GenerationJob.status).where(GenerationJob.id == job_id).with_for_update()
    )
    assert before is not None  # the video's lock keeps its jobs from being deleted
    if not before.is_active:
        raise Conflict(f"This job has already finished ({before.value}).")
    job = await session.scalar(
        update(GenerationJob)
        .where(GenerationJob.id == job_id)
        .values(
            status=JobStatus.CANCELLED,
            error="Cancelled by its owner.",
            finished_at=func.now(),
            lease_expires_at=None,
        )
        .returning(GenerationJob)
        .execution_options(populate_existing=True)
    )
    assert job is not None
    video_before = video.status
    video.status, video.progress = status_without_job(video), 0
    await session.flush()
    await record_event(
        session,
        actor_id=owner_id,
        action="job.cancel",
        object_type="GenerationJob",
        object_id=job.id,
        request_id=request_id,
        diff={"status": [before, job.status], "video_status": [video_before, video.status]},
    )
    return job


def _check_generation_input(video: Video) -> None:
    if video.input_type is VideoInputType.URL and not video.source_url:
        raise BadUserInput("A video made from a URL needs a `sourceUrl`.", field="sourceUrl")
    if video.input_type is VideoInputType.DESCRIPTION and not (video.description or "").strip():
        raise BadUserInput(
            "A video made from a description needs a `description`.", field="description"
        )


# --- the worker side: claiming ------------------------------------------------------------

#: Jobs given up on (lease expired on their last attempt) per `claim_next` call, at most.
_MAX_GIVE_UPS_PER_CLAIM = 10


async def claim_next(session: AsyncSession, worker_id: str, lease_seconds: float) -> Claim | None:
    """Take the next job: first one whose worker died (lease expired), else the queued job that
    has waited longest and is available (not backing off). ``None`` when there is none.

    ``FOR UPDATE … SKIP LOCKED`` on the job *and* its video: concurrent claimers each get a
    different job without waiting, and a video that an API request holds is skipped for now.
    A reclaimed job that has used all its attempts is FAILED with the reason instead of run.
    """
    for _ in range(_MAX_GIVE_UPS_PER_CLAIM):
        row = (await session.execute(_next_expired())).one_or_none()
        if row is None:
            row = (await session.execute(_next_queued())).one_or_none()
        if row is None:
            return None
        job = row[0]
        if job.status is JobStatus.RUNNING and job.attempt >= job.max_attempts:
            await _give_up(session, job)
            continue
        return await _start_attempt(session, job, worker_id, lease_seconds)
    return None


async def seconds_until_claimable(session: AsyncSession) -> float | None:
    """How long until a backing-off job becomes available or a running job's lease runs out
    (``None``: nothing queued or running). Idle workers sleep exactly that long at most."""
    soonest = func.least(
        select(func.min(GenerationJob.available_at))
        .where(GenerationJob.status == JobStatus.QUEUED)
        .scalar_subquery(),
        select(func.min(GenerationJob.lease_expires_at))
        .where(GenerationJob.status == JobStatus.RUNNING)
        .scalar_subquery(),
    )
    seconds = await session.scalar(select(extract("epoch", soonest - func.now())))
    return None if seconds is None else max(0.0, float(seconds))


# --- helpers ------------------------------------------------------------------------------


def _next_expired() -> Select[GenerationJob, Video]:
    # ix_generation_jobs_lease_expires_at (partial, RUNNING: a handful of rows) finds these.
    # A RUNNING job without a lease (written by hand, or by `studio seed`) has no owner either.
    return _claimable(
        GenerationJob.status == JobStatus.RUNNING,
        or_(GenerationJob.lease_expires_at < func.now(), GenerationJob.lease_expires_at.is_(None)),
    ).order_by(GenerationJob.lease_expires_at.asc().nulls_first())


def _next_queued() -> Select[GenerationJob, Video]:
    # ix_generation_jobs_claimable (partial, QUEUED) gives this order without sorting.
    return _claimable(
        GenerationJob.status == JobStatus.QUEUED, GenerationJob.available_at <= func.now()
    ).order_by(GenerationJob.available_at, GenerationJob.queued_at)


def _claimable(*conditions: Any) -> Select[GenerationJob, Video]:
    return (
        select(GenerationJob, Video)
        .join(Video, Video.id == GenerationJob.video_id)
        .where(*conditions)
        .limit(1)
        .with_for_update(skip_locked=True, of=[GenerationJob, Video])
    )


async def _start_attempt(
    session: AsyncSession, job: GenerationJob, worker_id: str, lease_seconds: float
) -> Claim:
    reclaimed = job.status is JobStatus.RUNNING
    values: dict[str, Any] = {
        "status": JobStatus.RUNNING,
        "attempt": GenerationJob.attempt + 1,
        "stage": None,
        "progress": 0,
        "lease_owner": worker_id,
        "lease_expires_at": func.now() + timedelta(seconds=lease_seconds),
        "heartbeat_at": func.now(),
        "started_at": func.now(),
        "finished_at": None,
        "execution_time_ms": None,
    }
    if reclaimed:
        values["error"] = (
            f"The worker running attempt {job.attempt} stopped responding; trying again."
        )
    started = await session.scalar(
        update(GenerationJob)
        .where(GenerationJob.id == job.id)
        .values(**values)
        .returning(GenerationJob)
        .execution_options(populate_existing=True)
    )
    video = await session.scalar(
        update(Video)
        .where(Video.id == job.video_id)
        .values(status=VideoStatus.PROCESSING, progress=0, error_message=None)
        .returning(Video)
        .execution_options(populate_existing=True)
    )
    assert started is not None
    assert video is not None
    return Claim(started, video)


async def _give_up(session: AsyncSession, job: GenerationJob) -> None:
    message = (
        f"Generation stopped: the worker running it stopped responding on all "
        f"{job.max_attempts} attempts."
    )
    await session.execute(
        update(GenerationJob)
        .where(GenerationJob.id == job.id)
        .values(
            status=JobStatus.FAILED,
            error=message,
            finished_at=func.now(),
            lease_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(Video)
        .where(Video.id == job.video_id)
        .values(status=VideoStatus.ERROR, error_message=message)
    )

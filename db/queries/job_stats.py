"""The job queue at a glance, for ``GET /metrics`` (SPEC §5 Operations).

One statement over the active jobs only (``status IN ('QUEUED', 'RUNNING')``, the predicate of
the partial index ``uq_generation_jobs_active_video_id``), so its cost follows the size of the
queue, not of the job history. Every API process reports the same, cluster-wide numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, extract, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import GenerationJob, JobStatus


@dataclass(frozen=True)
class QueueStats:
    queued: int
    #: Queued and claimable now (the rest are retries waiting out their backoff).
    claimable: int
    running: int
    #: Running jobs whose lease ran out: their worker died or stalled; they are claimed again.
    expired_leases: int
    #: How long the claimable job that has waited longest has been claimable (0 when none).
    oldest_claimable_seconds: float


async def queue_stats(session: AsyncSession, *, timeout_ms: int) -> QueueStats:
    """Read the queue in the caller's transaction, giving up after ``timeout_ms`` (the setting
    is local to that transaction: a scrape must never wait as long as a request may)."""
    await session.execute(
        text("SELECT set_config('statement_timeout', :timeout, true)"),
        {"timeout": str(timeout_ms)},
    )
    job = GenerationJob
    queued = job.status == JobStatus.QUEUED
    claimable = and_(queued, job.available_at <= func.now())
    running = job.status == JobStatus.RUNNING
    row = (
        await session.execute(
            select(
                func.count().filter(queued),
                func.count().filter(claimable),
                func.count().filter(running),
                func.count().filter(and_(running, job.lease_expires_at < func.now())),
                extract("epoch", func.now() - func.min(job.available_at).filter(claimable)),
            ).where(job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))
        )
    ).one()
    return QueueStats(
        queued=row[0],
        claimable=row[1],
        running=row[2],
        expired_leases=row[3],
        oldest_claimable_seconds=max(0.0, float(row[4] or 0)),
    )

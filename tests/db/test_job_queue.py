"""The job queue in ``generation_jobs``: claim order, leases, fencing, retries, hand-backs.

Most tests run inside the test's rolled-back transaction, where ``now()`` stands still: lease
expiry and backoff are set up with explicit timestamps instead of waiting. The concurrency test
commits for real on a database of its own, with two connections claiming at once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from db.models import GenerationJob, JobStage, JobStatus, User, Video, VideoInputType, VideoStatus
from db.queries import job_leases, job_queue
from db.queries.job_leases import Lease, LeaseLost, VideoArtefacts
from db.queries.job_queue import Claim
from db.url import DatabaseURL
from tests.factories import make_job, make_user, make_video

LEASE = 30.0


async def _now(session: AsyncSession) -> datetime:
    now = await session.scalar(select(func.now()))
    assert isinstance(now, datetime)
    return now


async def _reload(session: AsyncSession, job_id: uuid.UUID) -> GenerationJob:
    job = await session.scalar(
        select(GenerationJob)
        .where(GenerationJob.id == job_id)
        .execution_options(populate_existing=True)
    )
    assert job is not None
    return job


async def _reload_video(session: AsyncSession, video_id: uuid.UUID) -> Video:
    video = await session.scalar(
        select(Video).where(Video.id == video_id).execution_options(populate_existing=True)
    )
    assert video is not None
    return video


async def _queued_job(session: AsyncSession, **overrides: Any) -> GenerationJob:
    owner = await make_user(session)
    video = await make_video(session, owner, status=VideoStatus.QUEUED)
    return await make_job(session, video, status=JobStatus.QUEUED, **overrides)


def _artefacts(**values: Any) -> VideoArtefacts:
    empty = VideoArtefacts(
        script={"segments": []},
        caption_tracks=[],
        media_path=None,
        poster_path=None,
        duration_ms=None,
    )
    return VideoArtefacts(**(empty | values))  # type: ignore[typeddict-item,no-any-return]


async def _claim(session: AsyncSession, worker: str = "worker-a") -> Claim:
    claim = await job_queue.claim_next(session, worker, LEASE)
    assert claim is not None
    return claim


# --- claiming -----------------------------------------------------------------------------


async def test_claim_takes_the_available_job_that_waited_longest(session: AsyncSession) -> None:
    now = await _now(session)
    later = await _queued_job(session, queued_at=now - timedelta(minutes=1), available_at=now)
    first = await _queued_job(
        session, queued_at=now - timedelta(minutes=5), available_at=now - timedelta(minutes=5)
    )
    backing_off = await _queued_job(
        session, queued_at=now - timedelta(hours=1), available_at=now + timedelta(seconds=10)
    )

    assert (await _claim(session)).job.id == first.id
    assert (await _claim(session)).job.id == later.id
    assert await job_queue.claim_next(session, "worker-a", LEASE) is None
    assert (await _reload(session, backing_off.id)).status is JobStatus.QUEUED
    assert await job_queue.seconds_until_claimable(session) == pytest.approx(10, abs=0.01)


async def test_claim_starts_an_attempt_under_a_lease(session: AsyncSession) -> None:
    job = await _queued_job(session)
    now = await _now(session)

    claim = await _claim(session, "worker-a")

    assert claim.job.status is JobStatus.RUNNING
    assert claim.job.attempt == 1
    assert claim.job.lease_owner == "worker-a"
    assert claim.job.lease_expires_at == now + timedelta(seconds=LEASE)
    assert claim.job.started_at == now
    assert claim.lease == Lease(job.id, job.video_id, "worker-a", 1)
    video = await _reload_video(session, job.video_id)
    assert (video.status, video.progress) == (VideoStatus.PROCESSING, 0)


async def test_a_running_job_with_a_live_lease_is_not_claimed(session: AsyncSession) -> None:
    await _queued_job(session)
    await _claim(session, "worker-a")
    assert await job_queue.claim_next(session, "worker-b", LEASE) is None


async def test_an_expired_lease_is_reclaimed_with_the_next_attempt(session: AsyncSession) -> None:
    job = await _queued_job(session)
    old = (await _claim(session, "worker-a")).lease
    await job_leases.report_progress(session, old, stage=JobStage.VOICE, progress=40)
    await _expire_lease(session, job.id)

    new = (await _claim(session, "worker-b")).lease

    assert (new.worker_id, new.attempt) == ("worker-b", 2)
    reclaimed = await _reload(session, job.id)
    assert (reclaimed.progress, reclaimed.stage) == (0, None)  # a new attempt starts over
    assert reclaimed.error is not None
    assert "attempt 1 stopped responding" in reclaimed.error


async def test_reclaiming_comes_before_queued_jobs(session: AsyncSession) -> None:
    now = await _now(session)
    stuck = await _queued_job(session, queued_at=now - timedelta(minutes=1))
    await _claim(session, "worker-a")
    await _expire_lease(session, stuck.id)
    await _queued_job(session, queued_at=now - timedelta(hours=1))

    assert (await _claim(session, "worker-b")).job.id == stuck.id


async def test_a_running_job_without_a_lease_is_reclaimed(session: AsyncSession) -> None:
    owner = await make_user(session)
    video = await make_video(session, owner, status=VideoStatus.PROCESSING)
    job = await make_job(session, video, status=JobStatus.RUNNING, attempt=1)

    assert (await _claim(session)).job.id == job.id


async def test_an_expired_lease_on_the_last_attempt_fails_the_job(session: AsyncSession) -> None:
    job = await _queued_job(session, max_attempts=2)
    for worker in ("worker-a", "worker-b"):
        await _claim(session, worker)
        await _expire_lease(session, job.id)

    assert await job_queue.claim_next(session, "worker-c", LEASE) is None

    failed = await _reload(session, job.id)
    assert (failed.status, failed.attempt) == (JobStatus.FAILED, 2)
    assert failed.error is not None
    assert "stopped responding on all 2 attempts" in failed.error
    assert failed.finished_at is not None
    video = await _reload_video(session, job.video_id)
    assert (video.status, video.error_message) == (VideoStatus.ERROR, failed.error)


# --- fencing ------------------------------------------------------------------------------

FencedWrite = Callable[[AsyncSession, Lease], Awaitable[Any]]
FENCED_WRITES: dict[str, FencedWrite] = {
    "renew_lease": lambda s, lease: job_leases.renew_lease(s, lease, LEASE),
    "check_lease": job_leases.check_lease,
    "report_progress": lambda s, lease: job_leases.report_progress(
        s, lease, stage=JobStage.RENDER, progress=99
    ),
    "finish": lambda s, lease: job_leases.finish(s, lease, artefacts=_artefacts()),
    "fail": lambda s, lease: job_leases.fail(s, lease, "boom", retry=True, backoff_seconds=1),
    "hand_back": job_leases.hand_back,
}


@pytest.mark.parametrize("write", FENCED_WRITES.values(), ids=FENCED_WRITES.keys())
async def test_a_worker_with_a_stale_attempt_cannot_write(
    session: AsyncSession, write: FencedWrite
) -> None:
    job = await _queued_job(session)
    stale = (await _claim(session, "worker-a")).lease
    await _expire_lease(session, job.id)
    current = (await _claim(session, "worker-a")).lease  # the same worker, a newer attempt
    await job_leases.report_progress(session, current, stage=JobStage.VOICE, progress=30)
    before = await _snapshot(session, job)

    with pytest.raises(LeaseLost, match="reclaimed"):
        async with session.begin_nested():  # the worker's transaction, rolled back
            await write(session, stale)

    assert await _snapshot(session, job) == before


@pytest.mark.parametrize("write", FENCED_WRITES.values(), ids=FENCED_WRITES.keys())
async def test_another_worker_cannot_write(session: AsyncSession, write: FencedWrite) -> None:
    job = await _queued_job(session)
    lease = (await _claim(session, "worker-a")).lease
    before = await _snapshot(session, job)
    with pytest.raises(LeaseLost):
        async with session.begin_nested():
            await write(session, Lease(lease.job_id, lease.video_id, "worker-b", lease.attempt))
    assert await _snapshot(session, job) == before


async def test_a_cancelled_job_fences_its_worker_out(session: AsyncSession) -> None:
    job = await _queued_job(session)
    lease = (await _claim(session)).lease
    owner_id = (await _reload_video(session, job.video_id)).user_id
    await job_queue.cancel(session, owner_id, job.id, request_id=None)

    with pytest.raises(LeaseLost, match="cancelled"):
        await job_leases.check_lease(session, lease)
    with pytest.raises(LeaseLost, match="cancelled"):
        await job_leases.finish(session, lease, artefacts=_artefacts())
    assert (await _reload(session, job.id)).status is JobStatus.CANCELLED


# --- progress, finishing, failing ----------------------------------------------------------


async def test_progress_never_goes_backwards_within_an_attempt(session: AsyncSession) -> None:
    job = await _queued_job(session)
    lease = (await _claim(session)).lease
    await job_leases.report_progress(session, lease, stage=JobStage.VOICE, progress=40)
    await job_leases.report_progress(session, lease, stage=JobStage.CAPTIONS, progress=30)

    reloaded = await _reload(session, job.id)
    assert (reloaded.stage, reloaded.progress) == (JobStage.CAPTIONS, 40)
    assert (await _reload_video(session, job.video_id)).progress == 40


async def test_finish_makes_the_video_ready_with_its_artefacts(session: AsyncSession) -> None:
    job = await _queued_job(session)
    lease = (await _claim(session)).lease
    script = {"segments": [{"index": 0, "text": "Hi", "startMs": 0, "endMs": 800}]}
    tracks = [{"language": "en", "format": "vtt", "url": "data:text/vtt;base64,"}]

    await job_leases.finish(
        session,
        lease,
        artefacts=_artefacts(
            script=script,
            caption_tracks=tracks,
            media_path="videos/v/j.1/video.mp4",
            poster_path="videos/v/j.1/poster.png",
            duration_ms=800,
        ),
    )

    done = await _reload(session, job.id)
    assert (done.status, done.progress, done.error) == (JobStatus.SUCCEEDED, 100, None)
    assert done.finished_at is not None
    assert done.execution_time_ms == 0  # now() stands still inside the test's transaction
    assert done.lease_expires_at is None
    video = await _reload_video(session, job.video_id)
    assert (video.status, video.progress, video.script, video.caption_tracks) == (
        VideoStatus.READY,
        100,
        script,
        tracks,
    )
    assert (video.media_path, video.poster_path, video.duration_ms) == (
        "videos/v/j.1/video.mp4",
        "videos/v/j.1/poster.png",
        800,
    )


async def test_failures_retry_with_exponential_backoff_then_fail(session: AsyncSession) -> None:
    job = await _queued_job(session, max_attempts=3)
    now = await _now(session)
    for attempt, backoff in ((1, 2), (2, 4)):
        lease = (await _claim(session)).lease
        assert lease.attempt == attempt
        status = await job_leases.fail(session, lease, "Oops.", retry=True, backoff_seconds=2)
        assert status is JobStatus.QUEUED
        queued = await _reload(session, job.id)
        assert queued.available_at == now + timedelta(seconds=backoff)
        assert (queued.lease_owner, queued.error) == (None, "Oops.")
        assert (await _reload_video(session, job.video_id)).status is VideoStatus.QUEUED
        assert await job_queue.claim_next(session, "worker-a", LEASE) is None  # backing off
        await _make_available(session, job.id)

    lease = (await _claim(session)).lease
    status = await job_leases.fail(session, lease, "Oops again.", retry=True, backoff_seconds=2)

    assert status is JobStatus.FAILED
    failed = await _reload(session, job.id)
    assert (failed.status, failed.attempt, failed.error) == (JobStatus.FAILED, 3, "Oops again.")
    video = await _reload_video(session, job.video_id)
    assert (video.status, video.error_message) == (VideoStatus.ERROR, "Oops again.")


async def test_a_user_facing_error_fails_without_retrying(session: AsyncSession) -> None:
    job = await _queued_job(session)
    lease = (await _claim(session)).lease
    status = await job_leases.fail(
        session, lease, "No description.", retry=False, backoff_seconds=2
    )
    assert status is JobStatus.FAILED
    assert (await _reload(session, job.id)).attempt == 1


async def test_a_hand_back_queues_the_job_without_using_an_attempt(session: AsyncSession) -> None:
    job = await _queued_job(session, max_attempts=1)
    lease = (await _claim(session)).lease
    await job_leases.hand_back(session, lease)

    handed = await _reload(session, job.id)
    assert (handed.status, handed.lease_owner, handed.lease_expires_at) == (
        JobStatus.QUEUED,
        None,
        None,
    )
    assert (handed.attempt, handed.max_attempts) == (1, 2)
    assert handed.available_at == await _now(session)
    again = (await _claim(session, "worker-b")).lease
    assert again.attempt == 2


# --- two claimers at once (committed, on a database of the test's own) ---------------------


@pytest.fixture
async def own_engine(migrated_database: DatabaseURL) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(
        migrated_database.url, connect_args=migrated_database.connect_args(), pool_size=4
    )
    yield engine
    await engine.dispose()


async def test_two_concurrent_claimers_never_claim_one_job_twice(own_engine: AsyncEngine) -> None:
    sessions = async_sessionmaker(own_engine, expire_on_commit=False)
    async with sessions.begin() as session:
        user_id = await session.scalar(
            insert(User).values(email="q@example.com").returning(User.id)
        )
        video_ids = list(
            await session.scalars(
                insert(Video).returning(Video.id),
                [
                    {
                        "user_id": user_id,
                        "title": f"V{i}",
                        "description": "D",
                        "input_type": VideoInputType.DESCRIPTION,
                    }
                    for i in range(40)
                ],
            )
        )
        await session.execute(insert(GenerationJob), [{"video_id": v} for v in video_ids])

    # A claim that holds its lock does not block the other claimer: it skips the locked job.
    async with sessions.begin() as first, sessions.begin() as second:
        one = await _claim(first, "worker-a")
        other = await asyncio.wait_for(job_queue.claim_next(second, "worker-b", LEASE), 5)
        assert other is not None
        assert other.job.id != one.job.id

    async def claim_all(worker: str) -> list[uuid.UUID]:
        claimed: list[uuid.UUID] = []
        while True:
            async with sessions.begin() as session:
                claim = await job_queue.claim_next(session, worker, LEASE)
            if claim is None:
                return claimed
            claimed.append(claim.job.id)

    a, b = await asyncio.gather(claim_all("worker-a"), claim_all("worker-b"))
    claimed = [one.job.id, other.job.id, *a, *b]
    assert len(claimed) == len(set(claimed)) == 40
    assert a, "both claimers took part"
    assert b, "both claimers took part"


# --- helpers ------------------------------------------------------------------------------


async def _expire_lease(session: AsyncSession, job_id: uuid.UUID) -> None:
    await session.execute(
        update(GenerationJob)
        .where(GenerationJob.id == job_id)
        .values(lease_expires_at=func.now() - timedelta(seconds=1))
    )


async def _make_available(session: AsyncSession, job_id: uuid.UUID) -> None:
    await session.execute(
        update(GenerationJob).where(GenerationJob.id == job_id).values(available_at=func.now())
    )


async def _snapshot(session: AsyncSession, job: GenerationJob) -> tuple[Any, ...]:
    reloaded = await _reload(session, job.id)
    video = await _reload_video(session, job.video_id)
    return (
        reloaded.status,
        reloaded.stage,
        reloaded.progress,
        reloaded.attempt,
        reloaded.lease_owner,
        reloaded.lease_expires_at,
        reloaded.version,
        video.status,
        video.progress,
        video.version,
    )

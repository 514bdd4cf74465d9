"""``studio worker`` processes on a database of the test's own (SPEC §5 Jobs survive failure).

Real processes, really killed: a job runs to READY; a worker killed with SIGKILL mid-job is
replaced by another after the lease; 50 jobs on 4 workers each run once; a cancelled job stops
within a second and the worker moves on; SIGTERM hands the job back and exits cleanly. The
stages after SCRIPT are slowed down with ``STUDIO_PIPELINE_STAGE_DELAY_MS`` so that there is a
"middle of a job" to act in.
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.worker.runner import LISTENER_NAME
from db.models import GenerationJob, JobStage, JobStatus, VideoStatus
from db.queries import job_queue
from db.url import DatabaseURL
from tests.support.jobs import committing_sessions, load_job, load_video, start_jobs, wait_for
from tests.support.processes import clean_env, run_studio
from tests.support.workers import Workers

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def sessions(migrated_database: DatabaseURL) -> AsyncIterator[Sessions]:
    async with committing_sessions(migrated_database) as sessions:
        yield sessions


def _terminate(
    workers: Workers, process: subprocess.Popen[bytes], *, send: bool = True, timeout: float = 15
) -> int:
    """SIGTERM (unless already sent) and the exit code; the worker's log if it does not exit."""
    if send:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(workers.log_of(process).read_text()) from None


async def _job_in_stage(
    sessions: Sessions, job_id: uuid.UUID, stage: JobStage, workers: Workers
) -> GenerationJob:
    async def check() -> GenerationJob | None:
        job = await load_job(sessions, job_id)
        return job if job.status is JobStatus.RUNNING and job.stage is stage else None

    try:
        return await wait_for(check, within=20, what=f"job in {stage.value}")
    except AssertionError:
        raise AssertionError("\n".join(str(e) for e in workers.entries())) from None


async def _finished(sessions: Sessions, job_id: uuid.UUID, within: float = 20) -> GenerationJob:
    async def check() -> GenerationJob | None:
        job = await load_job(sessions, job_id)
        return None if job.status.is_active else job

    return await wait_for(check, within=within, what=f"job {job_id} to finish")


async def _listening_workers(sessions: Sessions, count: int) -> None:
    async def listening() -> bool:
        async with sessions() as session:
            found = await session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE application_name = :name AND datname = current_database()"
                ),
                {"name": LISTENER_NAME},
            )
        return bool(found == count)

    await wait_for(listening, within=30, what=f"{count} workers listening")


def test_studio_worker_has_help() -> None:
    result = run_studio("worker", "--help", env=clean_env())
    assert result.returncode == 0, result.stderr
    assert "--concurrency" in result.stdout


async def test_a_worker_runs_a_job_to_ready(sessions: Sessions, workers: Workers) -> None:
    process = workers.start()
    (job,) = await start_jobs(sessions)

    done = await _finished(sessions, job.id)

    assert (done.status, done.attempt, done.progress) == (JobStatus.SUCCEEDED, 1, 100)
    assert done.execution_time_ms is not None
    video = await load_video(sessions, job.video_id)
    assert (video.status, video.progress) == (VideoStatus.READY, 100)
    assert video.script is not None
    assert len(video.script["segments"]) == 3
    assert all(segment["endMs"] > segment["startMs"] for segment in video.script["segments"])
    assert _terminate(workers, process) == 0


async def test_a_killed_workers_job_is_finished_by_another_after_the_lease(
    sessions: Sessions, workers: Workers
) -> None:
    first = workers.start(STUDIO_PIPELINE_STAGE_DELAY_MS="800")
    (job,) = await start_jobs(sessions)
    running = await _job_in_stage(sessions, job.id, JobStage.VOICE, workers)

    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    killed_at = time.time()
    second = workers.start(STUDIO_PIPELINE_STAGE_DELAY_MS="800")
    done = await _finished(sessions, job.id, within=30)

    assert (done.status, done.attempt, done.error) == (JobStatus.SUCCEEDED, 2, None)
    assert done.lease_owner != running.lease_owner
    assert done.started_at is not None
    assert running.lease_expires_at is not None
    assert done.started_at >= running.lease_expires_at  # not before the lease ran out
    assert (await load_video(sessions, job.video_id)).status is VideoStatus.READY
    (restart,) = [e for e in workers.entries(second) if e.get("job_id") == str(job.id)][:1]
    assert restart["attempt"] == 2
    (up,) = [
        e for e in workers.entries(second) if e["message"] == f"worker {e.get('worker_id')} started"
    ]
    up_at = datetime.fromisoformat(up["time"]).timestamp()
    # Taken over at once when both the lease (2 s, renewed until the kill) had run out and the
    # second worker was up, whichever came last (how long a process takes to start is not the
    # studio's to promise).
    assert restart["at"] - max(killed_at + 2, up_at) < 1.0
    assert _terminate(workers, second) == 0


async def test_fifty_jobs_on_four_workers_each_run_once(
    sessions: Sessions, workers: Workers
) -> None:
    processes = [
        workers.start(concurrency=2, STUDIO_PIPELINE_STAGE_DELAY_MS="20") for _ in range(4)
    ]
    # Every worker listening before the jobs come, so that all of them hear of the jobs (else
    # the first one up could run them all before the others have started).
    await _listening_workers(sessions, 4)
    jobs = await start_jobs(sessions, 50)

    for job in jobs:
        done = await _finished(sessions, job.id, within=40)
        assert (done.status, done.attempt) == (JobStatus.SUCCEEDED, 1)
    for process in processes:
        process.send_signal(signal.SIGTERM)
    codes = [_terminate(workers, process, send=False) for process in processes]
    assert codes == [0, 0, 0, 0]

    runs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in workers.entries():
        if "job_id" in entry:
            runs[entry["job_id"]].append(entry)
    assert set(runs) == {str(job.id) for job in jobs}  # none lost, none invented
    for job_id, entries in runs.items():
        started = [e for e in entries if e["message"].endswith("started")]
        ended = [e for e in entries if e.get("outcome")]
        assert len(started) == len(ended) == 1, (job_id, entries)
        assert started[0]["worker_id"] == ended[0]["worker_id"]
        assert ended[0]["outcome"] == "succeeded"
        assert started[0]["at"] <= ended[0]["at"]
    workers_used = {entries[0]["worker_id"] for entries in runs.values()}
    assert len(workers_used) >= 2


async def test_cancel_during_a_stage_stops_it_within_a_second(
    sessions: Sessions, workers: Workers
) -> None:
    process = workers.start(STUDIO_PIPELINE_STAGE_DELAY_MS="3000")
    job, waiting = await start_jobs(sessions, 2)
    running = await _job_in_stage(sessions, job.id, JobStage.VOICE, workers)
    if running.video_id != job.video_id:  # the worker took the other one first
        job, waiting = waiting, job

    cancelled_at = time.time()
    async with sessions.begin() as session:
        owner = (await load_video(sessions, job.video_id)).user_id
        at_cancel = await job_queue.cancel(session, owner, job.id, request_id=None)

    async def next_job_running() -> GenerationJob | None:
        other = await load_job(sessions, waiting.id)
        return other if other.status is JobStatus.RUNNING else None

    moved_on = await wait_for(next_job_running, within=5, what="the next job to start")
    stopped = [
        e
        for e in workers.entries(process)
        if e.get("job_id") == str(job.id) and e.get("outcome") == "stopped"
    ]
    assert len(stopped) == 1
    assert stopped[0]["at"] - cancelled_at < 1.0
    assert moved_on.lease_owner == running.lease_owner
    cancelled = await load_job(sessions, job.id)
    assert cancelled.status is JobStatus.CANCELLED
    # Nothing written after the cancel: the row is as the cancel left it (any write would have
    # moved its version on).
    assert (cancelled.version, cancelled.progress) == (at_cancel.version, at_cancel.progress)
    assert (await load_video(sessions, job.video_id)).status is VideoStatus.DRAFT


async def test_sigterm_hands_the_job_back_and_exits_cleanly(
    sessions: Sessions, workers: Workers
) -> None:
    process = workers.start(STUDIO_PIPELINE_STAGE_DELAY_MS="1000")
    (job,) = await start_jobs(sessions)
    await _job_in_stage(sessions, job.id, JobStage.VOICE, workers)

    assert _terminate(workers, process) == 0
    entries = workers.entries(process)
    (stopping,) = [e for e in entries if str(e.get("message", "")).endswith(" stopping")]
    (handed_back,) = [e for e in entries if e.get("outcome") == "handed back"]
    # The rest of the stage (at most its 1 s), then the hand-back: timed by the worker itself,
    # so a loaded machine's slow process exit does not count.
    stopped_at = datetime.fromisoformat(stopping["time"]).timestamp()
    assert handed_back["at"] - stopped_at < 1.0 + 1.0

    handed = await load_job(sessions, job.id)
    assert (handed.status, handed.lease_owner, handed.attempt) == (JobStatus.QUEUED, None, 1)
    assert handed.max_attempts == 4  # a hand-back does not use up an attempt
    outcomes = [e.get("outcome") for e in workers.entries(process) if e.get("outcome")]
    assert outcomes == ["handed back"]
    assert (await load_video(sessions, job.video_id)).status is VideoStatus.QUEUED

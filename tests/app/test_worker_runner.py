"""The worker in this process, on a database of the test's own: it wakes on NOTIFY, writes
progress that only grows at a bounded pace, fails readably, retries the unexpected, hands jobs
back when it stops, stops a cancelled job on its notification (or, when that was missed, on the
listener's reconnection or the safety-net check), and runs inside the API process when asked to,
sharing the API's LISTEN connection."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.main import create_app
from app.settings import Settings, load_settings
from app.worker import Worker
from app.worker.pipeline import Results, Stage, StageContext, VideoInput
from app.worker.runner import LISTENER_NAME
from app.worker.stages import default_stages
from db.models import GenerationJob, JobStage, JobStatus, VideoInputType, VideoStatus
from db.queries import job_leases, job_queue
from db.url import DatabaseURL
from tests.support.jobs import committing_sessions, load_job, load_video, start_jobs, wait_for
from tests.support.live_states import assert_job_states

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def sessions(migrated_database: DatabaseURL) -> AsyncIterator[Sessions]:
    async with committing_sessions(migrated_database) as sessions:
        yield sessions


def _settings(database: DatabaseURL, **overrides: Any) -> Settings:
    return load_settings(
        database_url=database.render(hide_password=False), inprocess_worker=False, **overrides
    )


class ChattyStage:
    """Reports progress thousands of times a second for about a second."""

    name = JobStage.VOICE
    weight = 4.0

    async def run(
        self, context: StageContext, video: VideoInput, results: Results
    ) -> dict[str, Any]:
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < 1.0:
            context.report(elapsed)
            await asyncio.sleep(0.0002)
        return {"timings": [], "durationMs": 0, "audioPath": None}


class BrokenStage:
    name = JobStage.RENDER
    weight = 1.0

    async def run(
        self, context: StageContext, video: VideoInput, results: Results
    ) -> dict[str, Any]:
        raise RuntimeError("a bug, with details users must not see")


class EndlessStage:
    """Runs until interrupted; reports half-way at once unless ``quiet`` (then the job's
    monitor has no progress write that would notice a cancel as a side effect)."""

    name = JobStage.VOICE
    weight = 1.0

    def __init__(self, *, quiet: bool = False) -> None:
        self.quiet = quiet
        self.cancelled = False

    async def run(
        self, context: StageContext, video: VideoInput, results: Results
    ) -> dict[str, Any]:
        if not self.quiet:
            context.report(0.5)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        raise AssertionError("unreachable")


@asynccontextmanager
async def _running_worker(
    database: DatabaseURL, settings: Settings, **options: Any
) -> AsyncIterator[Worker]:
    """A `Worker` on sessions of its own, running and idle when the block starts; stopped (its
    jobs handed back) when the block ends."""
    async with committing_sessions(database) as worker_sessions:
        worker = Worker(settings, worker_sessions, **options)

        async def idle() -> bool:
            return worker.idle_slots == worker.concurrency

        task = asyncio.create_task(worker.run())
        try:
            await wait_for(idle, within=10, what="the worker to be idle")
            yield worker
        finally:
            worker.stop()
            await asyncio.wait_for(task, 10)


async def _finished(sessions: Sessions, job_id: uuid.UUID, within: float = 10) -> Any:
    async def done() -> Any:
        job = await load_job(sessions, job_id)
        return None if job.status.is_active else job

    return await wait_for(done, within=within, what=f"job {job_id} to finish")


async def test_an_idle_worker_is_woken_by_notify_not_by_polling(
    migrated_database: DatabaseURL, sessions: Sessions
) -> None:
    settings = _settings(migrated_database, worker_poll_seconds=60)
    async with _running_worker(migrated_database, settings, concurrency=2):
        queued_at = time.monotonic()
        (job,) = await start_jobs(sessions)
        done = await _finished(sessions, job.id, within=5)
    assert done.status is JobStatus.SUCCEEDED
    assert time.monotonic() - queued_at < 5  # far sooner than the 60 s poll
    video = await load_video(sessions, job.video_id)
    assert video.status is VideoStatus.READY
    assert video.script is not None
    assert video.script["segments"][0]["text"] == "Video 0"
    assert [track["format"] for track in video.caption_tracks] == ["vtt", "srt"]


async def test_progress_written_only_grows_at_a_bounded_pace(
    migrated_database: DatabaseURL, sessions: Sessions
) -> None:
    settings = _settings(migrated_database)
    script, _, captions, _ = default_stages(settings)
    stages: list[Stage] = [script, ChattyStage(), captions]  # no narration: nothing to render
    events: list[dict[str, Any]] = []  # every write of the job: notifications never merge
    ended = asyncio.Event()

    def heard(event: dict[str, Any]) -> None:
        if event["kind"] == "job":
            events.append(event)
            if event["status"] not in ("QUEUED", "RUNNING"):
                ended.set()

    listener = await _listen(migrated_database, heard)
    try:
        async with _running_worker(migrated_database, settings, stages=stages):
            await start_jobs(sessions)
            await asyncio.wait_for(ended.wait(), timeout=10)
    finally:
        await listener.close()
    assert_job_states(events)
    running = [e for e in events if e["status"] == "RUNNING"]
    assert running[-1]["progress"] > 50
    # ~1 s of chatter: at most ~4 progress writes a second, plus one per stage change and a
    # lease renewal or two.
    assert 3 <= len(running) <= 4 * 1.5 + len(stages) + 3


async def test_a_stage_error_fails_the_job_with_its_message_at_once(
    migrated_database: DatabaseURL, sessions: Sessions
) -> None:
    async with _running_worker(migrated_database, _settings(migrated_database)):
        (job,) = await start_jobs(sessions, input_type=VideoInputType.URL)
        done = await _finished(sessions, job.id)
    assert (done.status, done.attempt) == (JobStatus.FAILED, 1)
    assert done.error is not None
    assert done.error == "The address 169.254.169.254 is not allowed (link-local)."
    video = await load_video(sessions, job.video_id)
    assert (video.status, video.error_message) == (VideoStatus.ERROR, done.error)


async def test_an_unexpected_error_is_retried_then_fails_without_details(
    migrated_database: DatabaseURL, sessions: Sessions
) -> None:
    settings = _settings(migrated_database, job_retry_backoff_seconds=0)
    stages = [*default_stages(settings)[:3], BrokenStage()]
    async with _running_worker(migrated_database, settings, stages=stages):
        (job,) = await start_jobs(sessions, max_attempts=2)
        done = await _finished(sessions, job.id)
    assert (done.status, done.attempt) == (JobStatus.FAILED, 2)
    assert done.error == "Generation failed because of an internal error."


async def test_media_storage_that_is_not_writable_fails_the_job_saying_so(
    migrated_database: DatabaseURL,
    sessions: Sessions,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The media folder's path leads through a file (a condition that stops root too): VOICE
    cannot store its audio. An outage, so the job is tried again, and it fails saying what."""
    (tmp_path / "not-a-folder").write_bytes(b"")
    media_dir = tmp_path / "not-a-folder" / "media"
    settings = _settings(migrated_database, job_retry_backoff_seconds=0, media_dir=media_dir)
    caplog.set_level(logging.ERROR, logger="app.media")
    async with _running_worker(migrated_database, settings):
        (job,) = await start_jobs(sessions, max_attempts=2)
        done = await _finished(sessions, job.id, within=30)
    assert (done.status, done.attempt) == (JobStatus.FAILED, 2)
    assert done.error == "The studio's media storage is not writable."
    video = await load_video(sessions, job.video_id)
    assert (video.status, video.error_message) == (VideoStatus.ERROR, done.error)
    logged = [r.getMessage() for r in caplog.records if r.name == "app.media"]
    assert len(logged) == 2  # once an attempt
    assert all(
        m.startswith(f"media storage is not writable: cannot write {media_dir}") for m in logged
    )


async def test_stopping_hands_a_job_back_when_its_stage_overruns_the_grace(
    migrated_database: DatabaseURL, sessions: Sessions
) -> None:
    settings = _settings(migrated_database)
    stages = _voice_after_script(settings, EndlessStage())
    async with _running_worker(migrated_database, settings, stages=stages, stop_grace_seconds=0.2):
        (job,) = await start_jobs(sessions)
        await _in_stage(sessions, job.id, JobStage.VOICE)
    handed = await load_job(sessions, job.id)
    assert (handed.status, handed.lease_owner, handed.attempt) == (JobStatus.QUEUED, None, 1)
    assert handed.max_attempts == 4
    assert (await load_video(sessions, job.video_id)).status is VideoStatus.QUEUED


async def test_a_worker_that_cannot_renew_its_lease_stops_the_job(
    migrated_database: DatabaseURL, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(migrated_database, worker_lease_seconds=1)
    stage = EndlessStage()
    stages = _voice_after_script(settings, stage)
    async with _running_worker(migrated_database, settings, stages=stages, stop_grace_seconds=0.2):
        (job,) = await start_jobs(sessions)
        await _in_stage(sessions, job.id, JobStage.VOICE)

        async def unreachable(*args: Any, **kwargs: Any) -> None:
            raise OSError("the database is unreachable")

        monkeypatch.setattr(job_leases, "renew_lease", unreachable)
        monkeypatch.setattr(job_leases, "check_lease", unreachable)
        cut_off = time.monotonic()
        await _stage_stopped(stage)
        stopped_after = time.monotonic() - cut_off
        monkeypatch.undo()

        async def reclaimed() -> bool:
            return (await load_job(sessions, job.id)).attempt == 2

        # Left as it was; once the lease has run out, it is reclaimed (here by the freed slot).
        await wait_for(reclaimed, within=5, what="the job to be reclaimed")
    assert stopped_after < settings.worker_lease_seconds + 0.5


async def test_a_cancel_notification_stops_the_running_stage(
    migrated_database: DatabaseURL, sessions: Sessions
) -> None:
    # No safety-net check within the test's wait: only the notification can stop the stage in
    # time.
    async with _job_in_endless_voice(migrated_database, sessions, poll_seconds=60) as (job, stage):
        await _cancel(sessions, job.id)
        await _stage_stopped(stage)
    assert (await load_job(sessions, job.id)).status is JobStatus.CANCELLED


async def test_a_cancel_missed_while_not_listening_is_seen_when_the_listener_reconnects(
    migrated_database: DatabaseURL, sessions: Sessions
) -> None:
    async with _job_in_endless_voice(migrated_database, sessions, poll_seconds=60) as (job, stage):
        await _cancel(sessions, job.id, notify=False)  # as if sent while reconnecting
        assert not stage.cancelled
        async with sessions.begin() as session:
            killed = await session.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = :name AND datname = current_database()"
                ),
                {"name": LISTENER_NAME},
            )
        assert killed == 1
        await _stage_stopped(stage)  # the reconnection makes every running job look again


async def test_a_missed_cancel_notification_is_caught_by_the_safety_net_check(
    migrated_database: DatabaseURL, sessions: Sessions
) -> None:
    async with _job_in_endless_voice(migrated_database, sessions, poll_seconds=0.5) as (job, stage):
        await _cancel(sessions, job.id, notify=False)
        await _stage_stopped(stage)


async def test_the_api_process_runs_a_worker_on_its_own_listener_when_asked_to(
    migrated_database: DatabaseURL, sessions: Sessions
) -> None:
    settings = load_settings(
        database_url=migrated_database.render(hide_password=False),
        inprocess_worker=True,
        worker_poll_seconds=60,  # the worker is woken by the API's listener, not by polling
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        (job,) = await start_jobs(sessions)
        done = await _finished(sessions, job.id)
        async with sessions() as session:
            listening = await session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
                )
            )
    assert done.status is JobStatus.SUCCEEDED
    assert listening == 1


@asynccontextmanager
async def _job_in_endless_voice(
    database: DatabaseURL, sessions: Sessions, *, poll_seconds: float
) -> AsyncIterator[tuple[GenerationJob, EndlessStage]]:
    """A running worker whose one job is in a quiet `EndlessStage` (VOICE) when the block starts:
    only a cancel the worker notices ends it. The lease (300 s) is not renewed within a test's
    wait; the worker's safety-net check comes every ``poll_seconds``."""
    settings = _settings(database, worker_poll_seconds=poll_seconds, worker_lease_seconds=300)
    stage = EndlessStage(quiet=True)
    async with _running_worker(database, settings, stages=_voice_after_script(settings, stage)):
        (job,) = await start_jobs(sessions)
        await _in_stage(sessions, job.id, JobStage.VOICE)
        yield job, stage


def _voice_after_script(settings: Settings, stage: EndlessStage) -> list[Stage]:
    """The real SCRIPT stage, then ``stage`` as VOICE (nothing after it)."""
    return [default_stages(settings)[0], stage]


async def _in_stage(sessions: Sessions, job_id: uuid.UUID, stage: JobStage) -> None:
    async def reached() -> bool:
        return (await load_job(sessions, job_id)).stage is stage

    await wait_for(reached, within=5, what=f"the {stage.value} stage")


async def _stage_stopped(stage: EndlessStage) -> None:
    async def stopped() -> bool:
        return stage.cancelled

    await wait_for(stopped, within=5, what="the stage to be stopped")


async def _cancel(sessions: Sessions, job_id: uuid.UUID, *, notify: bool = True) -> None:
    """`job_queue.cancel`, committed; without ``notify``, its job event is never sent."""
    video_id = (await load_job(sessions, job_id)).video_id
    owner = (await load_video(sessions, video_id)).user_id
    async with sessions.begin() as session:
        if not notify:
            # The video first, as `cancel` locks it: the worker's progress writes wait here and
            # not on the table lock below, so the two cannot deadlock.
            await session.execute(
                text("SELECT id FROM videos WHERE id = :id FOR UPDATE"), {"id": video_id}
            )
            await session.execute(_job_events("DISABLE"))
        await job_queue.cancel(session, owner, job_id, request_id=None)
        if not notify:
            await session.execute(_job_events("ENABLE"))


def _job_events(action: str) -> Any:
    return text(f"ALTER TABLE generation_jobs {action} TRIGGER generation_jobs_notify_change")


async def _listen(database: DatabaseURL, heard: Callable[[dict[str, Any]], None]) -> Any:
    """A connection of its own that hands ``heard`` each ``studio_events`` payload, parsed."""
    url = database.url
    connection = await asyncpg.connect(
        host=url.host or url.query.get("host"),
        port=url.port or int(str(url.query.get("port", 5432))),
        user=url.username,
        password=url.password,
        database=url.database,
    )
    await connection.add_listener("studio_events", lambda *args: heard(json.loads(args[3])))
    return connection

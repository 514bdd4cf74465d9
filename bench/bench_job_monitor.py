"""What a running job costs while it reports nothing, how soon a cancel stops it, and how many
``LISTEN`` connections one ``studio serve`` process holds.

    .venv/bin/python bench/bench_job_monitor.py [--seconds 30] [--cancels 20]

Creates a throwaway database (on the server the tests would use), then:

* **quiet job**: a real `app.worker.Worker` in this process (default settings: 30 s lease,
  5 s poll) runs one job whose only stage waits and reports nothing. SQL statements and
  transactions on the worker's engine are counted with SQLAlchemy event hooks for ``--seconds``
  (the listener's own connection is not counted: it is per process, not per job).
* **cancel**: ``--cancels`` times, a job is queued, reaches that stage and is cancelled with
  `job_queue.cancel`; timed from sending the cancel's COMMIT to the stage being interrupted.
* **LISTEN**: a real ``studio serve`` process with its in-process worker on runs one job to
  SUCCEEDED; then its connections are counted in ``pg_stat_activity``.

Prints Markdown to paste into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.settings import load_settings
from app.worker import Worker
from app.worker.pipeline import Results, StageContext, VideoInput
from db.engine import create_engine, create_sessionmaker
from db.models import JobStage, JobStatus
from db.queries import job_queue
from db.url import DatabaseURL
from tests.support.jobs import committing_sessions, load_job, load_video, start_jobs, wait_for
from tests.support.processes import clean_env, free_port, start_studio, stop, wait_until_ready
from tests.support.server import choose_server


class QuietStage:
    """Waits until interrupted, reporting nothing; notes when it started and was stopped."""

    name = JobStage.VOICE
    weight = 1.0

    def __init__(self) -> None:
        self.started: asyncio.Queue[None] = asyncio.Queue()
        self.stopped: asyncio.Queue[float] = asyncio.Queue()

    async def run(
        self, context: StageContext, video: VideoInput, results: Results
    ) -> dict[str, Any]:
        self.started.put_nowait(None)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.stopped.put_nowait(time.perf_counter())
            raise
        raise AssertionError("unreachable")


class Counter:
    def __init__(self) -> None:
        self.statements = 0
        self.transactions = 0

    def reset(self) -> None:
        self.statements = self.transactions = 0


async def measure_worker(database: DatabaseURL, seconds: float, cancels: int) -> dict[str, Any]:
    settings = load_settings(database_url=database.render(hide_password=False), log_level="WARNING")
    engine = create_engine(settings)
    counter = Counter()

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _statement(*args: Any) -> None:
        counter.statements += 1

    @event.listens_for(engine.sync_engine, "commit")
    def _commit(*args: Any) -> None:
        counter.transactions += 1

    stage = QuietStage()
    worker = Worker(settings, create_sessionmaker(engine), stages=[stage])
    task = asyncio.create_task(worker.run())
    latencies: list[float] = []
    async with committing_sessions(database) as sessions:

        async def idle() -> bool:
            return worker.idle_slots == 1

        await wait_for(idle, within=30, what="the worker to be idle")
        (job,) = await start_jobs(sessions)
        await asyncio.wait_for(stage.started.get(), 30)
        await asyncio.sleep(0.5)  # let the stage-start write's transaction finish
        counter.reset()
        started = time.perf_counter()
        await asyncio.sleep(seconds)  # the measurement window, not a wait for work
        quiet = (counter.statements, counter.transactions, time.perf_counter() - started)
        await _cancel(sessions, job.id)
        await asyncio.wait_for(stage.stopped.get(), 30)

        for _ in range(cancels):
            (job,) = await start_jobs(sessions)
            await asyncio.wait_for(stage.started.get(), 30)
            # A moment into the stage, at a random phase of the monitor's quarter-second tick.
            await asyncio.sleep(0.1 + (time.perf_counter_ns() % 250) / 1000)
            cancelled_at = await _cancel(sessions, job.id)
            latencies.append(await asyncio.wait_for(stage.stopped.get(), 30) - cancelled_at)
    worker.stop()
    await task
    await engine.dispose()
    statements, transactions, elapsed = quiet
    return {
        "seconds": elapsed,
        "statements": statements,
        "transactions": transactions,
        "latencies_ms": sorted(latency * 1000 for latency in latencies),
    }


async def _cancel(sessions: async_sessionmaker[AsyncSession], job_id: Any) -> float:
    """Cancel the job; when its COMMIT was sent (the notification goes out as it returns)."""
    job = await load_job(sessions, job_id)
    owner = (await load_video(sessions, job.video_id)).user_id
    async with sessions() as session:
        await job_queue.cancel(session, owner, job_id, request_id=None)
        committing = time.perf_counter()
        await session.commit()
    return committing


async def measure_listen(database: DatabaseURL) -> list[tuple[str, str]]:
    """The ``(application_name, query)`` of every connection a ``studio serve`` holds."""
    port = free_port()
    env = clean_env(
        DATABASE_URL=database.render(hide_password=False),
        STUDIO_INPROCESS_WORKER="true",
        STUDIO_LOG_LEVEL="WARNING",
    )
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "serve.log"
        process = start_studio("serve", "--port", str(port), env=env, log=log)
        try:
            wait_until_ready(port, process, log)
            async with committing_sessions(database) as sessions:
                (job,) = await start_jobs(sessions)

                async def succeeded() -> bool:
                    return (await load_job(sessions, job.id)).status is JobStatus.SUCCEEDED

                await wait_for(succeeded, within=60, what="the in-process worker to run a job")
                async with sessions() as session:
                    rows = await session.execute(
                        text(
                            "SELECT application_name, query FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                            "ORDER BY application_name"
                        )
                    )
                    return [(str(name), str(query)) for name, query in rows]
        finally:
            stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--cancels", type=int, default=20)
    args = parser.parse_args()

    server = choose_server()
    try:
        database = server.create_database(prefix="studio_bench")
        try:
            worker = asyncio.run(measure_worker(database, args.seconds, args.cancels))
            connections = asyncio.run(measure_listen(database))
        finally:
            server.drop_database(database)
    finally:
        server.close()

    print(f"Python {platform.python_version()} on {platform.machine()}, database: {server.kind}")
    print()
    seconds = worker["seconds"]
    print("| quiet running job | seconds | statements | transactions | statements/s |")
    print("| --- | --- | --- | --- | --- |")
    print(
        f"| 1 | {seconds:.1f} | {worker['statements']} | {worker['transactions']} "
        f"| {worker['statements'] / seconds:.2f} |"
    )
    print()
    latencies = worker["latencies_ms"]
    if latencies:
        print("| cancels | median ms | max ms |")
        print("| --- | --- | --- |")
        print(f"| {len(latencies)} | {statistics.median(latencies):.1f} | {max(latencies):.1f} |")
        print()
    listening = [name for name, query in connections if query.upper().startswith("LISTEN")]
    print(f"`studio serve` connections: {connections}")
    print(f"LISTEN connections: {len(listening)} ({', '.join(listening)})")


if __name__ == "__main__":
    main()

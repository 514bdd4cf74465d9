"""How fast the queue hands out jobs: claims per second, and whole jobs per second, with 1 and 4
worker processes.

    .venv/bin/python bench/bench_job_claims.py [--claims 2000] [--jobs 400] [--workers 1 4]

Creates a throwaway database (on the server the tests would use) and, for each worker count:

* **claim**: ``--claims`` queued jobs; each process loops ``claim_next`` + commit (one short
  transaction per claim, what a worker does before running a job) until the queue is empty.
  This is the queue's own ceiling: ``SELECT … FOR UPDATE SKIP LOCKED`` plus the job and video
  updates (and their NOTIFY triggers).
* **worker**: ``--jobs`` queued jobs run by real `app.worker.Worker` objects (one per process,
  concurrency 1) with the default stages and no stage delay: claim, four stage/progress writes,
  lease checks, finish. Timed from the commit that queues them (idle workers are woken by
  NOTIFY) until the last one SUCCEEDED.

Each process is a separate Python interpreter (``spawn``), as separate ``studio worker``
processes would be. Prints a Markdown table to paste into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import platform
import sys
import time
from multiprocessing.synchronize import Event as EventType
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, insert, select

from app.settings import load_settings
from app.worker import Worker
from db.engine import create_engine, create_sessionmaker
from db.models import GenerationJob, JobStatus, User, Video, VideoInputType
from db.queries.job_queue import claim_next
from tests.support.server import choose_server

DESCRIPTION = "Sunlight knocks electrons loose. The electrons flow as a current."


async def _queue_jobs(database_url: str, count: int) -> None:
    settings = load_settings(database_url=database_url)
    engine = create_engine(settings, pooled=False)
    try:
        async with create_sessionmaker(engine).begin() as session:
            user_id = await session.scalar(
                insert(User).values(email=f"bench-{time.time_ns()}@example.com").returning(User.id)
            )
            video_ids = list(
                await session.scalars(
                    insert(Video).returning(Video.id),
                    [
                        {
                            "user_id": user_id,
                            "title": f"Video {i}",
                            "description": DESCRIPTION,
                            "input_type": VideoInputType.DESCRIPTION,
                        }
                        for i in range(count)
                    ],
                )
            )
            await session.execute(insert(GenerationJob), [{"video_id": v} for v in video_ids])
    finally:
        await engine.dispose()


async def _count_active(database_url: str) -> int:
    settings = load_settings(database_url=database_url)
    engine = create_engine(settings, pooled=False)
    try:
        async with create_sessionmaker(engine)() as session:
            active = await session.scalar(
                select(func.count())
                .select_from(GenerationJob)
                .where(GenerationJob.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))
            )
            return int(active or 0)
    finally:
        await engine.dispose()


# --- child processes ----------------------------------------------------------------------


def _claimer(database_url: str, ready: EventType, go: EventType, name: str) -> None:
    async def main() -> None:
        settings = load_settings(database_url=database_url, log_level="WARNING")
        engine = create_engine(settings, pooled=True)
        sessions = create_sessionmaker(engine)
        async with sessions() as session:  # open the pooled connection before the clock starts
            await session.execute(select(1))
        ready.set()
        go.wait()
        while True:
            async with sessions.begin() as session:
                if await claim_next(session, name, 30) is None:
                    break
        await engine.dispose()

    asyncio.run(main())


def _worker(database_url: str, ready: EventType, stop: EventType) -> None:
    async def main() -> None:
        settings = load_settings(database_url=database_url, log_level="WARNING")
        engine = create_engine(settings, pooled=True)
        worker = Worker(settings, create_sessionmaker(engine))
        task = asyncio.create_task(worker.run())
        for _ in range(6000):  # until the worker waits for work (at most a minute)
            if worker.idle_slots == worker.concurrency:
                break
            await asyncio.sleep(0.01)
        ready.set()
        await asyncio.to_thread(stop.wait)
        worker.stop()
        await task
        await engine.dispose()

    asyncio.run(main())


# --- the two measurements -----------------------------------------------------------------


def measure_claims(database_url: str, processes: int, claims: int) -> float:
    asyncio.run(_queue_jobs(database_url, claims))
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    readies = [context.Event() for _ in range(processes)]
    children = [
        context.Process(target=_claimer, args=(database_url, readies[i], go, f"bench-{i}"))
        for i in range(processes)
    ]
    for child in children:
        child.start()
    for ready in readies:
        ready.wait(60)
    started = time.perf_counter()
    go.set()
    for child in children:
        child.join()
    elapsed = time.perf_counter() - started
    assert asyncio.run(_count_active(database_url)) == claims  # all RUNNING, none left QUEUED
    return elapsed


def measure_worker_jobs(database_url: str, processes: int, jobs: int) -> float:
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    readies = [context.Event() for _ in range(processes)]
    children = [
        context.Process(target=_worker, args=(database_url, readies[i], stop))
        for i in range(processes)
    ]
    for child in children:
        child.start()
    for ready in readies:
        ready.wait(60)
    asyncio.run(_queue_jobs(database_url, jobs))
    started = time.perf_counter()
    while asyncio.run(_count_active(database_url)) > 0:
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    stop.set()
    for child in children:
        child.join()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--claims", type=int, default=2000)
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()

    server = choose_server()
    rows = []
    try:
        for processes in args.workers:
            for mode in ("claim", "worker"):
                database = server.create_database(prefix="studio_bench")
                url = database.render(hide_password=False)
                try:
                    if mode == "claim":
                        count, elapsed = args.claims, measure_claims(url, processes, args.claims)
                    else:
                        count, elapsed = args.jobs, measure_worker_jobs(url, processes, args.jobs)
                finally:
                    server.drop_database(database)
                rows.append((mode, processes, count, elapsed))
    finally:
        server.close()

    print(f"Python {platform.python_version()} on {platform.machine()}, database: {server.kind}")
    print()
    print("| measure | worker processes | jobs | seconds | jobs/s |")
    print("| --- | --- | --- | --- | --- |")
    for mode, processes, count, elapsed in rows:
        print(f"| {mode} | {processes} | {count} | {elapsed:.2f} | {count / elapsed:.0f} |")


if __name__ == "__main__":
    main()

"""How long a committed progress write takes to reach a subscriber (issue 5, "Done when").

    .venv/bin/python bench/bench_event_latency.py [--events 300] [--interval-ms 20]

Creates a throwaway database (on the server the tests would use), starts one real
``studio serve`` process on it, subscribes to ``jobProgress`` over graphql-transport-ws, and then
writes ``--events`` progress updates to the job's row, each in its own committed transaction,
``--interval-ms`` apart (a worker throttles its progress writes; 0 writes back to back). The job
is retried (``attempt`` 2, 3, 4 …) so that progress can run 1..100 for each attempt; 10 warm-up
writes (attempt 1) come first and are not measured.

The delay of a write is from the moment its COMMIT returned to the moment the subscriber received
the state it wrote: NOTIFY → the API's listener → the hub → a re-read with fresh loaders → the
websocket. Writes whose state never arrived because a newer one superseded it first (coalesced)
are counted separately. Prints a Markdown table to paste into bench/RESULTS.md.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import update

from app.settings import load_settings
from db.models import GenerationJob, JobStage, JobStatus
from db.url import DatabaseURL
from tests.support.live_jobs import create_live_job, update_job, writer_engine
from tests.support.processes import clean_env, free_port, start_studio, stop, wait_until_ready
from tests.support.server import choose_server
from tests.support.websocket import bearer, open_websocket

SECRET = "bench-event-latency-secret-key-0123456789"  # noqa: S105 (a throwaway key)
WARM_UP = 10  # writes before the measured ones (first statements, caches)
QUERY = "subscription($id: ID!) { jobProgress(jobId: $id) { status attempt progress } }"


async def measure(
    database: DatabaseURL, base_url: str, events: int, interval: float
) -> tuple[list[float], int]:
    settings = load_settings(database_url=database.render(hide_password=False), secret_key=SECRET)
    writer = writer_engine(database)
    committed: dict[tuple[int, int], float] = {}
    arrived: dict[tuple[int, int], float] = {}
    try:
        job = await create_live_job(writer, settings)
        await update_job(writer, job.job_id, max_attempts=events // 100 + 3)
        async with open_websocket(base_url) as ws:
            await ws.init(bearer(job.token))
            await ws.subscribe("job", QUERY, {"id": job.job_gid})
            await ws.next_data("job")  # the current state
            done = asyncio.Event()

            async def receive() -> None:
                while True:
                    message = await ws.receive(within=30)
                    if message["type"] != "next":
                        break
                    state = message["payload"]["data"]["jobProgress"]
                    arrived[(state["attempt"], state["progress"])] = time.perf_counter()
                    if state["status"] == JobStatus.SUCCEEDED.value:
                        break
                done.set()

            receiver = asyncio.create_task(receive())
            # One connection, as a worker's pool would give it; the clock starts when COMMIT
            # has returned.
            async with writer.connect() as connection:
                for index in range(-WARM_UP, events):
                    attempt, progress = index // 100 + 2, index % 100 + 1
                    await connection.execute(
                        update(GenerationJob)
                        .where(GenerationJob.id == job.job_id)
                        .values(
                            status=JobStatus.RUNNING,
                            stage=JobStage.VOICE,
                            attempt=attempt,
                            progress=progress,
                        )
                    )
                    await connection.commit()
                    if index >= 0:
                        committed[(attempt, progress)] = time.perf_counter()
                    await asyncio.sleep(interval)
            await update_job(writer, job.job_id, status=JobStatus.SUCCEEDED)
            await asyncio.wait_for(done.wait(), timeout=30)
            await receiver
    finally:
        await writer.dispose()
    delays = [(arrived[key] - at) * 1000 for key, at in committed.items() if key in arrived]
    return delays, len(committed) - len(delays)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--interval-ms", type=float, default=20.0)
    args = parser.parse_args()
    server = choose_server()
    database = server.create_database(prefix="studio_bench")
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="studio-bench-")) / "serve.log"
    env = clean_env(
        DATABASE_URL=database.render(hide_password=False),
        STUDIO_SECRET_KEY=SECRET,
        STUDIO_INPROCESS_WORKER="false",
        STUDIO_LOG_LEVEL="WARNING",
    )
    process = start_studio("serve", "--port", str(port), env=env, log=log)
    try:
        wait_until_ready(port, process, log)
        delays, coalesced = asyncio.run(
            measure(database, f"http://127.0.0.1:{port}", args.events, args.interval_ms / 1000)
        )
    finally:
        stop(process)
        server.drop_database(database)
        server.close()
    delays.sort()
    p99 = delays[max(0, int(len(delays) * 0.99) - 1)]
    print(
        f"machine: {platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}, PostgreSQL: {server.kind}"
    )
    print("| writes | interval ms | arrived | coalesced | median ms | p99 ms | max ms |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(
        f"| {args.events} | {args.interval_ms:g} | {len(delays)} | {coalesced} "
        f"| {statistics.median(delays):.1f} | {p99:.1f} | {delays[-1]:.1f} |"
    )


if __name__ == "__main__":
    main()

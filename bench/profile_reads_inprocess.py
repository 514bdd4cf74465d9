"""CPU per request of the HTTP read benchmark's queries, in process: no sockets, no load generator.

    .venv/bin/python bench/profile_reads_inprocess.py [--queries page,nested,small]
        [--requests 400] [--batches 5] [--concurrency 1] [--env STUDIO_COMPILED_READS=false ...]
        [--gc-threshold 700,10,10] [--profile page] [--sort tottime] [--top 40] [--callers NAME]
        [--dump FILE]

Seeds the data set of `bench/bench_http_reads.py` into a throwaway database, builds the app as
``studio serve`` would (`app.main.create_app`, lifespan run) and sends each query straight into
the ASGI application, ``--concurrency`` at a time. Prints, per query, the process's CPU time per
request (median over batches; PostgreSQL runs in its own process, so its work is not counted):
the figure that decides req/s on a saturated core, without the noise of the HTTP benchmark.
Each batch is also given as a multiple of a fixed pure-Python loop timed around it, since a
shared machine's speed changes from minute to minute, and the garbage collector's share is
printed (``gc.callbacks``). ``--profile QUERY`` runs one more batch of that query under cProfile
and prints its top functions (``--callers`` adds who called the matching ones).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_http_reads import Bench, prepare
from bench.http_reads_data import QUERIES
from tests.support.server import choose_server


async def call(app: Any, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """One POST /graphql through the ASGI app; (status, body)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        + [(b"content-length", str(len(body)).encode()), (b"host", b"bench")],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


class CollectorTime:
    """CPU seconds the cyclic garbage collector spent, by generation."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.passes = [0, 0, 0]
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.process_time()
        else:
            self.seconds[info["generation"]] += time.process_time() - self._started
            self.passes[info["generation"]] += 1

    def take(self) -> tuple[list[float], list[int]]:
        taken = (self.seconds, self.passes)
        self.seconds, self.passes = [0.0, 0.0, 0.0], [0, 0, 0]
        return taken


COLLECTOR = CollectorTime()


async def batch(app: Any, body: bytes, headers: dict[str, str], n: int, concurrency: int) -> float:
    """CPU seconds per request over ``n`` requests."""
    remaining = n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            status, answer = await call(app, body, headers)
            if status != 200 or b'"errors"' in answer:
                raise SystemExit(f"unexpected answer {status}: {answer[:300]!r}")

    started = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - started) / n


def reference_seconds() -> float:
    """CPU seconds of a fixed pure-Python loop (median of 5): a yardstick for a shared machine,
    whose speed changes with what else runs on it."""

    def step(value: int) -> int:
        return (value * 31 + 7) % 1009

    def loop() -> float:
        started = time.process_time()
        value = 1
        for _ in range(20_000):
            value = step(value)
        return time.process_time() - started

    return statistics.median(loop() for _ in range(3))


async def run(args: argparse.Namespace, bench: Bench) -> None:
    from app.main import create_app
    from app.settings import load_settings

    env = bench.env(bench.database, "off") | {"STUDIO_GC_FREEZE": "true"}  # as `studio serve`
    env |= dict(item.split("=", 1) for item in args.env)
    os.environ.update(env)
    settings = load_settings()
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        if args.gc_threshold:
            gc.set_threshold(*(int(part) for part in args.gc_threshold.split(",")))
        for query in args.queries:
            body, headers = bench.request(query)
            await batch(app, body, headers, 50, args.concurrency)  # warm-up
            COLLECTOR.take()
            tracked = len(gc.get_objects())
            figures, ratios = [], []
            for _ in range(args.batches):
                before = reference_seconds()
                figure = await batch(app, body, headers, args.requests, args.concurrency)
                unit = (before + reference_seconds()) / 2
                figures.append(figure)
                ratios.append(figure / unit)
            seconds, passes = COLLECTOR.take()
            collected = " + ".join(
                f"gen{g} {seconds[g] / (args.requests * args.batches) * 1e6:.0f} us "
                f"({passes[g] / (args.requests * args.batches):.2f} passes)"
                for g in range(3)
            )
            median = statistics.median(figures) * 1e6
            spread = ", ".join(f"{f * 1e6:.0f}" for f in figures)
            print(
                f"{query}: {median:.0f} us CPU per request (batches: {spread}); "
                f"{statistics.median(ratios):.3f} x the reference loop "
                f"(by batch: {', '.join(f'{r:.3f}' for r in ratios)}); "
                f"garbage collector per request: {collected}; objects the collector tracks: "
                f"{tracked} after the warm-up, {len(gc.get_objects())} after the batches "
                f"({gc.get_freeze_count()} frozen)",
                flush=True,
            )
        if args.profile:
            body, headers = bench.request(args.profile)
            profiler = cProfile.Profile()
            profiler.enable()
            await batch(app, body, headers, args.requests, args.concurrency)
            profiler.disable()
            if args.dump:
                profiler.dump_stats(args.dump)
            stats = pstats.Stats(profiler)
            stats.sort_stats(args.sort).print_stats(args.top)
            if args.callers:
                stats.print_callers(args.callers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", default="page,nested,small")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the app")
    parser.add_argument(
        "--gc-threshold", help="gc.set_threshold arguments once started: 7000,10,10"
    )
    parser.add_argument("--profile", choices=sorted(QUERIES))
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--callers", help="also print the callers of functions matching this")
    parser.add_argument("--dump", help="also write the profile to this file (pstats format)")
    args = parser.parse_args()
    args.queries = [q for q in args.queries.split(",") if q]
    server = choose_server()
    database = server.create_database(prefix="studio_profile")
    try:
        seeded, _ = asyncio.run(prepare(database))
        bench = Bench(argparse.Namespace(queries=args.queries, connections=1), database, seeded)
        asyncio.run(run(args, bench))
    finally:
        server.drop_database(database)
        server.close()


if __name__ == "__main__":
    main()

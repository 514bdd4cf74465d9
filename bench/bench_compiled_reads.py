"""The compiled read path against the resolver path, in-process, on the same data.

    .venv/bin/python bench/bench_compiled_reads.py [--requests 300] [--profile]

Creates a throwaway database, seeds it as bench/bench_read_api.py does (100 videos), starts two
apps on it (``compiled_reads`` on and off) behind httpx (no network) and times ``--requests``
sequential requests of each query on each path: the small query (`video(id)` with
`jobs(first: 5)`) and the nested query of tests/schema/test_batching.py (N = 10 and 100).
``--profile`` runs each under cProfile too and prints where the time goes. Prints a Markdown
table for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.auth import issue_access_token
from app.main import create_app
from app.settings import load_settings
from bench.bench_read_api import seed_bench_data
from schema.relay import to_global_id
from tests.schema.test_batching import NESTED_QUERY
from tests.support.server import choose_server

SMALL_QUERY = """query Small($id: ID!) { video(id: $id) { id title status
  jobs(first: 5) { totalCount edges { node { id status queuedAt } } } } }"""


async def _time(
    client: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str], requests: int
) -> list[float]:
    for _ in range(50):  # warm-up: connections, caches, plans, the app's start-up work
        (await client.post("/graphql", json=body, headers=headers)).raise_for_status()
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        response = await client.post("/graphql", json=body, headers=headers)
        timings.append((time.perf_counter() - started) * 1000)
        assert b'"errors"' not in response.content, response.text
    return timings


async def run(
    database_url: str, requests: int, profile: bool
) -> list[tuple[str, str, float, float]]:
    """(query, path, median ms, ms per request under cProfile or 0)."""
    rows: list[tuple[str, str, float, float]] = []
    for compiled in (False, True):
        settings = load_settings(
            database_url=database_url,
            log_level="WARNING",
            compiled_reads=compiled,
            rate_limit_enabled=False,  # sequential requests from one client, by design
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            sessionmaker = app.state.studio.sessionmaker
            async with sessionmaker() as session:
                user_id = await session.scalar(text("SELECT id FROM users LIMIT 1"))
                video_id = await session.scalar(
                    text("SELECT video_id FROM generation_jobs GROUP BY video_id LIMIT 1")
                )
            if user_id is None:
                user_id = await seed_bench_data(sessionmaker, 100)
                async with sessionmaker() as session:
                    video_id = await session.scalar(
                        text("SELECT video_id FROM generation_jobs GROUP BY video_id LIMIT 1")
                    )
            small_id = to_global_id("Video", video_id)
            token = issue_access_token(settings, user_id).token
            headers = {"Authorization": f"Bearer {token}"}
            queries = {
                "small": {
                    "query": SMALL_QUERY,
                    "variables": {"id": small_id},
                },
                "nested N=10": {"query": NESTED_QUERY, "variables": {"n": 10}},
                "nested N=100": {"query": NESTED_QUERY, "variables": {"n": 100}},
            }
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                for name, body in queries.items():
                    timings = await _time(client, body, headers, requests)
                    path = "compiled" if compiled else "resolver"
                    profiled = 0.0
                    if profile:
                        profiler = cProfile.Profile()
                        profiler.enable()
                        profiled = statistics.mean(await _time(client, body, headers, requests))
                        profiler.disable()
                        out = io.StringIO()
                        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(8)
                        print(f"--- {name}, {path} ---\n{out.getvalue()}")
                    rows.append((name, path, statistics.median(timings), profiled))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    server = choose_server()
    database = server.create_database(prefix="studio_bench")
    try:
        rows = asyncio.run(run(database.render(hide_password=False), args.requests, args.profile))
    finally:
        server.drop_database(database)
        server.close()
    found = {(name, path): (ms, profiled) for name, path, ms, profiled in rows}
    print("| query | resolver ms | compiled ms | speed-up | under cProfile: resolver / compiled |")
    print("| --- | --- | --- | --- | --- |")
    for name in dict.fromkeys(name for name, *_ in rows):
        (before, before_p), (after, after_p) = found[(name, "resolver")], found[(name, "compiled")]
        print(
            f"| {name} | {before:.2f} | {after:.2f} | {before / after:.1f}x "
            f"| {before_p:.2f} / {after_p:.2f} |"
        )


if __name__ == "__main__":
    main()

"""What running behind a transaction pooler costs the read side.

    .venv/bin/python bench/bench_pooler.py [--requests 100] [--rounds 5] [--videos 100]

The nested query of tests/schema/test_batching.py (page sizes 1, 10 and 100), in-process behind
httpx, in three set-ups over one seeded database:

- ``direct``: straight to PostgreSQL, statement caches on, the timeout a startup parameter (the
  baseline: what a direct URL gets);
- ``direct, pooler mode``: straight to PostgreSQL, but with what a pooled URL gets (unnamed
  statements, no statement caches, ``SET LOCAL statement_timeout`` per transaction): the cost of
  those choices alone;
- ``PgBouncer``: through a real PgBouncer in transaction mode (needs Debian's ``pgbouncer``),
  in pooler mode: what a user of a pooled URL sees, the pooler's own hop included.

Rounds are interleaved (every set-up once per round, in turn); a round's figure is its median,
and the table gives the median over rounds, and the median of each round's ratio to ``direct``.
Statements per request are counted with SQLAlchemy events. Prints a Markdown table for
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import platform
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.auth import issue_access_token
from app.main import create_app
from app.settings import load_settings
from bench.bench_read_api import seed_bench_data
from db.url import DatabaseURL
from tests.schema.test_batching import NESTED_QUERY
from tests.support.pgbouncer import running_pgbouncer
from tests.support.server import choose_server

PAGE_SIZES = (1, 10, 100)


@contextlib.asynccontextmanager
async def client_for(
    url: DatabaseURL, pooler: str, direct: DatabaseURL
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    settings = load_settings(
        database_url=url.render(hide_password=False),
        database_direct_url=direct.render(hide_password=False),
        db_pooler=pooler,
        log_level="WARNING",
        rate_limit_enabled=False,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        counter = {"statements": 0}

        def count(*args: Any) -> None:
            counter["statements"] += 1

        event.listen(app.state.studio.engine.sync_engine, "before_cursor_execute", count)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            yield client, counter


async def measure(
    client: httpx.AsyncClient, counter: dict[str, int], headers: dict[str, str], n: int, count: int
) -> tuple[float, float]:
    body = {"query": NESTED_QUERY, "variables": {"n": n}}
    timings = []
    before = counter["statements"]
    for _ in range(count):
        started = time.perf_counter()
        response = await client.post("/graphql", json=body, headers=headers)
        timings.append((time.perf_counter() - started) * 1000)
        assert "errors" not in response.json(), response.text
    return statistics.median(timings), (counter["statements"] - before) / count


async def run(
    setups: dict[str, tuple[DatabaseURL, str]], requests: int, rounds: int, videos: int
) -> dict[tuple[str, int], tuple[float, float, float]]:
    """(set-up, N) -> (median ms, median of the rounds' ratios to ``direct``, statements)."""
    direct = next(iter(setups.values()))[0]
    settings = load_settings(database_url=direct.render(hide_password=False))
    seeder = create_app(settings)
    async with seeder.router.lifespan_context(seeder):
        user_id = await seed_bench_data(seeder.state.studio.sessionmaker, videos)
    headers = {"Authorization": f"Bearer {issue_access_token(settings, user_id).token}"}
    samples: dict[tuple[str, int], list[tuple[float, float]]] = {}
    async with contextlib.AsyncExitStack() as stack:
        clients = {
            name: await stack.enter_async_context(client_for(url, pooler, direct))
            for name, (url, pooler) in setups.items()
        }
        for client, counter in clients.values():  # warm-up: connections, caches
            for n in PAGE_SIZES:
                await measure(client, counter, headers, n, 10)
        for _ in range(rounds):
            for n in PAGE_SIZES:
                for name, (client, counter) in clients.items():
                    sample = await measure(client, counter, headers, n, requests)
                    samples.setdefault((name, n), []).append(sample)
    results = {}
    for (name, n), values in samples.items():
        baseline = samples[("direct", n)]
        ratios = [m / base for (m, _), (base, _) in zip(values, baseline, strict=True)]
        results[(name, n)] = (
            statistics.median(m for m, _ in values),
            statistics.median(ratios),
            statistics.median(s for _, s in values),
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--videos", type=int, default=100)
    args = parser.parse_args()
    server = choose_server()
    database = server.create_database(prefix="studio_bench")
    try:
        with running_pgbouncer(server.url) as pgbouncer:
            setups = {
                "direct": (database, "none"),
                "direct, pooler mode": (database, "transaction"),
                "PgBouncer": (pgbouncer.pooled(database), "transaction"),
            }
            results = asyncio.run(run(setups, args.requests, args.rounds, args.videos))
    finally:
        server.drop_database(database)
        server.close()
    print(
        f"machine: {platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}, PostgreSQL: {server.kind}; "
        f"{args.rounds} rounds x {args.requests} sequential requests"
    )
    print("| set-up | N | median ms | x direct (median of rounds) | statements/request |")
    print("| --- | --- | --- | --- | --- |")
    for n in PAGE_SIZES:
        for name in setups:
            median, ratio, statements = results[(name, n)]
            print(f"| {name} | {n} | {median:.1f} | {ratio:.2f} | {statements:.1f} |")


if __name__ == "__main__":
    main()

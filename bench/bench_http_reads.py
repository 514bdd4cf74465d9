"""The read API over real HTTP, against a floor: how far the studio is from the least work.

    .venv/bin/python bench/bench_http_reads.py [--rounds 3] [--duration 10] [--connections 16]
        [--queries page,nested,small] [--rate-limits off,on] [--driver auto|wrk|python]
        [--studio-env NAME=VALUE ...] [--no-append]

Creates a throwaway database (on the server the tests would use, `tests.support.server`), seeds
10 users x 100 videos x 5 jobs (`bench.http_reads_data`), and starts a real ``studio serve`` and
the floor (`bench.floor_server`: one SQL statement per query builds the JSON) pinned to core 0,
with the load generator pinned to core 1 (wrk if installed, ``apt-get install wrk``; else the
Python driver of `bench.http_load`). Before timing, every answer of both servers, for every
seeded user, is compared value for value; any difference stops the run (exit status 1).

Then, for each rate-limit setting and R rounds, for each query, the studio and the floor each
get D seconds of load (after a warm-up), one at a time, the order alternating by round. Printed,
and appended to bench/RESULTS.md as a new dated section: req/s (median over rounds), p50/p99
latency, x floor (studio req/s / floor req/s, per round, then the median), SQL statements per
request counted at the wire (`bench.wire_count`) and response bytes. Needs 2 cores; about
``2 x settings x rounds x queries x (D + warm-up)`` seconds (7 to 8 minutes by default).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shlex
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.auth import issue_access_token
from app.settings import load_settings
from bench.http_load import LoadResult, pick_driver, run_load
from bench.http_reads_data import QUERIES, Seeded, seed
from bench.http_reads_report import Row, append_section, differences, machine, render_section
from bench.http_reads_servers import (
    RATE_LIMITS_OFF,
    RATE_LIMITS_ON,
    Server,
    post,
    running,
    server_env,
)
from bench.wire_count import counting_proxy, summarize
from db.engine import create_engine, create_sessionmaker
from db.url import DatabaseURL
from schema.relay import to_global_id
from tests.support.server import choose_server

ROOT = Path(__file__).resolve().parents[1]
LIMITS = {"off": RATE_LIMITS_OFF, "on": RATE_LIMITS_ON}
EXPECTED_EDGES = {"page": 20, "nested": 100}


class Mismatch(SystemExit):
    """The servers' answers differ (or one has errors): figures would compare different work."""


class Bench:
    def __init__(self, args: argparse.Namespace, database: DatabaseURL, seeded: Seeded) -> None:
        self.args = args
        self.database = database
        self.seeded = seeded
        self.secret = secrets.token_urlsafe(32)
        settings = load_settings(
            database_url=database.render(hide_password=False),
            secret_key=self.secret,
            token_ttl_seconds=7 * 24 * 3600,
        )
        self.tokens = {uid: issue_access_token(settings, uid).token for uid in seeded.user_ids}
        self.folder = Path(tempfile.mkdtemp(prefix="studio-bench-http-"))

    def env(self, database: DatabaseURL, limits: str | None = None) -> dict[str, str]:
        extra = LIMITS[limits] if limits else {}
        extra |= dict(item.split("=", 1) for item in getattr(self.args, "studio_env", []))
        url = database.render(hide_password=False)
        return server_env(url, self.secret, self.folder / "media", **extra)

    def request(self, query: str, user_id: Any = None) -> tuple[bytes, dict[str, str]]:
        user = user_id or self.seeded.viewer_id
        payload: dict[str, Any] = {"query": QUERIES[query]}
        if query == "small":
            payload["variables"] = {"id": to_global_id("Video", self.seeded.small_video_ids[user])}
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Authorization": f"Bearer {self.tokens[user]}",
        }
        return json.dumps(payload).encode(), headers

    def check_answers(self, studio: Server, floor: Server) -> dict[str, tuple[int, int]]:
        """Both servers' answers for every user and query, compared; the viewer's sizes."""
        sizes: dict[str, tuple[int, int]] = {}
        for user_id in self.seeded.user_ids:
            for query in self.args.queries:
                body, headers = self.request(query, user_id)
                (mine, mine_bytes), (theirs, their_bytes) = (
                    post(studio.url, body, headers),
                    post(floor.url, body, headers),
                )
                problems = [
                    f"{name} answered {answer}"
                    for name, answer in (("studio", mine), ("floor", theirs))
                    if set(answer) != {"data"}
                ]
                if not problems:
                    problems = differences(mine["data"], theirs["data"])
                if not problems and query in EXPECTED_EDGES:
                    edges = len(mine["data"]["viewer"]["videos"]["edges"])
                    if edges != EXPECTED_EDGES[query]:
                        problems.append(f"{edges} videos instead of {EXPECTED_EDGES[query]}")
                if problems:
                    shown = "\n  ".join(problems[:20])
                    print(f"MISMATCH: {query} for user {user_id}:\n  {shown}", file=sys.stderr)
                    raise Mismatch(1)
                if user_id == self.seeded.viewer_id:
                    sizes[query] = (mine_bytes, their_bytes)
        return sizes

    def count_statements(self) -> dict[tuple[str, str], float]:
        """SQL statements per request at the wire, for (query, ``off``/``on``/``floor``)."""
        counts: dict[tuple[str, str], float] = {}
        requests = self.args.count_requests
        with counting_proxy(self.database) as proxy:
            setups = [(f"studio-{m}", "studio", m) for m in self.args.rate_limits]
            for name, kind, limits in [*setups, ("floor", "floor", None)]:
                env = self.env(proxy.url, limits)
                with running(kind, env, self.folder, cpu=None, name=f"count-{name}") as server:
                    for query in self.args.queries:
                        body, headers = self.request(query)
                        for _ in range(3):  # warm-up: connections, prepared statements
                            post(server.url, body, headers)
                        proxy.take()
                        for _ in range(requests):
                            post(server.url, body, headers)
                        time.sleep(0.2)  # anything sent after the last answer
                        statements = proxy.take()
                        counts[(query, limits or "floor")] = len(statements) / requests
                        if self.args.show_statements or kind == "studio":
                            print(f"\n{name}, {query}: {len(statements) / requests:g} per request")
                            for sql, per in summarize(statements, requests):
                                print(f"  {per:5.2f} x {sql}")
        return counts

    def measure(self, server: Server, query: str) -> LoadResult:
        """A warm-up, then the timed run; each starts once the server has finished what the
        previous run left in flight (`Server.wait_idle`)."""
        body, headers = self.request(query)
        url = f"{server.url}/graphql"
        options = {
            "connections": self.args.connections,
            "cpu": self.args.load_cpu,
            "driver": self.args.driver,
        }
        results = []
        for duration in (self.args.warmup, self.args.duration):
            server.wait_idle()
            results.append(run_load(url, body, headers, duration=duration, **options))
        if any(result.errors for result in results):
            print(f"{url}: failed answers under load ({results})", file=sys.stderr)
            raise Mismatch(1)
        return results[-1]

    def timed(
        self,
    ) -> tuple[dict[tuple[str, str, str], list[LoadResult]], dict[str, Any], list[float]]:
        samples: dict[tuple[str, str, str], list[LoadResult]] = defaultdict(list)
        sizes: dict[str, Any] = {}
        loads: list[float] = []
        cpu = self.args.server_cpu
        with running("floor", self.env(self.database), self.folder, cpu=cpu, name="floor") as floor:
            for limits in self.args.rate_limits:
                env = self.env(self.database, limits)
                with running(
                    "studio", env, self.folder, cpu=cpu, name=f"studio-{limits}"
                ) as studio:
                    sizes[limits] = self.check_answers(studio, floor)
                    for index in range(self.args.rounds):
                        for query in self.args.queries:
                            sides = [("studio", studio), ("floor", floor)]
                            for side, server in sides[:: -1 if index % 2 else 1]:
                                loads.append(os.getloadavg()[0])
                                result = self.measure(server, query)
                                samples[(limits, query, side)].append(result)
                                print(
                                    f"rate limits {limits}, round {index + 1}, {query}, {side}: "
                                    f"{result.rate:,.0f} req/s, p50 {result.p50_ms:.1f} ms, "
                                    f"p99 {result.p99_ms:.1f} ms (load {loads[-1]:.2f})",
                                    file=sys.stderr,
                                )
        return samples, sizes, loads


async def prepare(database: DatabaseURL) -> tuple[Seeded, str]:
    """Seed, then VACUUM ANALYZE (fresh statistics and visibility map for both servers)."""
    settings = load_settings(database_url=database.render(hide_password=False))
    engine = create_engine(settings, pooled=False)
    try:
        async with create_sessionmaker(engine).begin() as session:
            seeded = await seed(session)
    finally:
        await engine.dispose()
    connection = await asyncpg.connect(
        database.url.set(drivername="postgresql").render_as_string(hide_password=False),
        **database.connect_args(),
    )
    try:
        await connection.execute("VACUUM ANALYZE")
        version = str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()
    return seeded, version.split()[0]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per timed run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before each run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--queries", default="page,nested,small")
    parser.add_argument("--rate-limits", default="off,on")
    parser.add_argument("--driver", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--load-cpu", type=int, default=1)
    parser.add_argument("--count-requests", type=int, default=10)
    parser.add_argument("--show-statements", action="store_true", help="the floor's too")
    parser.add_argument(
        "--studio-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="for the studio (STUDIO_COMPILED_READS=false: the resolver path)",
    )
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "RESULTS.md")
    parser.add_argument("--no-append", action="store_true", help="print only")
    args = parser.parse_args()
    args.queries = [q for q in args.queries.split(",") if q]
    args.rate_limits = [r for r in args.rate_limits.split(",") if r]
    if set(args.queries) - set(QUERIES) or set(args.rate_limits) - set(LIMITS):
        parser.error(f"--queries: {', '.join(QUERIES)}; --rate-limits: off, on")
    args.driver = pick_driver(args.driver)
    return args


def main() -> None:
    args = parse_args()
    command = shlex.join([".venv/bin/python", "bench/bench_http_reads.py", *sys.argv[1:]])
    server = choose_server()
    database = server.create_database(prefix="studio_bench")
    logs = None
    try:
        seeded, version = asyncio.run(prepare(database))
        bench = Bench(args, database, seeded)
        logs = bench.folder
        statements = bench.count_statements()
        load_before = os.getloadavg()[0]
        samples, sizes, loads = bench.timed()
        load_after = os.getloadavg()[0]
    except BaseException:
        if logs is not None:
            print(f"the servers' logs are in {logs}", file=sys.stderr)
        raise
    else:
        shutil.rmtree(logs, ignore_errors=True)
    finally:
        server.drop_database(database)
        server.close()
    rows = [
        Row(
            query,
            limits,
            samples[(limits, query, "studio")],
            samples[(limits, query, "floor")],
            (statements[(query, limits)], statements[(query, "floor")]),
            sizes[limits][query],
        )
        for query in args.queries
        for limits in args.rate_limits
    ]
    section = render_section(
        args, command, machine(version, args.driver), rows, (load_before, loads, load_after)
    )
    print("\n" + section)
    if not args.no_append:
        append_section(args.results, section)
        print(f"\nappended to {args.results}")


if __name__ == "__main__":
    main()

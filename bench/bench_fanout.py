"""Fan-out: how one API process serves many live ``jobProgress`` subscribers.

    flock /tmp/bench.lock .venv/bin/python bench/bench_fanout.py
        [--subscribers 100,1000,3000,10000] [--duration 20] [--warmup 5] [--per-connection 100]
        [--open-batch 5] [--count-at 100] [--profile-at 1000] [--no-append]

Creates a throwaway database (on the server the tests would use, `tests.support.server`; migrated
with Alembic), seeds 10 users with 10 videos each, every video with one RUNNING job, and mints an
access token per user. For each N it starts one ``studio serve`` pinned to core 0 (no in-process
worker, rate limits off, the per-connection and per-user websocket caps raised so that N fit),
while this process, pinned to core 1, runs the load (`bench.fanout_load`):

* N subscribers of ``jobProgress(jobId:)``, spread evenly over the 100 jobs, ``--per-connection``
  of them on each graphql-transport-ws websocket (every websocket is one job owner's);
* a writer committing one progress update per job per second, spread evenly over the second.

Websockets open ``--open-batch`` at a time, the next once each subscription of one has its first
state (``0``: all at once, a reconnect storm: the first reads then queue on the server's pool).

After ``--warmup`` seconds, a ``--duration`` window is measured; then the writer stops and the
subscribers get ``--drain`` seconds to catch up. For every live subscription and every version of
its job committed in the window: delivered (with commit → receive latency on one monotonic clock),
merged (a newer state of the job arrived instead: progress coalesces), or missing. Also the
server's CPU (``/proc/<pid>/stat``, over the window) and RSS at its end, the server's SQL
transactions per second (``pg_stat_database`` of the benchmark's database, the writer's own
subtracted) and statements per second when ``pg_stat_statements`` is preloaded, and the
subscriptions the server reports open (``/metrics``). A run that cannot open all N reports what
opened and what failed. ``--count-at N`` then runs N once more with the server's SQL through a
counting proxy (`bench.wire_count`: statements per delivered state), and ``--profile-at N`` once
more under ``py-spy record``, whose profile it reads. Appends a section to bench/RESULTS.md.
Run it under ``flock /tmp/bench.lock``: other benchmarks on this machine take the same lock.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import issue_access_token
from app.settings import load_settings
from bench.fanout_load import Fleet, Writer
from bench.fanout_report import Run, machine, read_profile, section, table, tally
from bench.http_reads_report import append_section
from bench.http_reads_servers import RATE_LIMITS_OFF, Server, running, server_env
from bench.wire_count import CountingProxy, counting_proxy, summarize
from db.engine import create_engine, create_sessionmaker
from db.events import connect_kwargs
from db.models import GenerationJob, JobStage, JobStatus, User, Video, VideoInputType, VideoStatus
from db.url import DatabaseURL
from tests.support.server import choose_server

ROOT = Path(__file__).resolve().parents[1]
USERS = 10
JOBS_PER_USER = 10
PROFILE_RATE = 200  # py-spy samples per second
#: Caps raised so that N subscribers fit on one process (README, Configuration).
CAPS = {
    "STUDIO_MAX_SUBSCRIPTIONS_PER_CONNECTION": "1000",
    "STUDIO_MAX_CONNECTIONS_PER_USER": "1000",
    "STUDIO_WS_CONNECTION_INIT_TIMEOUT_SECONDS": "120",
}


class Bench:
    def __init__(self, args: argparse.Namespace, database: DatabaseURL) -> None:
        self.args = args
        self.database = database
        self.secret = uuid.uuid4().hex * 2
        self.folder = Path(tempfile.mkdtemp(prefix="studio-bench-fanout-"))
        self.owners: dict[uuid.UUID, uuid.UUID] = {}  # job -> user
        self.tokens: dict[uuid.UUID, str] = {}
        self.statements_tracked = False
        #: When set, the server reaches PostgreSQL through it (`bench.wire_count`), and its
        #: statements are counted at the wire instead.
        self.proxy: CountingProxy | None = None
        self.wire_statements: list[str] = []  # since the last `sql_counts`, through the proxy
        self.wire_total = 0

    def env(self) -> dict[str, str]:
        url = (self.proxy.url if self.proxy else self.database).render(hide_password=False)
        return server_env(url, self.secret, self.folder / "media", **RATE_LIMITS_OFF, **CAPS)

    async def prepare(self) -> str:
        """Seed, mint tokens, VACUUM ANALYZE; the server's version."""
        url = self.database.render(hide_password=False)
        settings = load_settings(
            database_url=url, secret_key=self.secret, token_ttl_seconds=7 * 24 * 3600
        )
        engine = create_engine(settings, pooled=False)
        try:
            async with create_sessionmaker(engine).begin() as session:
                self.owners = await seed(session)
        finally:
            await engine.dispose()
        for user in set(self.owners.values()):
            self.tokens[user] = issue_access_token(settings, user).token
        connection = await asyncpg.connect(**connect_kwargs(self.database))
        try:
            await connection.execute("VACUUM ANALYZE")
            preloaded = await connection.fetchval("SHOW shared_preload_libraries")
            if "pg_stat_statements" in preloaded:
                await connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                self.statements_tracked = True
            return str(await connection.fetchval("SHOW server_version")).split()[0]
        finally:
            await connection.close()

    def plan(self, subscribers: int) -> list[tuple[uuid.UUID, list[uuid.UUID]]]:
        """Subscriber i follows job i mod 100; each websocket carries one owner's subscribers."""
        jobs = list(self.owners)
        by_user: dict[uuid.UUID, list[uuid.UUID]] = {}
        for index in range(subscribers):
            job = jobs[index % len(jobs)]
            by_user.setdefault(self.owners[job], []).append(job)
        size = self.args.per_connection
        return [
            (user, followed[start : start + size])
            for user, followed in by_user.items()
            for start in range(0, len(followed), size)
        ]

    def run(self, subscribers: int, *, profile: Path | None = None) -> Run:
        env = self.env()
        name = f"serve-{subscribers}{'-profile' if profile else ''}"
        run: Run | None = None
        pid = None
        try:
            with running("studio", env, self.folder, cpu=self.args.server_cpu, name=name) as server:
                pid = server.pid
                run = asyncio.run(self.measure(server, subscribers, profile))
        except subprocess.TimeoutExpired:
            # SIGTERM waits for every subscription to end; a saturated server may not make it.
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
            if run is None:
                raise
            run.failures["the server did not exit within 30 s of SIGTERM (killed)"] += 1
        assert run is not None
        run.failures.update(_logged_errors(self.folder / f"{name}.log"))
        return run

    async def measure(self, server: Server, subscribers: int, profile: Path | None) -> Run:
        ws_url = server.url.replace("http://", "ws://") + "/graphql"
        fleet = Fleet(ws_url, self.tokens, self.plan(subscribers))
        writer = Writer(
            connect_kwargs(self.database),
            list(self.owners),
            together=self.args.writes == "together",
        )
        monitor = await asyncpg.connect(**connect_kwargs(self.database))
        try:
            began = time.monotonic()
            await fleet.open(within=self.args.open_timeout, batch=self.args.open_batch)
            opened = time.monotonic() - began
            _say(f"N={subscribers:,}: {fleet.live:,} live after {opened:.1f} s")
            writer.start()
            await asyncio.sleep(self.args.warmup)
            load = os.getloadavg()[0]
            sql_before, cpu_before, load_cpu_before, start = (
                await self.sql_counts(monitor),
                _cpu(server),
                time.process_time(),
                time.monotonic(),
            )
            if profile is not None:
                await _py_spy(server.pid, profile, self.args.duration)
            else:
                await asyncio.sleep(self.args.duration)
            sql_after, cpu_after, load_cpu_after, end = (
                await self.sql_counts(monitor),
                _cpu(server),
                time.process_time(),
                time.monotonic(),
            )
            rss = _rss_mb(server.pid)
            said = await _server_says(server.url)
            await writer.stop()
            await _drain(fleet, writer, self.args.drain)
        finally:
            await writer.stop()
            await fleet.close()
            await monitor.close()
        seconds = end - start
        writes = writer.commits_between(start, end)
        xacts = sql_after[0] - sql_before[0] - writes
        statements = None
        if sql_after[1] is not None and sql_before[1] is not None:
            # The writer's statements are in pg_stat_statements, not at the proxy.
            own = 0 if self.proxy else writes
            statements = (sql_after[1] - sql_before[1] - own) / seconds
        return Run(
            subscribers=subscribers,
            connections=len(fleet.plan),
            opened=fleet.live,
            server_subscriptions=said.get(
                'studio_graphql_subscriptions_active{field="jobProgress"}'
            ),
            server_connections=said.get("studio_websocket_connections"),
            seconds=seconds,
            counts=tally(fleet, writer, start, end),
            cpu_percent=100 * (cpu_after - cpu_before) / seconds,
            load_cpu_percent=100 * (load_cpu_after - load_cpu_before) / seconds,
            rss_mb=rss,
            transactions=xacts / seconds,
            statements=statements,
            failures=fleet.failures,
            writer_late=writer.late,
            open_seconds=opened,
            load=load,
        )

    def count_statements(self, subscribers: int) -> str:
        """One more run of ``subscribers`` with the server's SQL through a counting proxy (a
        thread of this process: the load generator's core is shared with it, so this run is
        not in the table); the statements per delivered state, as a Markdown fragment."""
        with counting_proxy(self.database) as proxy:
            self.proxy = proxy
            try:
                run = self.run(subscribers)
            finally:
                self.proxy = None
        delivered = run.counts.delivered
        if not delivered or run.statements is None:
            return f"Statements at the wire, N={subscribers:,}: no state delivered."
        lines = [
            f"SQL statements at the wire (`bench/wire_count.py`), N={subscribers:,}: "
            f"{run.statements:,.0f}/s for {delivered / run.seconds:,.0f} states delivered/s, "
            f"{run.statements * run.seconds / delivered:.2f} per delivered state; each kind per "
            "delivered state:",
            "",
            "| statement | per delivered state |",
            "| --- | ---: |",
        ]
        for sql, per in summarize(self.wire_statements, delivered)[:8]:
            lines.append(f"| `{sql.replace('|', '/')}` | {per:.2f} |")
        return "\n".join(lines)

    async def sql_counts(self, monitor: asyncpg.Connection) -> tuple[int, int | None]:
        """Transactions of this database so far, and statements: the server's at the wire
        (through `proxy`) since the last call, else pg_stat_statements' total, if any."""
        await monitor.execute("SELECT pg_stat_clear_snapshot()")
        xacts = await monitor.fetchval(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database "
            "WHERE datname = current_database()"
        )
        statements = None
        if self.proxy is not None:
            self.wire_statements = self.proxy.take()
            self.wire_total += len(self.wire_statements)
            return int(xacts), self.wire_total
        if self.statements_tracked:
            statements = await monitor.fetchval(
                "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements "
                "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        return int(xacts), statements


async def seed(session: AsyncSession) -> dict[uuid.UUID, uuid.UUID]:
    """``USERS`` users x ``JOBS_PER_USER`` videos, each with a RUNNING job; job -> owner."""
    users: list[dict[str, Any]] = []
    videos: list[dict[str, Any]] = []
    jobs: list[dict[str, Any]] = []
    owners: dict[uuid.UUID, uuid.UUID] = {}
    for index in range(USERS):
        user = uuid.uuid4()
        users.append({"id": user, "email": f"fanout.{index}@bench.studio.test"})
        for number in range(JOBS_PER_USER):
            video, job = uuid.uuid4(), uuid.uuid4()
            videos.append(
                {
                    "id": video,
                    "user_id": user,
                    "title": f"Fan-out {index}.{number}",
                    "input_type": VideoInputType.DESCRIPTION,
                    "status": VideoStatus.PROCESSING,
                }
            )
            jobs.append(
                {
                    "id": job,
                    "video_id": video,
                    "status": JobStatus.RUNNING,
                    "stage": JobStage.VOICE,
                    "attempt": 1,
                }
            )
            owners[job] = user
    for model, rows in ((User, users), (Video, videos), (GenerationJob, jobs)):
        await session.execute(insert(model), rows)
    return owners


async def _drain(fleet: Fleet, writer: Writer, seconds: float) -> None:
    """Until every live subscription has its job's last committed version, or ``seconds``."""
    last: dict[uuid.UUID, int] = {}
    for job, version in writer.committed:
        last[job] = max(version, last.get(job, 0))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        behind = [
            sub
            for sub in fleet.subscriptions
            if sub.first is not None
            and sub.failed is None
            and max((v for v, _ in sub.received), default=sub.first) < last.get(sub.job_id, 0)
        ]
        if not behind:
            return
        await asyncio.sleep(0.5)  # polling the subscribers' progress


async def _py_spy(pid: int, output: Path, seconds: float) -> None:
    """``py-spy record`` of the server for ``seconds`` (on this process's core)."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    process = await asyncio.create_subprocess_exec(
        *(py_spy, "record", "--pid", str(pid), "--format", "raw", "--rate", str(PROFILE_RATE)),
        *("--duration", str(round(seconds)), "--output", str(output), "--nonblocking"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, errors = await process.communicate()
    if process.returncode != 0:
        _say(f"py-spy failed ({process.returncode}): {errors.decode()[-500:]}")


async def _server_says(url: str) -> dict[str, float]:
    """The server's own gauges from ``/metrics`` (its subscriptions and websockets)."""
    wanted = ("studio_graphql_subscriptions_active", "studio_websocket_connections")
    try:
        async with httpx.AsyncClient(timeout=60) as client:
            text = (await client.get(f"{url}/metrics")).text
    except httpx.HTTPError as exc:
        _say(f"/metrics did not answer: {exc!r}")
        return {}
    found = {}
    for line in text.splitlines():
        if line.startswith(wanted):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


def _logged_errors(log: Path) -> Counter[str]:
    """The exceptions the server logged, by their last line (``module.Error: message``)."""
    found: Counter[str] = Counter()
    for line in log.read_text(errors="replace").splitlines():
        if re.match(r"^[\w.]+(Error|Exception|Timeout)\w*: ", line):
            found[f"server log: {line[:110]}"] += 1
    return found


def _cpu(server: Server) -> float:
    fields = Path(f"/proc/{server.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _raise_open_files() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", default="100,1000,3000,10000")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before, writer on")
    parser.add_argument("--drain", type=float, default=10.0, help="seconds to catch up after")
    parser.add_argument("--per-connection", type=int, default=100, help="subscriptions")
    parser.add_argument("--open-timeout", type=float, default=300.0)
    parser.add_argument(
        "--open-batch",
        type=int,
        default=5,
        help="websockets opening at once, each until its subscriptions have their first state "
        "(0: all at once)",
    )
    parser.add_argument("--profile-at", type=int, default=None, metavar="N")
    parser.add_argument(
        "--count-at", type=int, default=100, metavar="N", help="statements at the wire (0: no)"
    )
    parser.add_argument(
        "--writes",
        choices=["spread", "together"],
        default="spread",
        help="the writer's commits spread evenly over each second, or all at its start",
    )
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--load-cpu", type=int, default=1)
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "RESULTS.md")
    parser.add_argument("--no-append", action="store_true", help="print only")
    args = parser.parse_args()
    args.subscribers = [int(n.replace("_", "")) for n in args.subscribers.split(",") if n]
    return args


def main() -> None:
    args = parse_args()
    command = shlex.join([".venv/bin/python", "bench/bench_fanout.py", *sys.argv[1:]])
    os.sched_setaffinity(0, {args.load_cpu})
    _raise_open_files()
    server = choose_server()
    database = server.create_database(prefix="studio_bench")
    profile_text = counted = None
    bench = Bench(args, database)
    try:
        version = asyncio.run(bench.prepare())
        runs = []
        for subscribers in args.subscribers:
            runs.append(bench.run(subscribers))
            _say(table(runs[-1:]))
        if args.count_at:
            counted = bench.count_statements(args.count_at)
        if args.profile_at:
            raw = bench.folder / f"profile-{args.profile_at}.txt"
            profiled = bench.run(args.profile_at, profile=raw)
            rate = profiled.counts.delivered / profiled.seconds
            profile_text = read_profile(
                raw,
                subscribers=args.profile_at,
                delivered_per_second=rate,
                possible=round(PROFILE_RATE * args.duration),
            )
            _say(f"the raw profile: {raw}")
    except BaseException:
        print(f"the servers' logs are in {bench.folder}", file=sys.stderr)
        raise
    finally:
        server.drop_database(database)
        server.close()
    statements = (
        "pg_stat_statements calls"
        if bench.statements_tracked
        else "n/a: pg_stat_statements is not in shared_preload_libraries (that needs a restart "
        "of the shared server), so the timed runs count transactions only"
        + (
            "; statements are counted at the wire in a separate run (below)"
            if args.count_at
            else ""
        )
    )
    bullets = [
        f"**Machine:** {machine(version)}",
        f"**Date:** {date.today().isoformat()}",
        f"**Command:** `flock /tmp/bench.lock {command}`",
        f"**Set-up:** one `studio serve` on core {args.server_cpu} (no worker, rate limits off, "
        f"caps raised: {', '.join(f'{k}={v}' for k, v in CAPS.items())}), a fresh process per "
        f"N; subscribers and writer in one asyncio process on core {args.load_cpu}. 100 RUNNING "
        f"jobs of 10 users; N `jobProgress {{ id status stage progress version }}` subscriptions, "
        f"N/100 per job, {args.per_connection} per graphql-transport-ws websocket; the writer "
        "commits one progress update per job per second (100/s, "
        + (
            "evenly spread"
            if args.writes == "spread"
            else "all 100 one after another at the start of each second"
        )
        + f", each its own transaction). {args.warmup:g} s warm-up, {args.duration:g} s "
        f"measured, then up to {args.drain:g} s for the subscribers to catch up.",
        "**Counted:** for every live subscription and every version of its job committed in "
        "the window: delivered (latency = receive - commit, one monotonic clock), merged (a newer "
        "state of that job arrived instead) or missing. Live = got its first state; the server's "
        "`studio_graphql_subscriptions_active` at the window's end in brackets. CPU from "
        "`/proc/<pid>/stat` over the window (100 % = one core), RSS at its end. SQL xact/s: "
        "`pg_stat_database` of the benchmark's database, the writer's commits subtracted. "
        f"SQL statements/s: {statements}.",
    ]
    text = section(bullets, runs, "\n\n".join(filter(None, [counted, profile_text])))
    print("\n" + text)
    if not args.no_append:
        append_section(args.results, text)
        print(f"appended to {args.results}")


if __name__ == "__main__":
    main()

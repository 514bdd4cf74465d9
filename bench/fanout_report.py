"""Figures of `bench/bench_fanout.py`: one run's tally, the table, and a py-spy profile read."""

from __future__ import annotations

import os
import platform
import textwrap
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bench.fanout_load import Fleet, Writer


@dataclass
class Tally:
    """Every (subscription, committed version of its job) of the measured window, once."""

    expected: int = 0
    delivered: int = 0
    merged: int = 0  # not sent itself, but a newer state of the job was
    missing: int = 0  # neither, by the end of the drain
    latencies_ms: list[float] = field(default_factory=list)

    def percentile(self, share: float) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, max(0, round(len(ordered) * share) - 1))]


def tally(fleet: Fleet, writer: Writer, start: float, end: float) -> Tally:
    """Commit → receive for each live subscription and each version of its job committed in
    ``[start, end)``; a version not received counts as merged when a newer one was."""
    window: dict[uuid.UUID, list[tuple[int, float]]] = defaultdict(list)
    for (job, version), at in writer.committed.items():
        if start <= at < end:
            window[job].append((version, at))
    result = Tally()
    for sub in fleet.subscriptions:
        if sub.first is None or sub.failed is not None:
            continue
        got = dict(sub.received)
        newest = max(got, default=sub.first)
        for version, committed in window[sub.job_id]:
            result.expected += 1
            if version in got:
                result.delivered += 1
                result.latencies_ms.append((got[version] - committed) * 1000)
            elif version <= newest:
                result.merged += 1
            else:
                result.missing += 1
    return result


@dataclass
class Run:
    subscribers: int
    connections: int
    opened: int  # subscriptions that got their first state
    server_subscriptions: float | None  # what the server's /metrics said at the window's end
    server_connections: float | None
    seconds: float
    counts: Tally
    cpu_percent: float
    #: The load generator's own CPU (this process: subscribers and writer), over the window.
    load_cpu_percent: float
    rss_mb: float
    transactions: float  # per second, the server's (the writer's own subtracted)
    statements: float | None  # per second, idem; None without pg_stat_statements
    failures: Counter[str]
    writer_late: int
    open_seconds: float
    load: float  # 1-minute load average at the window's start

    @property
    def cpu_us_per_delivered(self) -> float | None:
        delivered = self.counts.delivered
        return self.cpu_percent * 10_000 * self.seconds / delivered if delivered else None


def table(runs: list[Run]) -> str:
    lines = [
        "| subscribers | websockets | live (server says) | states expected | delivered | merged "
        "| missing | commit → client p50 / p99 / max ms | server CPU % | load generator CPU % "
        "| RSS MB | SQL xact/s | SQL statements/s | delivered/s | server CPU µs per delivered "
        "| load avg |",
        "|" + " ---: |" * 7 + " --- |" + " ---: |" * 8,
    ]
    for run in runs:
        c = run.counts
        said = "?" if run.server_subscriptions is None else f"{run.server_subscriptions:,.0f}"
        latency = " / ".join(_ms(c.percentile(p)) for p in (0.5, 0.99, 1.0))
        statements = "n/a" if run.statements is None else f"{run.statements:,.0f}"
        lines.append(
            f"| {run.subscribers:,} | {run.connections} | {run.opened:,} ({said}) "
            f"| {c.expected:,} | {c.delivered:,} ({_share(c.delivered, c.expected)}) "
            f"| {c.merged:,} | {c.missing:,} | {latency} | {run.cpu_percent:.0f} "
            f"| {run.load_cpu_percent:.0f} | {run.rss_mb:.0f} | {run.transactions:,.0f} "
            f"| {statements} | {c.delivered / run.seconds:,.0f} "
            f"| {_ms(run.cpu_us_per_delivered)} "
            f"| {run.load:.1f} |"
        )
    return "\n".join(lines)


def problems(runs: list[Run]) -> str:
    """What failed, per run (empty when nothing did)."""
    lines = []
    for run in runs:
        if run.failures:
            listed = "; ".join(f"{count} x {why}" for why, count in run.failures.most_common(5))
            lines.append(f"- N={run.subscribers:,}: {listed}")
        if run.writer_late:
            lines.append(f"- N={run.subscribers:,}: {run.writer_late} writes started late")
    return "\n".join(lines)


def machine(postgres_version: str) -> str:
    cpu = _cpuinfo("model name") or platform.processor() or "unknown CPU"
    return (
        f"{os.cpu_count()} cores ({cpu}, {platform.machine()}); "
        f"{platform.python_implementation()} {platform.python_version()}; "
        f"PostgreSQL {postgres_version} on 127.0.0.1 (same machine, not pinned)"
    )


def section(bullets: list[str], runs: list[Run], profile: str | None) -> str:
    listed = "\n".join(
        textwrap.fill(b, width=100, initial_indent="- ", subsequent_indent="  ") for b in bullets
    )
    failed = problems(runs)
    parts = [
        "## Subscriptions: fan-out of one API process (`bench/bench_fanout.py`)",
        listed,
        table(runs),
    ]
    if failed:
        parts.append("What failed or fell behind:\n\n" + failed)
    if profile:
        parts.append(profile)
    return "\n\n".join(parts) + "\n"


# --- the profile ---------------------------------------------------------------------------

#: Where a sample's time goes, by the frames on its stack (file path prefixes), first match
#: from the leaf up, so each sample counts once.
BUCKETS = [
    ("JSON encoding / decoding", ("json/",)),
    ("permessage-deflate (websocket compression)", ("websockets/extensions/",)),
    ("asyncpg (protocol, records)", ("asyncpg/",)),
    ("SQLAlchemy (session, ORM, pool)", ("sqlalchemy/",)),
    ("graphql-core (execution, validation, parse)", ("graphql/",)),
    ("websocket protocol (uvicorn, websockets)", ("uvicorn/", "websockets/", "wsproto/")),
    ("Strawberry (handlers, schema, extensions)", ("strawberry/",)),
    ("the studio's own code (app/, schema/, db/)", ("app/", "schema/", "db/")),
    ("asyncio event loop, tasks, queues", ("asyncio/",)),
]


def read_profile(
    raw: Path, *, subscribers: int, delivered_per_second: float | None, possible: int
) -> str:
    """py-spy's ``--format raw`` (collapsed stacks) summed by `BUCKETS` and by the studio's
    functions on the stack (inclusive), as a Markdown fragment. ``possible``: the samples of a
    thread that never waited (rate x seconds); py-spy leaves out those of a sleeping one."""
    buckets: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = stack.split(";")
        buckets[_bucket(frames)] += samples
        for name in {_studio_function(frame) for frame in frames} - {None}:
            inclusive[str(name)] += samples
    if not total:
        return "(py-spy recorded no samples)"
    rate = f", ~{delivered_per_second:,.0f} states delivered/s" if delivered_per_second else ""
    lines = [
        f"py-spy profile of the server at N={subscribers:,}{rate}: {total:,} samples of "
        f"{possible:,} possible, so the event loop was running or runnable (not waiting on I/O) "
        f"{total / possible:.0%} of the time.",
        "",
        "| where (innermost match) | share of samples |",
        "| --- | ---: |",
    ]
    lines += [f"| {name} | {count / total:.0%} |" for name, count in buckets.most_common()]
    lines += ["", "| the studio's functions on the stack (inclusive) | share |", "| --- | ---: |"]
    lines += [f"| `{name}` | {count / total:.0%} |" for name, count in inclusive.most_common(12)]
    return "\n".join(lines)


def _bucket(frames: list[str]) -> str:
    for frame in reversed(frames):
        path = _path(frame)
        for name, prefixes in BUCKETS:
            if path.startswith(prefixes):
                return name
    return "other (interpreter, C extensions, stdlib)"


def _studio_function(frame: str) -> str | None:
    path = _path(frame)
    if path.startswith(("app/", "schema/", "db/")) and path != "app/cli.py":  # not the entry
        return f"{path}:{frame.partition(' (')[0]}"
    return None


def _path(frame: str) -> str:
    # A raw frame reads "function (package/module.py:line)", the path relative to sys.path.
    return frame.partition(" (")[2].rsplit(":", 1)[0]


def _cpuinfo(name: str) -> str | None:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return None


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "-"

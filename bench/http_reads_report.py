"""Checking and reporting for `bench/bench_http_reads.py`: answers compared, figures tabled."""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import textwrap
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from bench.http_load import LoadResult


def differences(studio: Any, floor: Any, path: str = "data") -> list[str]:
    """Where two parsed JSON values differ (objects compared by keys, whatever their order;
    lists element by element); empty when they are equal."""
    if isinstance(studio, dict) and isinstance(floor, dict):
        found = [
            f"{path}.{key}: only in the {'studio' if key in studio else 'floor'}"
            for key in sorted(set(studio) ^ set(floor))
        ]
        for key in sorted(set(studio) & set(floor)):
            found += differences(studio[key], floor[key], f"{path}.{key}")
        return found
    if isinstance(studio, list) and isinstance(floor, list):
        if len(studio) != len(floor):
            return [f"{path}: {len(studio)} items in the studio, {len(floor)} in the floor"]
        return [
            d
            for i, (s, f) in enumerate(zip(studio, floor, strict=True))
            for d in differences(s, f, f"{path}[{i}]")
        ]
    if type(studio) is not type(floor) or studio != floor:
        return [f"{path}: studio {studio!r} != floor {floor!r}"]
    return []


@dataclass(frozen=True)
class Row:
    """One query under one rate-limit setting, over every round."""

    query: str
    rate_limits: str
    studio: list[LoadResult]
    floor: list[LoadResult]
    statements: tuple[float, float]  # per request: studio, floor
    response_bytes: tuple[int, int]  # studio, floor

    @property
    def ratio(self) -> float:
        """Studio req/s / floor req/s, per round, then the median."""
        return statistics.median(
            s.rate / f.rate for s, f in zip(self.studio, self.floor, strict=True)
        )


def _median(results: list[LoadResult], field: str) -> float:
    return statistics.median(float(getattr(result, field)) for result in results)


def _rate(results: list[LoadResult]) -> float:
    return statistics.median(result.rate for result in results)


def table(rows: list[Row]) -> str:
    head = (
        "| query | rate limits | studio req/s | floor req/s | x floor | studio p50 / p99 ms "
        "| floor p50 / p99 ms | SQL statements per request, studio / floor "
        "| response bytes, studio / floor |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    lines = [head]
    for row in rows:
        lines.append(
            f"| {row.query} | {row.rate_limits} | {_rate(row.studio):,.0f} "
            f"| {_rate(row.floor):,.0f} | {row.ratio:.3f} "
            f"| {_median(row.studio, 'p50_ms'):.1f} / {_median(row.studio, 'p99_ms'):.1f} "
            f"| {_median(row.floor, 'p50_ms'):.1f} / {_median(row.floor, 'p99_ms'):.1f} "
            f"| {row.statements[0]:g} / {row.statements[1]:g} "
            f"| {row.response_bytes[0]:,} / {row.response_bytes[1]:,} |"
        )
    return "\n".join(lines)


def rounds_table(rows: list[Row]) -> str:
    """Every round's req/s, to show the spread behind the medians."""
    lines = [
        "| query | rate limits | studio req/s by round | floor req/s by round |",
        "| --- | --- | --- | --- |",
    ]
    for row in rows:
        studio = ", ".join(f"{r.rate:,.0f}" for r in row.studio)
        floor = ", ".join(f"{r.rate:,.0f}" for r in row.floor)
        lines.append(f"| {row.query} | {row.rate_limits} | {studio} | {floor} |")
    return "\n".join(lines)


def machine(postgres_version: str, driver: str) -> str:
    cpu = _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown CPU"
    memory_kb = _proc_field("/proc/meminfo", "MemTotal")
    memory = f"{int(memory_kb.split()[0]) / 2**20:.0f} GiB" if memory_kb else "? GiB"
    return (
        f"{os.cpu_count()} cores ({cpu}, {platform.machine()}), {memory}; "
        f"{platform.python_implementation()} {platform.python_version()}; PostgreSQL "
        f"{postgres_version} on 127.0.0.1 (the same machine, not pinned); load generator: "
        f"{driver_version(driver)}"
    )


def driver_version(driver: str) -> str:
    if driver == "wrk" and shutil.which("wrk"):
        done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
        first = (done.stdout or done.stderr).splitlines()
        return first[0].split(" Copyright")[0] if first else "wrk"
    return "the Python driver (bench/http_load.py, uvloop)"


def _proc_field(path: str, name: str) -> str | None:
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return None


def render_section(
    args: argparse.Namespace,
    command: str,
    machine_line: str,
    rows: list[Row],
    load: tuple[float, list[float], float],
) -> str:
    """The dated section for bench/RESULTS.md: how it was measured, then the tables."""
    before, during, after = load
    rounds = f"{args.rounds} round{'s' if args.rounds != 1 else ''}"
    bullets = [
        f"**Machine:** {machine_line}",
        f"**Date:** {date.today().isoformat()}",
        f"**Command:** `{command}`",
        f"**Set-up:** one `studio serve` process and the floor (`bench/floor_server.py`: "
        f"Starlette, asyncpg, one SQL statement builds each response's JSON) on core "
        f"{args.server_cpu}, one at a time under load (the other idle; each run starts once the "
        f"server has finished the previous run's requests); the load generator on core "
        f"{args.load_cpu}, {args.connections} keep-alive connections, {args.duration:g} s per run "
        f"after a {args.warmup:g} s warm-up; {rounds}, for each query the studio and the floor in "
        "turn, the order alternating by round. Figures are medians over rounds; x floor is each "
        "round's studio req/s / floor req/s, then the median. Data: 10 users x 100 videos x 5 "
        "jobs, 3 voice profiles each, read as one user. Rate limits `on`: limits raised to 10^6 "
        "a minute (burst 10^5) so that none is refused: the figure is the cost of counting.",
        "**Checked:** both servers' answers, for every user and query, equal value for value "
        "before timing (key order aside); no error under load.",
        f"**Statements** counted at the wire (`bench/wire_count.py`, a proxy reading the "
        f"protocol; `BEGIN`, `ROLLBACK` and pool pings included), {args.count_requests} requests "
        "of each query after a warm-up.",
        f"**Load average (1 min):** {before:.2f} before the timed runs, "
        f"{statistics.median(during):.2f} median and {max(during):.2f} highest between runs "
        f"(the benchmark itself keeps about 2 busy), {after:.2f} after.",
    ]
    listed = "\n".join(
        textwrap.fill(b, width=100, initial_indent="- ", subsequent_indent="  ") for b in bullets
    )
    return (
        "## Read API over HTTP against a floor (`bench/bench_http_reads.py`)\n\n"
        f"{listed}\n\n{table(rows)}\n\nEach round's req/s:\n\n{rounds_table(rows)}\n"
    )


def append_section(results: Path, section: str) -> None:
    """Add ``section`` at the end of bench/RESULTS.md; what is there stays as it is."""
    existing = results.read_text() if results.exists() else "# Benchmark results\n"
    results.write_text(existing.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n")

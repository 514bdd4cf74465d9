"""Load generators for `bench/bench_http_reads.py`: wrk when it is installed, else a Python one.

Both keep ``connections`` HTTP/1.1 keep-alive connections busy for ``duration`` seconds, each
sending the same POST (body and headers) again as soon as its answer is in (a closed loop), and
report requests per second, the median and 99th percentile latency, and how many answers were
not a 200 without ``"errors"`` in the body (a benchmark with any is refused by the caller).
Each runs pinned to one core (``taskset -c CPU``) in a process of its own.

* wrk (``apt-get install wrk``): one thread, a generated Lua script for the body, the headers and
  the error count; the figures come from its ``done()`` callback.
* the Python driver (``python -m bench.http_load URL --body-file F --header 'K: V' …``): raw
  asyncio streams on uvloop, prints one JSON object. It needs a core for itself to keep up with
  the floor; wrk needs far less.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def pick_driver(choice: str = "auto") -> str:
    """``wrk`` or ``python``: ``auto`` takes wrk when it is on the PATH."""
    if choice == "auto":
        return "wrk" if shutil.which("wrk") else "python"
    if choice == "wrk" and not shutil.which("wrk"):
        raise RuntimeError("wrk is not installed (apt-get install wrk), use --driver python")
    return choice


def run_load(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    duration: float,
    connections: int,
    cpu: int,
    driver: str,
) -> LoadResult:
    """One closed-loop run with ``driver`` (`pick_driver`), pinned to ``cpu``."""
    with tempfile.TemporaryDirectory(prefix="studio-load-") as folder:
        if driver == "wrk":
            script = Path(folder) / "request.lua"
            script.write_text(_wrk_script(body, headers))
            command = [
                *("taskset", "-c", str(cpu), "wrk", "-t1", f"-c{connections}"),
                *(f"-d{max(1, round(duration))}s", "--timeout", "30s", "-s", str(script), url),
            ]
            return _parse_wrk(_run(command))
        body_file = Path(folder) / "body.json"
        body_file.write_bytes(body)
        command = [
            *("taskset", "-c", str(cpu), sys.executable, "-m", "bench.http_load", url),
            *("--body-file", str(body_file), "--duration", str(duration)),
            *("--connections", str(connections)),
            *(arg for name, value in headers.items() for arg in ("--header", f"{name}: {value}")),
        ]
        return LoadResult(**json.loads(_run(command)))


def _run(command: list[str]) -> str:
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{command[3]} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


# --- wrk ------------------------------------------------------------------------------------


def _lua_string(text: str) -> str:
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    return f"[{'=' * level}[{text}]{'=' * level}]"


def _wrk_script(body: bytes, headers: dict[str, str]) -> str:
    lines = ['wrk.method = "POST"', f"wrk.body = {_lua_string(body.decode())}"]
    lines += [f"wrk.headers[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in headers.items()]
    lines.append(
        """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) errors = 0 end
function response(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then errors = errors + 1 end
end
function done(summary, latency, requests)
  local failed = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  for _, thread in ipairs(threads) do failed = failed + thread:get("errors") end
  io.write(string.format("BENCH %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), failed))
end
"""
    )
    return "\n".join(lines)


def _parse_wrk(output: str) -> LoadResult:
    for line in output.splitlines():
        if line.startswith("BENCH "):
            requests, micros, p50, p99, errors = (int(value) for value in line.split()[1:])
            return LoadResult(requests, micros / 1e6, p50 / 1000, p99 / 1000, errors)
    raise RuntimeError(f"no figures in wrk's output:\n{output}")


# --- the Python driver ----------------------------------------------------------------------


async def _drive(
    url: str, request: bytes, duration: float, connections: int
) -> tuple[int, float, list[float], int]:
    parsed = urllib.parse.urlsplit(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    latencies: list[float] = []
    errors = 0
    started = time.perf_counter()
    deadline = started + duration
    finished = started

    async def connection() -> None:
        nonlocal errors, finished
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while (sent := time.perf_counter()) < deadline:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status, length = _status_and_length(head)
                answer = await reader.readexactly(length)
                finished = time.perf_counter()
                latencies.append(finished - sent)
                if status != 200 or b'"errors"' in answer:
                    errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    return len(latencies), finished - started, latencies, errors


def _status_and_length(head: bytes) -> tuple[int, int]:
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            return status, int(value.strip())
    raise RuntimeError(f"an answer without Content-Length: {lines[0]}")


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def _request_bytes(url: str, body: bytes, headers: list[str]) -> bytes:
    parsed = urllib.parse.urlsplit(url)
    lines = [
        f"POST {parsed.path or '/'} HTTP/1.1",
        f"Host: {parsed.netloc}",
        f"Content-Length: {len(body)}",
        *headers,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def main() -> None:
    parser = argparse.ArgumentParser(description="The Python load driver (see the docstring).")
    parser.add_argument("url")
    parser.add_argument("--body-file", type=Path, required=True)
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:  # plain asyncio: slower, still correct
        runner = asyncio.run
    else:
        runner = uvloop.run
    request = _request_bytes(args.url, args.body_file.read_bytes(), args.header)
    count, seconds, latencies, errors = runner(
        _drive(args.url, request, args.duration, args.connections)
    )
    latencies.sort()
    result = LoadResult(
        count,
        seconds,
        percentile(latencies, 0.5) * 1000,
        percentile(latencies, 0.99) * 1000,
        errors,
    )
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()

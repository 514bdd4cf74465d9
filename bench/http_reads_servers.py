"""The two servers of `bench/bench_http_reads.py`, as real processes, pinned to a core.

* the studio: ``python -m app.cli serve --port P`` (what ``studio serve`` runs), on its own
  database URL, no in-process worker, logging at WARNING; rate limits off, or on with limits so
  high that nothing is refused (`RATE_LIMITS_ON`): the figure is then the cost of counting;
* the floor: ``python -m bench.floor_server --port P`` (`bench.floor_server`), same database,
  same secret key.

Each starts with ``taskset -c CPU`` when a CPU is given and is ready once ``/readyz`` answers 200.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import free_port, stop, wait_until_ready

ROOT = Path(__file__).resolve().parents[1]

#: Limits far above anything one process can serve: every operation is still charged to its
#: user's and its address's bucket in PostgreSQL (one upsert each time), none is refused.
RATE_LIMITS_ON = {
    "STUDIO_RATE_LIMIT_ENABLED": "true",
    "STUDIO_RATE_LIMIT_OPERATIONS_PER_MINUTE": "1000000",
    "STUDIO_RATE_LIMIT_OPERATIONS_BURST": "100000",
    "STUDIO_RATE_LIMIT_IP_OPERATIONS_PER_MINUTE": "1000000",
    "STUDIO_RATE_LIMIT_IP_OPERATIONS_BURST": "100000",
}
RATE_LIMITS_OFF = {"STUDIO_RATE_LIMIT_ENABLED": "false"}


def server_env(database_url: str, secret_key: str, media_dir: Path, **extra: str) -> dict[str, str]:
    """This environment without studio or database settings, plus the benchmark's."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("STUDIO_")
        and name not in ("DATABASE_URL", "DATABASE_DIRECT_URL", "TEST_DATABASE_URL")
    }
    return inherited | {
        "DATABASE_URL": database_url,
        "STUDIO_ENV": "development",
        "STUDIO_SECRET_KEY": secret_key,
        "STUDIO_INPROCESS_WORKER": "false",
        "STUDIO_MIGRATE_ON_START": "false",
        "STUDIO_LOG_LEVEL": "WARNING",
        "STUDIO_MEDIA_DIR": str(media_dir),
        **extra,
    }


@dataclass(frozen=True)
class Server:
    url: str
    pid: int

    def wait_idle(self, *, window: float = 0.25, timeout: float = 300) -> None:
        """Until the process used (almost) no CPU for ``window`` seconds: requests a load
        generator left in flight when it stopped are finished, and cannot slow the next run."""
        deadline = time.monotonic() + timeout
        last = self._cpu_seconds()
        while time.monotonic() < deadline:
            time.sleep(window)
            now = self._cpu_seconds()
            if now - last <= 0.01:  # one clock tick
                return
            last = now
        raise RuntimeError(f"{self.url} still busy after {timeout} s")

    def _cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def running(
    kind: str, env: Mapping[str, str], folder: Path, *, cpu: int | None, name: str
) -> Iterator[Server]:
    """``kind`` (``studio`` or ``floor``) serving on a free port (taskset execs it, so the pid
    is the server's own)."""
    module = {"studio": ["app.cli", "serve"], "floor": ["bench.floor_server"]}[kind]
    port = free_port()
    pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
    log = folder / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*pin, sys.executable, "-m", *module, "--port", str(port)],
            cwd=ROOT,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_ready(port, process, log)
        yield Server(f"http://127.0.0.1:{port}", process.pid)
    finally:
        exit_code = stop(process)
        if exit_code != 0:
            print(f"{name} exited with {exit_code}:\n{log.read_text()}", file=sys.stderr)


def post(url: str, body: bytes, headers: Mapping[str, str]) -> tuple[Any, int]:
    """One request: the parsed JSON answer and the body's size in bytes."""
    response = httpx.post(f"{url}/graphql", content=body, headers=dict(headers), timeout=60)
    return json.loads(response.content), len(response.content)

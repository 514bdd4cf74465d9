"""``studio worker`` processes for tests: started with a short lease, logging JSON to a file."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from db.url import DatabaseURL
from tests.support.processes import clean_env, start_studio


class Workers:
    """``studio worker`` processes started by a test, each logging JSON to its own file."""

    def __init__(self, database: DatabaseURL, folder: Path) -> None:
        self.database = database
        self.folder = folder
        self.processes: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, *, concurrency: int = 1, **env: str) -> subprocess.Popen[bytes]:
        log = self.folder / f"worker-{len(self.processes)}.log"
        environment = clean_env(
            DATABASE_URL=self.database.render(hide_password=False),
            STUDIO_LOG_FORMAT="json",
            STUDIO_WORKER_LEASE_SECONDS="2",
            **env,
        )
        process = start_studio(
            "worker", "--concurrency", str(concurrency), env=environment, log=log
        )
        self.processes.append((process, log))
        return process

    def log_of(self, process: subprocess.Popen[bytes]) -> Path:
        return next(log for p, log in self.processes if p is process)

    def entries(self, process: subprocess.Popen[bytes] | None = None) -> list[dict[str, Any]]:
        """The JSON log entries of one worker, or of all of them."""
        logs = [log for p, log in self.processes if process is None or p is process]
        entries = []
        for log in logs:
            for line in log.read_text().splitlines():
                if line.startswith("{"):
                    entries.append(json.loads(line))
        return entries

    def close(self) -> None:
        for process, _ in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)

"""A throwaway embedded PostgreSQL that a test may stop and start again.

For "the database restarts under a running app" tests. It lives in its own temporary folder and
listens on a Unix socket only, so restarting it never touches the shared server on 5432. It is
stopped and started with pgserver's own ``pg_ctl`` (run as the ``pgserver`` system user when the
tests run as root), with the options pgserver starts it with.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any

from db.embedded import EmbeddedPostgres
from db.migrations import upgrade
from db.url import DatabaseURL


class ThrowawayPostgres:
    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="studio-restart-pg-"))
        self.pgdata = self.folder / "pgdata"
        self._embedded = EmbeddedPostgres(self.pgdata, database="studio")
        self._socket_dir: str | None = None

    def start(self) -> DatabaseURL:
        """Create, start and migrate it; the URL of its ``studio`` database."""
        url = self._embedded.start()
        self._socket_dir = str(url.url.query["host"])
        asyncio.run(upgrade(url))
        return url

    def stop_server(self) -> None:
        """Stop PostgreSQL (fast shutdown: open connections are cut, as in a real restart)."""
        self._pg_ctl(["-w", "-m", "fast", "stop"])

    def start_server(self) -> None:
        """Start it again, on the same socket."""
        assert self._socket_dir is not None
        log = self.pgdata / "restart.log"
        self._pg_ctl(["-w", "-o", '-h ""', "-o", f"-k {self._socket_dir}", "-l", str(log), "start"])

    def close(self) -> None:
        self._embedded.stop()
        # pgserver may skip the stop when the process it started is gone (a restarted server
        # has a new one): the PID file says whether a server still runs.
        if (self.pgdata / "postmaster.pid").exists():
            self.stop_server()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _pg_ctl(self, args: list[str]) -> None:
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]  # made at import
        from pgserver.postgres_server import get_server

        server: Any = get_server(self.pgdata)  # the instance EmbeddedPostgres started
        pg_ctl(args, pgdata=self.pgdata, user=server.system_user, timeout=30)

"""The embedded PostgreSQL of a laptop install (SPEC §2): a real server from the pgserver wheel.

`EmbeddedPostgres` starts the server in ``STUDIO_DATA_DIR/pgdata`` (or attaches to the one a
running `studio serve` holds there), makes sure the studio database exists, and stops the server
when the last process using it lets go. It listens on a Unix socket only, never on a TCP
port, so it cannot clash with another PostgreSQL on 5432. Run as root, pgserver runs PostgreSQL as
a system user ``pgserver`` (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

from db.admin import create_database
from db.url import DatabaseURL, parse_database_url

DATABASE_NAME = "studio"

logger = logging.getLogger(__name__)


class EmbeddedPostgres:
    def __init__(self, pgdata: Path, database: str = DATABASE_NAME) -> None:
        self.pgdata = pgdata
        self.database = database
        self._server: Any = None

    def is_running(self) -> bool:
        """Whether a server already runs in ``pgdata`` (one that `start` would attach to)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # see `start`
            from pgserver.utils import PostmasterInfo

        try:
            info = PostmasterInfo.read_from_pgdata(self.pgdata)
        except (OSError, ValueError, AssertionError):  # postmaster.pid half written: starting
            return False
        return info is not None and info.is_running()

    def start(self) -> DatabaseURL:
        """Start (or attach to) the server and return the URL of the studio database."""
        with warnings.catch_warnings():
            # pgserver asks platformdirs for XDG_RUNTIME_DIR at import; the /tmp fallback is fine.
            warnings.simplefilter("ignore")
            # imported late: it inspects the machine at import time
            from pgserver.postgres_server import get_server

        logging.getLogger("pgserver").setLevel(logging.WARNING)
        attaching = self.is_running()
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._server = get_server(self.pgdata, cleanup_mode="stop")
        info = self._server.get_postmaster_info()
        url = parse_database_url(
            f"postgresql+asyncpg://postgres@/{self.database}?host={info.socket_dir}"
            f"&port={info.port or 5432}"
        )
        asyncio.run(create_database(url, self.database, exist_ok=True))
        if attaching:  # someone else's server: the start-up was theirs to announce
            logger.debug("attached to the embedded PostgreSQL in %s", self.pgdata)
        else:
            logger.info("embedded PostgreSQL ready in %s", self.pgdata)
        return url

    def stop(self) -> None:
        """Let go of the server; it stops when no other process holds it."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None

    def __enter__(self) -> DatabaseURL:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

"""Which PostgreSQL the tests use (README: Quick start), and fresh databases on it.

Order: ``STUDIO_TEST_DB=embedded`` forces the embedded server; else ``TEST_DATABASE_URL`` or
``DATABASE_URL``; else the server on 127.0.0.1:5432 when one answers; else an embedded server in a
temporary folder, deleted afterwards.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from db.admin import create_database, drop_database
from db.embedded import EmbeddedPostgres
from db.migrations import upgrade
from db.url import DatabaseURL, parse_database_url

LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class PgServer:
    url: DatabaseURL
    kind: str
    _close: Callable[[], None] = field(default=lambda: None)

    def close(self) -> None:
        self._close()

    def create_database(self, *, migrated: bool = True, prefix: str = "studio_test") -> DatabaseURL:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        database = asyncio.run(create_database(self.url, name))
        if migrated:
            asyncio.run(upgrade(database))
        return database

    def drop_database(self, database: DatabaseURL) -> None:
        asyncio.run(drop_database(self.url, database.database))

    @contextmanager
    def temporary_database(
        self, *, migrated: bool = True, prefix: str = "studio_test"
    ) -> Iterator[DatabaseURL]:
        """A database of the block's own (`create_database`), dropped when the block ends."""
        database = self.create_database(migrated=migrated, prefix=prefix)
        try:
            yield database
        finally:
            self.drop_database(database)


def choose_server() -> PgServer:
    if os.environ.get("STUDIO_TEST_DB", "").lower() == "embedded":
        return start_embedded_server()
    configured = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if configured:
        return PgServer(parse_database_url(configured), "configured")
    local = parse_database_url(LOCAL_SERVER)
    if asyncio.run(_answers(local)):
        return PgServer(local, "local")
    return start_embedded_server()


def start_embedded_server() -> PgServer:
    folder = Path(tempfile.mkdtemp(prefix="studio-test-pg-"))
    embedded = EmbeddedPostgres(folder / "pgdata", database="studio_template")
    url = embedded.start()

    def close() -> None:
        embedded.stop()
        shutil.rmtree(folder, ignore_errors=True)

    return PgServer(url.with_database("postgres"), "embedded", close)


async def _answers(server: DatabaseURL) -> bool:
    target = server.url
    try:
        connection = await asyncpg.connect(
            host=target.host,
            port=target.port,
            user=target.username,
            database=target.database,
            timeout=2,
        )
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await connection.close()
    return True

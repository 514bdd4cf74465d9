"""Alembic, driven from code: `studio migrate`, start-up migrations, `/readyz` and the tests."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from alembic import command
from db.url import DatabaseURL


def project_root() -> Path:
    """The folder holding ``alembic.ini``: the checkout, or the working directory (Docker)."""
    for candidate in (Path(__file__).resolve().parents[1], Path.cwd()):
        if (candidate / "alembic.ini").is_file():
            return candidate
    raise FileNotFoundError(
        "alembic.ini not found next to the installed package or in the working directory; "
        "run studio from the project folder"
    )


def alembic_config(database: DatabaseURL | None = None) -> Config:
    config = Config(str(project_root() / "alembic.ini"))
    config.attributes["configure_logging"] = False
    if database is not None:
        # Handed over as an attribute, not as sqlalchemy.url: ConfigParser would interpolate a
        # "%" in a password.
        config.attributes["database_url"] = database.render(hide_password=False)
    return config


def head_revisions() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


async def current_revisions(connection: AsyncConnection) -> frozenset[str]:
    """The revisions a database is at; empty when it was never migrated."""
    try:
        result = await connection.execute(text("SELECT version_num FROM alembic_version"))
    except ProgrammingError:  # no alembic_version table yet
        await connection.rollback()
        return frozenset()
    return frozenset(str(row) for row in result.scalars())


async def upgrade(database: DatabaseURL, revision: str = "head") -> None:
    # Alembic's env.py runs its own event loop, so it gets a thread of its own.
    await asyncio.to_thread(command.upgrade, alembic_config(database), revision)


async def upgrade_if_behind(database: DatabaseURL) -> bool:
    """Upgrade to the latest revision unless the database is there already; whether it did.

    A database at head is only asked its revision (one ``SELECT``): Alembic does not start, so it
    neither logs nor takes its lock. One that is behind gets the whole `upgrade`.
    """
    engine = create_async_engine(
        database.url, connect_args=database.connect_args(), poolclass=NullPool
    )
    try:
        async with engine.connect() as connection:
            current = await current_revisions(connection)
    finally:
        await engine.dispose()
    if current == head_revisions():
        return False
    await upgrade(database)
    return True


async def downgrade(database: DatabaseURL, revision: str) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database), revision)

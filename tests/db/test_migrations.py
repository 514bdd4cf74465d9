"""Migrations: one head, models and migrations agree, down to base and up again leaves no trace."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from db import migrations
from db.models import Base
from db.url import DatabaseURL


async def _run_sync(database: DatabaseURL, fn: Any) -> Any:
    engine = create_async_engine(
        database.url, connect_args=database.connect_args(), poolclass=NullPool
    )
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(fn)
    finally:
        await engine.dispose()


def _schema_objects(connection: Connection) -> dict[str, list[str]]:
    def names(sql: str) -> list[str]:
        return sorted(connection.execute(text(sql)).scalars())

    return {
        "tables": names(
            "SELECT tablename FROM pg_tables "
            "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        ),
        "types": names(
            "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
            "WHERE n.nspname = 'public' AND t.typtype = 'e'"
        ),
        "functions": names(
            "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = 'public'"
        ),
    }


def test_single_head() -> None:
    script = ScriptDirectory.from_config(migrations.alembic_config())
    assert len(script.get_heads()) == 1


def test_every_revision_has_a_downgrade() -> None:
    script = ScriptDirectory.from_config(migrations.alembic_config())
    for revision in script.walk_revisions():
        assert revision.module.downgrade.__code__.co_code != (lambda: None).__code__.co_code, (
            f"{revision.revision} has an empty downgrade"
        )


async def test_models_match_migrations(empty_database: DatabaseURL) -> None:
    await migrations.upgrade(empty_database)

    def diff(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    assert await _run_sync(empty_database, diff) == []


async def test_downgrade_to_base_and_back(empty_database: DatabaseURL) -> None:
    await migrations.upgrade(empty_database)
    at_head = await _run_sync(empty_database, _schema_objects)
    assert at_head["tables"] == sorted(Base.metadata.tables)

    await migrations.downgrade(empty_database, "base")
    assert await _run_sync(empty_database, _schema_objects) == {
        "tables": [],
        "types": [],
        "functions": [],
    }

    await migrations.upgrade(empty_database)
    assert await _run_sync(empty_database, _schema_objects) == at_head


async def test_step_by_step_round_trip(empty_database: DatabaseURL) -> None:
    """Each revision downgrades to exactly the schema of the one before it."""
    script = ScriptDirectory.from_config(migrations.alembic_config())
    revisions = list(reversed(list(script.walk_revisions())))
    snapshots = [await _run_sync(empty_database, _schema_objects)]
    for revision in revisions:
        await migrations.upgrade(empty_database, revision.revision)
        snapshots.append(await _run_sync(empty_database, _schema_objects))
    for index in range(len(revisions) - 1, -1, -1):
        await migrations.downgrade(empty_database, "-1")
        assert await _run_sync(empty_database, _schema_objects) == snapshots[index]


async def test_upgrade_if_behind_runs_alembic_only_when_there_is_something_to_apply(
    empty_database: DatabaseURL, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="alembic"):
        assert await migrations.upgrade_if_behind(empty_database) is True
    assert any("Running upgrade" in record.getMessage() for record in caplog.records)
    caplog.clear()

    with caplog.at_level(logging.INFO, logger="alembic"):
        assert await migrations.upgrade_if_behind(empty_database) is False
    assert [r for r in caplog.records if r.name.startswith("alembic")] == []

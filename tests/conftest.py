"""Fixtures: one migrated database per test run, one rolled-back transaction per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.settings import Settings, load_settings
from db.engine import create_engine
from db.url import DatabaseURL
from tests.support.server import PgServer, choose_server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    server = choose_server()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def database(pg_server: PgServer) -> Iterator[DatabaseURL]:
    """This run's own database, migrated with Alembic (what production runs), dropped after."""
    database = pg_server.create_database()
    try:
        yield database
    finally:
        pg_server.drop_database(database)


@pytest.fixture(scope="session")
def settings(database: DatabaseURL) -> Settings:
    return load_settings(database_url=database.render(hide_password=False))


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session inside an outer transaction that is rolled back after the test.

    Code under test may commit: with ``create_savepoint`` its commits release savepoints, and the
    outer transaction still undoes everything.
    """
    async with engine.connect() as connection:
        transaction = await connection.begin()
        session = AsyncSession(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        try:
            yield session
        finally:
            await session.close()
            await transaction.rollback()

"""Fixtures: one migrated database per test run, one rolled-back transaction per test."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from app.main import create_app
from app.settings import Settings, load_settings
from db import models
from db.engine import create_engine
from db.url import DatabaseURL
from tests.factories import make_user
from tests.support.graphql import GraphQLClient
from tests.support.pgbouncer import PgBouncer, running_pgbouncer
from tests.support.processes import TEST_MEDIA_DIR, TEST_RATE_LIMITS, TEST_RENDER
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
    with pg_server.temporary_database() as database:
        yield database


@pytest.fixture
def migrated_database(pg_server: PgServer) -> Iterator[DatabaseURL]:
    """A database of the test's own, migrated and committed-to (for real processes, real
    concurrency), dropped after the test."""
    with pg_server.temporary_database(prefix="studio_own") as database:
        yield database


@pytest.fixture
def empty_database(pg_server: PgServer) -> Iterator[DatabaseURL]:
    """A database of the test's own with no schema at all, dropped after the test."""
    with pg_server.temporary_database(migrated=False, prefix="studio_empty") as database:
        yield database


@pytest.fixture(scope="session", autouse=True)
def _test_media_dir() -> Iterator[None]:
    """Every `load_settings` of the run stores media in `TEST_MEDIA_DIR` (generation writes
    audio, captions and video), never in the user's data folder, renders `TEST_RENDER`'s small
    frames, and has rate limits off (`TEST_RATE_LIMITS`); the folder goes when the run ends."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STUDIO_MEDIA_DIR", str(TEST_MEDIA_DIR))
        for name, value in (TEST_RENDER | TEST_RATE_LIMITS).items():
            patch.setenv(name, value)
        yield
    shutil.rmtree(TEST_MEDIA_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(database: DatabaseURL) -> Settings:
    return load_settings(database_url=database.render(hide_password=False))


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection inside an outer transaction that is rolled back after the test."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        try:
            yield connection
        finally:
            await transaction.rollback()


@pytest.fixture
def sessionmaker(connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    """Sessions on the test's connection. Code under test may commit: with
    ``create_savepoint`` its commits release savepoints, and the outer transaction still undoes
    everything."""
    return async_sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


@pytest.fixture
async def session(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as session:
        yield session


@pytest.fixture
def media_settings(settings: Settings, tmp_path: Path) -> Settings:
    """The run's settings with a media folder of the test's own (``tmp_path / "media"``), for
    tests that look at the files stored, served or left behind."""
    return load_settings(database_url=settings.database_url, media_dir=tmp_path / "media")


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    """What `app` is built from: the run's settings. A module whose tests look at the media
    folder overrides this fixture to return `media_settings` (or its own variant of them)."""
    return settings


@pytest.fixture
async def app(
    app_settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Starlette]:
    """The application, its lifespan running, its sessions on the test's connection."""
    application = create_app(app_settings, sessionmaker=sessionmaker)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://studio.test") as client:
        yield client


@pytest.fixture
def graphql(http: httpx.AsyncClient, app_settings: Settings) -> GraphQLClient:
    """An anonymous GraphQL client; ``graphql.as_user(user.id)`` signs in."""
    return GraphQLClient(http, app_settings)


@pytest.fixture
async def owner(session: AsyncSession) -> models.User:
    """A committed user, the owner of what the test makes."""
    user = await make_user(session)
    await session.commit()
    return user


@pytest.fixture(scope="session")
def pgbouncer(pg_server: PgServer) -> Iterator[PgBouncer]:
    """A real PgBouncer in transaction mode in front of the test server (skipped without one,
    unless STUDIO_TEST_PGBOUNCER=required)."""
    with running_pgbouncer(pg_server.url) as pgbouncer:
        yield pgbouncer

"""The live app for the websocket tests: uvicorn in a thread, on a database of the module's own.

The app commits and the test commits (no rolled-back transaction can be shared across threads),
so each module that asks for `server` gets a database of its own, dropped after the module. Jobs
are changed from the test the way a worker changes them, through `writer`, one committed write at
a time. A module sets the limits its tests reach by overriding `live_overrides`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from app.main import create_app
from app.settings import Settings, load_settings
from db.url import DatabaseURL
from tests.support.browser import serve
from tests.support.live_jobs import LiveJob, create_live_job, writer_engine
from tests.support.server import PgServer


@pytest.fixture(scope="module")
def live_overrides() -> dict[str, Any]:
    """Settings of the module's live app besides its database (`load_settings` keywords); the
    defaults unless the module overrides this fixture."""
    return {}


@pytest.fixture(scope="module")
def live_database(pg_server: PgServer) -> Iterator[DatabaseURL]:
    with pg_server.temporary_database(prefix="studio_live") as database:
        yield database


@pytest.fixture(scope="module")
def live_settings(live_database: DatabaseURL, live_overrides: dict[str, Any]) -> Settings:
    return load_settings(database_url=live_database.render(hide_password=False), **live_overrides)


@pytest.fixture(scope="module")
def live_app(live_settings: Settings) -> Starlette:
    return create_app(live_settings)


@pytest.fixture(scope="module")
def server(live_app: Starlette) -> Iterator[str]:
    """The live app's base URL."""
    with serve(live_app) as base_url:
        yield base_url


@pytest.fixture(scope="module")
async def writer(live_database: DatabaseURL) -> AsyncIterator[AsyncEngine]:
    engine = writer_engine(live_database)
    yield engine
    await engine.dispose()


@pytest.fixture
async def job(writer: AsyncEngine, live_settings: Settings) -> LiveJob:
    """A QUEUED job of a new user of the test's own, committed."""
    return await create_live_job(writer, live_settings)

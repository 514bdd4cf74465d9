"""Fixtures of the app tests that more than one module uses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from db.url import DatabaseURL
from tests.support.browser import serve
from tests.support.pages import site_app
from tests.support.processes import clean_env, running_studios
from tests.support.workers import Workers


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """The base URL of `site_app`'s pages, served on 127.0.0.1 (what URL videos are made from)."""
    with serve(site_app()) as base_url:
        yield base_url


@pytest.fixture
def api_env() -> dict[str, str]:
    """What `api_processes` have in their environment besides their database and defaults; a
    module overrides this fixture to set its own (a secret it signs tokens with, limits)."""
    return {}


@pytest.fixture
def api_processes(
    migrated_database: DatabaseURL, tmp_path: Path, api_env: dict[str, str]
) -> Iterator[list[str]]:
    """Two ``studio serve`` processes on the test's database, with no worker of their own; their
    base URLs."""
    env = clean_env(
        DATABASE_URL=migrated_database.render(hide_password=False),
        STUDIO_INPROCESS_WORKER="false",
        STUDIO_LOG_LEVEL="WARNING",
        **api_env,
    )
    with running_studios(env, tmp_path, 2) as processes:
        yield [process.url for process in processes]


@pytest.fixture
def workers(migrated_database: DatabaseURL, tmp_path: Path) -> Iterator[Workers]:
    """``studio worker`` processes the test starts on its own database, killed after it."""
    started = Workers(migrated_database, tmp_path)
    try:
        yield started
    finally:
        started.close()

"""Pooled connections that die under a running ``studio serve`` (a database restart, a hosted
database's idle timeout, an operator's ``pg_terminate_backend``), with the pool no longer tested
before every use (`db.engine`): a read finds its connection dead, runs again on a new one and
answers as if nothing happened; a connection that sat idle is tested before use.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from db.engine import APPLICATION_NAME
from db.url import DatabaseURL
from tests.support.processes import StudioProcess, clean_env, running_studio

CSRF = {"X-Studio-CSRF": "1"}
#: Compiled into one statement (`schema.compiled`).
COMPILED = "{ viewer { email videos(first: 5) { totalCount edges { node { title } } } } }"
#: Served by the resolvers (`nodes` does not compile).
RESOLVED = "query($ids: [ID!]!) { viewer { email } nodes(ids: $ids) { id } }"
CREATE = 'mutation { createVideo(input: { title: "After", description: "Words.", inputType: DESCRIPTION }) { video { title } } }'  # noqa: E501


@pytest.fixture
def studio(migrated_database: DatabaseURL, tmp_path: Path) -> Iterator[StudioProcess]:
    env = clean_env(
        DATABASE_URL=migrated_database.render(hide_password=False),
        STUDIO_INPROCESS_WORKER="false",
        STUDIO_DB_POOL_PING_AFTER_IDLE_SECONDS="3600",  # never tested before use here
    )
    with running_studio(env, tmp_path, email="dead@example.com") as studio:
        yield studio


def ask(studio: StudioProcess, query: str, variables: dict[str, Any] | None = None) -> Any:
    response = httpx.post(
        f"{studio.url}/graphql",
        json={"query": query, "variables": variables or {}},
        headers=studio.headers | CSRF,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()


async def kill_api_connections(database: DatabaseURL) -> int:
    connection = await asyncpg.connect(
        database.url.set(drivername="postgresql").render_as_string(hide_password=False),
        **database.connect_args(),
    )
    try:
        return int(
            await connection.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = $1 AND datname = current_database()",
                APPLICATION_NAME,
            )
        )
    finally:
        await connection.close()


@pytest.mark.parametrize("query", [COMPILED, RESOLVED], ids=["compiled", "resolver"])
async def test_a_read_on_a_dead_pooled_connection_is_answered(
    studio: StudioProcess, migrated_database: DatabaseURL, query: str
) -> None:
    variables: dict[str, Any] | None = {"ids": []} if query == RESOLVED else None
    # Several pooled connections, all idle in the pool afterwards.
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: ask(studio, query, variables), range(8)))
    assert all("errors" not in answer for answer in answers), answers
    assert await kill_api_connections(migrated_database) >= 1

    again = ask(studio, query, variables)
    assert "errors" not in again, again
    assert again["data"] == answers[0]["data"]
    # The pool replaced its dead connections: a mutation (never run twice) finds a live one.
    created = ask(studio, CREATE)
    assert created == {"data": {"createVideo": {"video": {"title": "After"}}}}, created


async def test_a_connection_idle_past_the_bound_is_tested_before_use(
    migrated_database: DatabaseURL, tmp_path: Path
) -> None:
    env = clean_env(
        DATABASE_URL=migrated_database.render(hide_password=False),
        STUDIO_INPROCESS_WORKER="false",
        STUDIO_DB_POOL_PING_AFTER_IDLE_SECONDS="0.000001",  # every connection has idled past it
    )
    with running_studio(env, tmp_path, email="idle@example.com") as studio:
        assert "errors" not in ask(studio, COMPILED)
        await kill_api_connections(migrated_database)
        # Tested on checkout and replaced: even a mutation, which is never retried, succeeds.
        created = ask(studio, CREATE)
        assert created == {"data": {"createVideo": {"video": {"title": "After"}}}}, created

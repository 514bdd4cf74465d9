"""The resolver path's account check (`Context.require_viewer` over `app.live_accounts`): an
account seen to exist is not looked up again for each operation, and its end, announced by the
database, is believed at once.

A real ``studio serve``-like app under uvicorn (its lifespan: the engine, the change listener),
the compiled path off so that every read takes the resolver path; statements are counted on
the app's engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import event, func, update
from starlette.applications import Starlette

from app.auth import issue_access_token
from app.main import create_app
from app.settings import load_settings
from app.state import AppState
from db.models import User
from db.url import DatabaseURL
from tests.support.browser import serve
from tests.support.jobs import wait_for
from tests.support.live_jobs import create_live_job, writer_engine

QUERY = {"query": "{ videos(first: 1) { edges { node { id title } } } }"}


@contextmanager
def _statements(app: Starlette) -> Iterator[list[str]]:
    seen: list[str] = []

    def before_cursor_execute(*args: Any) -> None:
        seen.append(str(args[2]))

    state = app.state.studio
    assert isinstance(state, AppState)
    engine = state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", before_cursor_execute)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before_cursor_execute)


def _user_lookups(statements: list[str]) -> int:
    return sum(1 for sql in statements if "FROM users" in sql)


async def test_a_seen_account_is_not_looked_up_again_until_it_ends(
    migrated_database: DatabaseURL,
) -> None:
    settings = load_settings(
        database_url=migrated_database.render(hide_password=False), compiled_reads=False
    )
    writer = writer_engine(migrated_database)
    try:
        job = await create_live_job(writer, settings)
        token = issue_access_token(settings, job.user_id).token
        app = create_app(settings)
        with serve(app) as server:
            async with httpx.AsyncClient(
                base_url=server, headers={"Authorization": f"Bearer {token}"}
            ) as http:
                await http.get("/healthz")  # answered once the lifespan has made the app's state
                with _statements(app) as first:
                    answer = (await http.post("/graphql", json=QUERY)).json()
                assert answer["data"]["videos"]["edges"], answer
                assert _user_lookups(first) == 1, first
                with _statements(app) as again:
                    assert "errors" not in (await http.post("/graphql", json=QUERY)).json()
                assert _user_lookups(again) == 0, again
                assert len(again) == len(first) - 1
                state = app.state.studio
                assert isinstance(state, AppState)

                async with writer.begin() as connection:
                    await connection.execute(
                        update(User).where(User.id == job.user_id).values(deleted_at=func.now())
                    )

                async def forgotten() -> bool:
                    return not state.accounts.exists(job.user_id)

                await wait_for(forgotten, within=10, what="the account's end announced")
                refused = (await http.post("/graphql", json=QUERY)).json()
                assert refused["data"] is None
                [error] = refused["errors"]
                assert error["extensions"]["code"] == "UNAUTHENTICATED"
                assert error["message"] == "This account no longer exists."
    finally:
        await writer.dispose()


async def test_with_no_cache_every_operation_looks_its_account_up(
    migrated_database: DatabaseURL,
) -> None:
    settings = load_settings(
        database_url=migrated_database.render(hide_password=False),
        compiled_reads=False,
        account_check_cache_seconds=0,
    )
    writer = writer_engine(migrated_database)
    try:
        job = await create_live_job(writer, settings)
        app = create_app(settings)
        with serve(app) as server:
            async with httpx.AsyncClient(
                base_url=server, headers={"Authorization": f"Bearer {job.token}"}
            ) as http:
                await http.get("/healthz")
                for _ in range(2):
                    with _statements(app) as statements:
                        assert "errors" not in (await http.post("/graphql", json=QUERY)).json()
                    assert _user_lookups(statements) == 1, statements
    finally:
        await writer.dispose()

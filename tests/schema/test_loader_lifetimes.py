"""No loader batch outlives its operation: when a field fails, graphql-core cancels the fields
beside it, but the batches they were waiting for were already scheduled. Those must neither
fail the fields that still wait for the same rows, nor run on after the response — on a real
connection pool, a batch that ran on the operation's closed session opened a transaction on a
connection that was never returned, one per request, until the pool ran dry."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from starlette.applications import Starlette

from app.auth import issue_access_token
from app.main import create_app
from app.settings import Settings, load_settings
from app.state import AppState
from db.url import DatabaseURL
from schema.relay import to_global_id
from tests.factories import make_job, make_user, make_video, make_voice_profile
from tests.support.live_jobs import writer_engine


@pytest.fixture
def pool_settings(migrated_database: DatabaseURL) -> Settings:
    return load_settings(database_url=migrated_database.render(hide_password=False))


@pytest.fixture
async def pooled_app(pool_settings: Settings) -> AsyncIterator[Starlette]:
    """The app on its own engine and pool, as it runs in production (not the tests' one
    rolled-back connection)."""
    application = create_app(pool_settings)
    async with application.router.lifespan_context(application):
        yield application


async def test_a_failed_field_leaves_no_connection_checked_out(
    migrated_database: DatabaseURL, pool_settings: Settings, pooled_app: Starlette
) -> None:
    engine = writer_engine(migrated_database)
    try:
        async with async_sessionmaker(engine, expire_on_commit=False)() as session:
            user = await make_user(session)
            profile = await make_voice_profile(session, user)
            job = await make_job(session, await make_video(session, user))
            await session.commit()
    finally:
        await engine.dispose()
    # `videos(last: -1)` fails; `node` and `generationJob` wait on loader batches meanwhile.
    query = (
        f'query {{ node(id: "{to_global_id("VoiceProfile", profile.id)}") {{ id }}'
        " videos(last: -1) { totalCount }"
        f' generationJob(id: "{to_global_id("GenerationJob", job.id)}") {{ attempt }} }}'
    )
    token = issue_access_token(pool_settings, user.id).token
    state: AppState = pooled_app.state.studio
    pool = state.engine.pool
    transport = httpx.ASGITransport(app=pooled_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://studio.test") as http:
        for _ in range(5):
            response = await http.post(
                "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 200, response.text
            codes = [e["extensions"]["code"] for e in response.json()["errors"]]
            assert codes == ["BAD_USER_INPUT"]
            assert pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_fields_sharing_a_load_survive_a_failed_sibling(
    migrated_database: DatabaseURL, pool_settings: Settings, pooled_app: Starlette
) -> None:
    engine = writer_engine(migrated_database)
    try:
        async with async_sessionmaker(engine, expire_on_commit=False)() as session:
            user = await make_user(session)
            video = await make_video(session, user)
            await session.commit()
    finally:
        await engine.dispose()
    # Two fields ask for the viewer's video count (one load); a third fails beside them.
    query = (
        "query { viewer { auditEvents(first: -1) { totalCount } videos { totalCount } }"
        f' nodes(ids: ["{to_global_id("Video", video.id)}"]) {{'
        " ... on Video { owner { videos { totalCount } } } } }"
    )
    token = issue_access_token(pool_settings, user.id).token
    transport = httpx.ASGITransport(app=pooled_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://studio.test") as http:
        response = await http.post(
            "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    assert body["data"]["nodes"] == [{"owner": {"videos": {"totalCount": 1}}}]

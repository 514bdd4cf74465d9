"""No loader batch outlives its operation: when a field fails, graphql-core cancels the fields
beside it, but the batches they were waiting for were already scheduled. Those must neither
fail the fields that still wait for the same rows, nor run on after the response — on a real
connection pool, a batch that ran on the operation's closed session opened a transaction on a
connection that was never returned, one per request, until the pool ran dry."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from app.main import create_app
from app.settings import Settings, load_settings
from app.state import AppState
from db.url import DatabaseURL
from schema.relay import to_global_id
from tests.factories import make_job, make_user, make_video, make_voice_profile
from tests.support.graphql import GraphQLClient
from tests.support.jobs import committing_sessions

Sessions = async_sessionmaker[AsyncSession]


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


@pytest.fixture
async def pooled_graphql(
    pooled_app: Starlette, pool_settings: Settings
) -> AsyncIterator[GraphQLClient]:
    transport = httpx.ASGITransport(app=pooled_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://studio.test") as http:
        yield GraphQLClient(http, pool_settings)


@pytest.fixture
async def sessions(migrated_database: DatabaseURL) -> AsyncIterator[Sessions]:
    """Sessions that commit, on the pooled app's database."""
    async with committing_sessions(migrated_database) as sessions:
        yield sessions


async def test_a_failed_field_leaves_no_connection_checked_out(
    sessions: Sessions, pooled_app: Starlette, pooled_graphql: GraphQLClient
) -> None:
    async with sessions.begin() as session:
        user = await make_user(session)
        profile = await make_voice_profile(session, user)
        job = await make_job(session, await make_video(session, user))
    # `videos(last: -1)` fails; `node` and `generationJob` wait on loader batches meanwhile.
    query = (
        f'query {{ node(id: "{to_global_id("VoiceProfile", profile.id)}") {{ id }}'
        " videos(last: -1) { totalCount }"
        f' generationJob(id: "{to_global_id("GenerationJob", job.id)}") {{ attempt }} }}'
    )
    state: AppState = pooled_app.state.studio
    pool = state.engine.pool
    client = pooled_graphql.as_user(user.id)
    for _ in range(5):
        response = await client.execute(query)
        assert response.status_code == 200, response.body
        assert response.codes == ["BAD_USER_INPUT"]
        assert pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_fields_sharing_a_load_survive_a_failed_sibling(
    sessions: Sessions, pooled_graphql: GraphQLClient
) -> None:
    async with sessions.begin() as session:
        user = await make_user(session)
        video = await make_video(session, user)
    # Two fields ask for the viewer's video count (one load); a third fails beside them.
    query = (
        "query { viewer { auditEvents(first: -1) { totalCount } videos { totalCount } }"
        f' nodes(ids: ["{to_global_id("Video", video.id)}"]) {{'
        " ... on Video { owner { videos { totalCount } } } } }"
    )
    response = await pooled_graphql.as_user(user.id).execute(query)
    assert response.status_code == 200, response.body
    assert response.codes == ["BAD_USER_INPUT"]
    assert response.data["nodes"] == [{"owner": {"videos": {"totalCount": 1}}}]

"""Abusive documents are refused before they run (SPEC §5 Limits): no SQL for a document that is
too deep, has too many aliases or too many tokens."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.settings import Settings
from tests.factories import make_user, make_video
from tests.support.graphql import GraphQLClient, count_statements


@pytest.fixture
async def viewer(session: AsyncSession, graphql: GraphQLClient) -> GraphQLClient:
    user = await make_user(session)
    await make_video(session, user)
    return graphql.as_user(user.id)


async def test_query_deeper_than_the_limit_is_refused_before_sql(
    viewer: GraphQLClient, connection: AsyncConnection, settings: Settings
) -> None:
    query = _nested_query(settings.max_query_depth + 1)
    await _assert_refused_before_sql(viewer, connection, query)


async def test_query_at_the_depth_limit_runs(viewer: GraphQLClient, settings: Settings) -> None:
    response = await viewer.execute(_nested_query(settings.max_query_depth))
    assert response.ok()["viewer"]["videos"]["edges"]


async def test_more_aliases_than_the_limit_are_refused_before_sql(
    viewer: GraphQLClient, connection: AsyncConnection, settings: Settings
) -> None:
    aliases = " ".join(f"v{n}: videos {{ totalCount }}" for n in range(settings.max_aliases + 1))
    await _assert_refused_before_sql(viewer, connection, f"{{ {aliases} }}")


async def test_more_tokens_than_the_limit_are_refused_before_sql(
    viewer: GraphQLClient, connection: AsyncConnection, settings: Settings
) -> None:
    fields = "totalCount " * settings.max_tokens
    await _assert_refused_before_sql(viewer, connection, f"{{ videos {{ {fields} }} }}")


# --- helpers ------------------------------------------------------------------------------------


def _nested_query(depth: int) -> str:
    """``{ viewer { videos { edges { node { owner { videos … } } } } } }`` with a leaf ``depth``
    levels below the root field (the root field is depth 0, as in graphql-depth-limit)."""
    cycle = [("videos", "totalCount"), ("edges", "cursor"), ("node", "id"), ("owner", "email")]
    fields, leaf = ["viewer"], "email"
    for level in range(depth - 1):
        name, leaf = cycle[level % len(cycle)]
        fields.append(name)
    return "{ " + " { ".join([*fields, leaf]) + " }" * len(fields) + " }"


async def _assert_refused_before_sql(
    client: GraphQLClient, connection: AsyncConnection, query: str
) -> None:
    with count_statements(connection) as counter:
        response = await client.execute(query)
    assert response.data is None
    assert response.errors, response.body
    assert set(response.codes) == {"BAD_USER_INPUT"}, response.errors
    assert counter.statements == []

"""``videos(filter: {search})`` through GraphQL: a search given is a search, whatever its text;
only a missing or null ``search`` lists every video (db/queries/videos.py builds the query)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import User
from tests.factories import make_video
from tests.support.graphql import GraphQLClient

SEARCH = """
query ($filter: VideoFilter) { videos(filter: $filter) { totalCount edges { node { title } } } }
"""


@pytest.mark.parametrize("search", ["%", "   ", "", "!?", "%%%"])
async def test_a_search_with_no_word_lists_no_video(
    graphql: GraphQLClient, owner: User, session: AsyncSession, search: str
) -> None:
    await make_video(session, owner, title="Solar 100%")
    await session.commit()
    videos = await graphql.as_user(owner.id).execute(SEARCH, {"filter": {"search": search}})
    assert videos.ok()["videos"] == {"totalCount": 0, "edges": []}


@pytest.mark.parametrize("video_filter", [None, {}, {"search": None}])
async def test_no_search_lists_every_video(
    graphql: GraphQLClient, owner: User, session: AsyncSession, video_filter: Any
) -> None:
    await make_video(session, owner, title="Solar 100%")
    await session.commit()
    videos = await graphql.as_user(owner.id).execute(SEARCH, {"filter": video_filter})
    assert videos.ok()["videos"]["totalCount"] == 1


async def test_a_search_finds_by_word_prefix(
    graphql: GraphQLClient, owner: User, session: AsyncSession
) -> None:
    await make_video(session, owner, title="Solar 100%")
    await make_video(session, owner, title="Wind")
    await session.commit()
    videos = await graphql.as_user(owner.id).execute(SEARCH, {"filter": {"search": " sol % "}})
    assert videos.ok()["videos"]["edges"] == [{"node": {"title": "Solar 100%"}}]

"""Video reads (db/queries/videos.py): the list filters of SPEC ``VideoFilter``."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from db.queries import videos
from db.queries.pagination import PageRequest
from tests.factories import make_user, make_video

PLUS_14 = timezone(timedelta(hours=14))
MINUS_12 = timezone(timedelta(hours=-12))


@pytest.mark.parametrize(
    ("after", "before", "listed"),
    [
        # Times whose UTC form falls off the ends of the datetime range (found by fuzzing: they
        # were an INTERNAL error).
        (None, datetime(1, 1, 1, tzinfo=PLUS_14), False),
        (datetime(1, 1, 1, tzinfo=PLUS_14), None, True),
        (datetime(9999, 12, 31, 23, 59, tzinfo=MINUS_12), None, False),
        (None, datetime(9999, 12, 31, 23, 59, tzinfo=MINUS_12), True),
    ],
)
async def test_creation_time_bounds_at_the_ends_of_time_keep_their_meaning(
    after: datetime | None, before: datetime | None, listed: bool, session: AsyncSession
) -> None:
    owner = await make_user(session)
    video = await make_video(session, owner)
    video_filter = videos.VideoFilter(created_after=after, created_before=before)

    pages = await videos.list_for_owners(
        session,
        [owner.id],
        video_filter=video_filter,
        order=videos.VideoOrder(),
        page=PageRequest(limit=10),
    )
    counts = await videos.count_for_owners(session, [owner.id], video_filter=video_filter)

    assert [row.id for row in pages[owner.id].rows] == ([video.id] if listed else [])
    assert counts.get(owner.id, 0) == int(listed)


@pytest.mark.parametrize("search", ["%", "   ", "", "%_%", "?!", "'&|:*()", "___", "\u2014 \u2026"])
async def test_a_search_with_no_word_finds_no_video(search: str, session: AsyncSession) -> None:
    """A search with nothing to look for is still a search: it finds nothing (it used to drop
    the condition and list every video)."""
    owner = await make_user(session)
    await make_video(session, owner, title="100% solar", description="___ % ___")
    assert await _searched(session, owner.id, search) == (0, 0)


@pytest.mark.parametrize(
    ("search", "found"),
    [
        ("sol pan", True),
        ("  SOLAR  ", True),
        ("solar %", True),  # the punctuation is no word; "solar" is
        ("the", True),  # 'simple' drops no stop words
        ("wind", False),
    ],
)
async def test_a_search_finds_videos_by_word_prefixes(
    search: str, found: bool, session: AsyncSession
) -> None:
    owner = await make_user(session)
    await make_video(session, owner, title="How solar panels work", description="The sun, 100%.")
    assert await _searched(session, owner.id, search) == (int(found), int(found))


async def _searched(session: AsyncSession, owner_id: uuid.UUID, search: str) -> tuple[int, int]:
    """How many of the owner's videos a search lists, and how many it counts."""
    video_filter = videos.VideoFilter(search=search)
    pages = await videos.list_for_owners(
        session,
        [owner_id],
        video_filter=video_filter,
        order=videos.VideoOrder(),
        page=PageRequest(limit=10),
    )
    counts = await videos.count_for_owners(session, [owner_id], video_filter=video_filter)
    page = pages.get(owner_id)
    return len(page.rows) if page else 0, counts.get(owner_id, 0)

"""Video reads (db/queries/videos.py): the list filters of SPEC ``VideoFilter``."""

from __future__ import annotations

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

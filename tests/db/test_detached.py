"""Detached page rows (db/queries/detached.py) read as the ORM's instances of the same rows."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import UnmappedInstanceError

from db.models import GenerationJob, JobStage, JobStatus, Video
from db.queries import jobs, videos
from db.queries.pagination import PageRequest
from tests.factories import make_job, make_user, make_video


def _columns(row: Any, model: type[Any]) -> dict[str, Any]:
    return {prop.key: getattr(row, prop.key) for prop in inspect(model).column_attrs}


async def test_detached_pages_hold_what_the_orm_loads(session: AsyncSession) -> None:
    owner = await make_user(session)
    video = await make_video(session, owner, description=None, script={"scenes": []})
    empty = await make_video(session, owner)
    await make_job(session, video, status=JobStatus.RUNNING, stage=JobStage.VOICE, progress=40)
    await make_job(session, video, status=JobStatus.SUCCEEDED, progress=100)
    owner_id, video_id, empty_id = owner.id, video.id, empty.id
    session.expire_all()  # the ORM's rows come from the database, as the detached ones do

    page = PageRequest(limit=10)
    orm = await jobs.list_for_videos(session, owner_id, [video_id, empty_id], page=page)
    plain = await jobs.list_for_videos(
        session, owner_id, [video_id, empty_id], page=page, detached=True
    )
    assert plain[empty_id].rows == []
    assert len(plain[video_id].rows) == 2
    for orm_row, plain_row in zip(orm[video_id].rows, plain[video_id].rows, strict=True):
        assert isinstance(plain_row, GenerationJob)
        assert plain_row is not orm_row
        assert _columns(plain_row, GenerationJob) == _columns(orm_row, GenerationJob)

    order, no_filter = videos.VideoOrder(), videos.VideoFilter()
    orm_videos = await videos.list_for_owners(
        session, [owner_id], video_filter=no_filter, order=order, page=page
    )
    plain_videos = await videos.list_for_owners(
        session, [owner_id], video_filter=no_filter, order=order, page=page, detached=True
    )
    assert [_columns(row, Video) for row in plain_videos[owner_id].rows] == [
        _columns(row, Video) for row in orm_videos[owner_id].rows
    ]


async def test_a_detached_row_is_no_sessions(session: AsyncSession) -> None:
    owner = await make_user(session)
    video = await make_video(session, owner)
    await make_job(session, video)
    pages = await jobs.list_for_videos(
        session, owner.id, [video.id], page=PageRequest(limit=1), detached=True
    )
    (row,) = pages[video.id].rows
    assert all(instance is not row for instance in session.identity_map.values())
    with pytest.raises(UnmappedInstanceError):
        _ = row.video  # a relationship raises, as `lazy="raise"` does on a loaded instance

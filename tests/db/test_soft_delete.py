"""Soft-deleted videos vanish from reads, cancel their job, and come back on restore."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from db.models import JobStatus, VideoStatus
from db.queries import video_writes, videos
from tests.factories import make_job, make_user, make_video


async def test_deleted_video_is_hidden_and_restorable(session: AsyncSession) -> None:
    owner = await make_user(session)
    video = await make_video(session, owner)

    await video_writes.soft_delete_video(session, owner.id, video.id)
    assert await videos.get_video(session, owner.id, video.id) is None
    assert await videos.get_video(session, owner.id, video.id, deleted=True) is not None

    restored = await video_writes.restore_video(session, owner.id, video.id)
    assert restored.deleted_at is None
    assert await videos.get_video(session, owner.id, video.id) is not None


async def test_deleting_a_video_cancels_its_active_job(session: AsyncSession) -> None:
    owner = await make_user(session)
    video = await make_video(session, owner)
    done = await make_job(session, video, status=JobStatus.SUCCEEDED, attempt=1)
    running = await make_job(session, video, status=JobStatus.RUNNING, attempt=1)

    await video_writes.soft_delete_video(session, owner.id, video.id)
    await session.refresh(running)
    await session.refresh(done)
    assert running.status is JobStatus.CANCELLED
    assert running.finished_at is not None
    assert done.status is JobStatus.SUCCEEDED


async def test_other_users_video_cannot_be_deleted(session: AsyncSession) -> None:
    owner, stranger = await make_user(session), await make_user(session)
    video = await make_video(session, owner)
    with pytest.raises(NotFound):
        await video_writes.soft_delete_video(session, stranger.id, video.id)
    assert await videos.get_video(session, stranger.id, video.id) is None
    assert await videos.get_video(session, owner.id, video.id) is not None


async def test_deleting_twice_or_restoring_a_live_video_is_not_found(session: AsyncSession) -> None:
    owner = await make_user(session)
    video = await make_video(session, owner)
    with pytest.raises(NotFound):
        await video_writes.restore_video(session, owner.id, video.id)
    await video_writes.soft_delete_video(session, owner.id, video.id)
    with pytest.raises(NotFound):
        await video_writes.soft_delete_video(session, owner.id, video.id)


async def test_deleting_a_video_mid_run_leaves_it_restorable_to_a_settled_status(
    session: AsyncSession,
) -> None:
    owner = await make_user(session)
    video = await make_video(session, owner, status=VideoStatus.PROCESSING, progress=40)
    await make_job(session, video, status=JobStatus.RUNNING, attempt=1)

    await video_writes.soft_delete_video(session, owner.id, video.id)
    restored = await video_writes.restore_video(session, owner.id, video.id)
    # Its run was cancelled: it must not show PROCESSING with no job behind it.
    assert restored.status is VideoStatus.DRAFT
    assert restored.progress == 0


async def test_deleting_an_idle_video_keeps_its_status(session: AsyncSession) -> None:
    owner = await make_user(session)
    video = await make_video(session, owner, status=VideoStatus.READY, progress=100)
    await video_writes.soft_delete_video(session, owner.id, video.id)
    restored = await video_writes.restore_video(session, owner.id, video.id)
    assert (restored.status, restored.progress) == (VideoStatus.READY, 100)

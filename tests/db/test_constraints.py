"""The database refuses bad rows, and `db.integrity` says why in the API's terms."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import BadUserInput, Conflict
from db.integrity import constraint_errors
from db.models import GenerationJob, JobStatus, User, Video
from tests.factories import make_job, make_user, make_video, make_voice_profile


async def test_progress_above_100_is_refused(session: AsyncSession) -> None:
    video = await make_video(session, await make_user(session))
    with pytest.raises(BadUserInput) as caught:
        async with constraint_errors(session):
            video.progress = 101
    assert caught.value.field == "progress"


async def test_negative_job_progress_is_refused_by_bulk_update_too(session: AsyncSession) -> None:
    job = await make_job(session, await make_video(session, await make_user(session)))
    with pytest.raises(BadUserInput):
        async with constraint_errors(session):
            await session.execute(
                update(GenerationJob).where(GenerationJob.id == job.id).values(progress=-1)
            )


async def test_same_email_in_another_case_is_a_conflict(session: AsyncSession) -> None:
    await make_user(session, email="Ada@Example.com")
    with pytest.raises(Conflict) as caught:
        async with constraint_errors(session):
            session.add(User(email="ada@example.COM"))
    assert caught.value.field == "email"


async def test_session_is_usable_after_a_refused_write(session: AsyncSession) -> None:
    user = await make_user(session, email="grace@example.com")
    with pytest.raises(Conflict):
        async with constraint_errors(session):
            session.add(User(email="GRACE@example.com"))
    # The failed insert left nothing behind, and the transaction goes on.
    emails = (await session.scalars(select(User.email).where(User.id == user.id))).all()
    assert emails == ["grace@example.com"]
    assert await make_user(session, email="hopper@example.com")


async def test_oauth_identity_is_unique_per_provider(session: AsyncSession) -> None:
    await make_user(session, oauth_provider="google", oauth_subject="123")
    await make_user(session, oauth_provider="github", oauth_subject="123")
    with pytest.raises(Conflict):
        async with constraint_errors(session):
            session.add(
                User(email="other@example.com", oauth_provider="google", oauth_subject="123")
            )


async def test_missing_voice_profile_is_a_clean_error(session: AsyncSession) -> None:
    video = await make_video(session, await make_user(session))
    with pytest.raises(BadUserInput) as caught:
        async with constraint_errors(session):
            video.voice_profile_id = uuid.uuid4()
    assert caught.value.field == "voiceProfileId"
    assert str(caught.value) == "Voice profile not found."


async def test_url_video_needs_a_source_url(session: AsyncSession) -> None:
    user = await make_user(session)
    with pytest.raises(BadUserInput) as caught:
        async with constraint_errors(session):
            session.add(Video(user_id=user.id, title="From a page", input_type="URL"))
    assert caught.value.field == "sourceUrl"


async def test_blank_title_is_refused(session: AsyncSession) -> None:
    user = await make_user(session)
    with pytest.raises(BadUserInput):
        async with constraint_errors(session):
            session.add(Video(user_id=user.id, title="   ", input_type="DESCRIPTION"))


async def test_second_active_job_for_a_video_is_a_conflict(session: AsyncSession) -> None:
    video = await make_video(session, await make_user(session))
    await make_job(session, video, status=JobStatus.RUNNING, attempt=1)
    with pytest.raises(Conflict):
        async with constraint_errors(session):
            session.add(GenerationJob(video_id=video.id))


async def test_finished_jobs_do_not_block_a_new_one(session: AsyncSession) -> None:
    video = await make_video(session, await make_user(session))
    for status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
        await make_job(session, video, status=status, attempt=1)
    assert await make_job(session, video)


async def test_voice_profile_of_deleted_row_is_released(session: AsyncSession) -> None:
    user = await make_user(session)
    profile = await make_voice_profile(session, user)
    video = await make_video(session, user, voice_profile_id=profile.id)
    await session.delete(profile)
    await session.flush()
    await session.refresh(video)
    assert video.voice_profile_id is None


async def test_unknown_violation_is_not_swallowed(session: AsyncSession) -> None:
    user = await make_user(session)
    with pytest.raises(IntegrityError):
        async with constraint_errors(session):
            # Not in the translation table: a bug, reported as it is.
            session.add(User(email="x@example.com", oauth_provider="google"))
    assert user.id

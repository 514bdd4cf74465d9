"""startGeneration and cancelGeneration (SPEC §4, §5 Generation): one transaction each, with the
job and its video changing together, owner-checked, audited, and nothing written on rejection."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import AuditEvent, GenerationJob, JobStatus, Video, VideoInputType, VideoStatus
from schema.relay import to_global_id
from tests.factories import make_job, make_user, make_video
from tests.support.graphql import GraphQLClient

START = """
mutation Start($videoId: ID!) {
  startGeneration(videoId: $videoId) {
    job { id status stage progress attempt error queuedAt startedAt finishedAt
          video { id status progress errorMessage latestJob { id } } }
  }
}
"""
CANCEL = """
mutation Cancel($jobId: ID!) {
  cancelGeneration(jobId: $jobId) {
    job { id status finishedAt error video { status progress } }
  }
}
"""


async def _state(session: AsyncSession, video_id: uuid.UUID) -> tuple[Any, ...]:
    """Everything a rejected mutation must leave alone."""
    video = await session.scalar(
        select(Video).where(Video.id == video_id).execution_options(populate_existing=True)
    )
    assert video is not None
    jobs = (
        await session.execute(
            select(GenerationJob.id, GenerationJob.status).where(GenerationJob.video_id == video_id)
        )
    ).all()
    audits = await session.scalar(select(func.count()).select_from(AuditEvent))
    return video.status, video.progress, video.version, sorted(jobs), audits


def _gid(kind: str, row_id: uuid.UUID) -> str:
    return to_global_id(kind, row_id)


# --- startGeneration ----------------------------------------------------------------------


async def test_start_queues_a_job_and_the_video_together(
    session: AsyncSession, graphql: GraphQLClient
) -> None:
    user = await make_user(session)
    video = await make_video(
        session, user, status=VideoStatus.ERROR, progress=40, error_message="Earlier failure."
    )
    await session.commit()

    data = (
        await graphql.as_user(user.id).execute(START, {"videoId": _gid("Video", video.id)})
    ).ok()

    job = data["startGeneration"]["job"]
    assert (job["status"], job["stage"], job["progress"], job["attempt"]) == ("QUEUED", None, 0, 0)
    assert job["queuedAt"] is not None
    assert (job["startedAt"], job["finishedAt"], job["error"]) == (None, None, None)
    assert job["video"] == {
        "id": _gid("Video", video.id),
        "status": "QUEUED",
        "progress": 0,
        "errorMessage": None,
        "latestJob": {"id": job["id"]},
    }
    event = await session.scalar(select(AuditEvent).where(AuditEvent.action == "job.start"))
    assert event is not None
    assert (event.actor_id, event.object_type) == (user.id, "GenerationJob")
    assert _gid("GenerationJob", event.object_id or uuid.uuid4()) == job["id"]
    assert event.diff == {"video_id": str(video.id), "video_status": ["ERROR", "QUEUED"]}
    assert event.request_id


async def test_jobs_get_the_configured_number_of_attempts(
    session: AsyncSession, graphql: GraphQLClient
) -> None:
    user = await make_user(session)
    video = await make_video(session, user)
    await session.commit()
    (await graphql.as_user(user.id).execute(START, {"videoId": _gid("Video", video.id)})).ok()
    job = await session.scalar(select(GenerationJob).where(GenerationJob.video_id == video.id))
    assert job is not None
    assert job.max_attempts == graphql.settings.job_max_attempts


@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.RUNNING])
async def test_start_while_a_job_is_active_is_a_conflict(
    status: JobStatus, session: AsyncSession, graphql: GraphQLClient
) -> None:
    user = await make_user(session)
    video = await make_video(session, user, status=VideoStatus.QUEUED)
    await make_job(session, video, status=status, attempt=int(status is JobStatus.RUNNING))
    await session.commit()
    before = await _state(session, video.id)

    response = await graphql.as_user(user.id).execute(START, {"videoId": _gid("Video", video.id)})

    assert response.codes == ["CONFLICT"]
    assert await _state(session, video.id) == before


async def test_start_again_after_a_run_finished(
    session: AsyncSession, graphql: GraphQLClient
) -> None:
    user = await make_user(session)
    video = await make_video(session, user, status=VideoStatus.READY, script={"segments": []})
    await make_job(session, video, status=JobStatus.SUCCEEDED, attempt=1)
    await session.commit()
    client = graphql.as_user(user.id)

    first = (await client.execute(START, {"videoId": _gid("Video", video.id)})).ok()
    second = await client.execute(START, {"videoId": _gid("Video", video.id)})

    assert first["startGeneration"]["job"]["video"]["status"] == "QUEUED"
    assert second.codes == ["CONFLICT"]


async def test_someone_elses_or_a_deleted_video_is_not_found(
    session: AsyncSession, graphql: GraphQLClient
) -> None:
    owner, stranger = await make_user(session), await make_user(session)
    theirs = await make_video(session, owner)
    deleted = await make_video(session, stranger, deleted_at=func.now())
    await session.commit()
    client = graphql.as_user(stranger.id)
    for video in (theirs, deleted):
        before = await _state(session, video.id)
        response = await client.execute(START, {"videoId": _gid("Video", video.id)})
        assert response.codes == ["NOT_FOUND"]
        assert await _state(session, video.id) == before


async def test_a_video_without_its_input_cannot_start(
    session: AsyncSession, graphql: GraphQLClient
) -> None:
    user = await make_user(session)
    video = await make_video(
        session, user, input_type=VideoInputType.DESCRIPTION, description="   "
    )
    await session.commit()
    before = await _state(session, video.id)

    response = await graphql.as_user(user.id).execute(START, {"videoId": _gid("Video", video.id)})

    assert response.codes == ["BAD_USER_INPUT"]
    assert response.errors[0]["extensions"]["field"] == "description"
    assert await _state(session, video.id) == before


async def test_start_needs_a_signed_in_viewer_and_a_video_id(
    session: AsyncSession, graphql: GraphQLClient
) -> None:
    user = await make_user(session)
    video = await make_video(session, user)
    await session.commit()
    anonymous = await graphql.execute(START, {"videoId": _gid("Video", video.id)})
    assert anonymous.codes == ["UNAUTHENTICATED"]
    wrong_kind = await graphql.as_user(user.id).execute(START, {"videoId": _gid("User", user.id)})
    assert wrong_kind.codes == ["BAD_USER_INPUT"]
    assert wrong_kind.errors[0]["extensions"]["field"] == "videoId"


# --- cancelGeneration ---------------------------------------------------------------------


async def test_cancel_a_queued_job_returns_the_video_to_draft(
    session: AsyncSession, graphql: GraphQLClient
) -> None:
    user = await make_user(session)
    video = await make_video(session, user)
    await session.commit()
    client = graphql.as_user(user.id)
    started = (await client.execute(START, {"videoId": _gid("Video", video.id)})).ok()
    job_id = started["startGeneration"]["job"]["id"]

    job = (await client.execute(CANCEL, {"jobId": job_id})).ok()["cancelGeneration"]["job"]

    assert job["status"] == "CANCELLED"
    assert job["finishedAt"] is not None
    assert job["video"] == {"status": "DRAFT", "progress": 0}
    event = await session.scalar(select(AuditEvent).where(AuditEvent.action == "job.cancel"))
    assert event is not None
    assert event.actor_id == user.id
    assert event.diff == {"status": ["QUEUED", "CANCELLED"], "video_status": ["QUEUED", "DRAFT"]}
    # And it can start again.
    assert (await client.execute(START, {"videoId": _gid("Video", video.id)})).ok()


async def test_cancel_a_rerun_keeps_the_earlier_result(
    session: AsyncSession, graphql: GraphQLClient
) -> None:
    user = await make_user(session)
    script = {"segments": [{"index": 0, "text": "Title"}]}
    video = await make_video(session, user, status=VideoStatus.PROCESSING, script=script)
    job = await make_job(session, video, status=JobStatus.RUNNING, attempt=1, lease_owner="w")
    await session.commit()

    data = (
        await graphql.as_user(user.id).execute(CANCEL, {"jobId": _gid("GenerationJob", job.id)})
    ).ok()

    assert data["cancelGeneration"]["job"]["video"]["status"] == "READY"


@pytest.mark.parametrize("status", [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED])
async def test_cancel_a_finished_job_is_a_conflict(
    status: JobStatus, session: AsyncSession, graphql: GraphQLClient
) -> None:
    user = await make_user(session)
    video = await make_video(session, user, status=VideoStatus.READY)
    job = await make_job(session, video, status=status, attempt=1)
    await session.commit()
    before = await _state(session, video.id)

    response = await graphql.as_user(user.id).execute(
        CANCEL, {"jobId": _gid("GenerationJob", job.id)}
    )

    assert response.codes == ["CONFLICT"]
    assert status.value in response.errors[0]["message"]
    assert await _state(session, video.id) == before


async def test_someone_elses_job_cannot_be_cancelled(
    session: AsyncSession, graphql: GraphQLClient
) -> None:
    owner, stranger = await make_user(session), await make_user(session)
    video = await make_video(session, owner, status=VideoStatus.QUEUED)
    job = await make_job(session, video, status=JobStatus.QUEUED)
    await session.commit()
    before = await _state(session, video.id)

    response = await graphql.as_user(stranger.id).execute(
        CANCEL, {"jobId": _gid("GenerationJob", job.id)}
    )

    assert response.codes == ["NOT_FOUND"]
    assert await _state(session, video.id) == before

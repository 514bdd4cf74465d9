"""``targetDurationSeconds`` on a video: set when creating or updating it, read back on the
video, 15 to 600 seconds (60 when not given), refused outside that with nothing written, locked
while a job runs, and handed to the SCRIPT stage."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.worker.pipeline import VideoInput
from db.models import AuditEvent, JobStatus, Video
from schema.relay import from_global_id, to_global_id
from tests.factories import make_job, make_user, make_video
from tests.support.graphql import GraphQLClient

CREATE = """
mutation Create($input: CreateVideoInput!) {
  createVideo(input: $input) { video { id targetDurationSeconds } }
}
"""
UPDATE = """
mutation Update($input: UpdateVideoInput!) {
  updateVideo(input: $input) { video { id targetDurationSeconds } }
}
"""
READ = "query Read($id: ID!) { video(id: $id) { targetDurationSeconds } }"
BASE = {"title": "Tides", "description": "The moon pulls the sea.", "inputType": "DESCRIPTION"}


async def _counts(session: AsyncSession) -> tuple[int, int]:
    videos = await session.scalar(select(func.count()).select_from(Video))
    events = await session.scalar(select(func.count()).select_from(AuditEvent))
    return int(videos or 0), int(events or 0)


@pytest.mark.parametrize(("given", "stored"), [({}, 60), ({"targetDurationSeconds": None}, 60),
                                               ({"targetDurationSeconds": 15}, 15),
                                               ({"targetDurationSeconds": 600}, 600),
                                               ({"targetDurationSeconds": 90}, 90)])  # fmt: skip
async def test_a_video_keeps_the_duration_it_was_created_with(
    given: dict[str, Any], stored: int, session: AsyncSession, graphql: GraphQLClient
) -> None:
    user = await make_user(session)
    await session.commit()
    client = graphql.as_user(user.id)
    created = (await client.execute(CREATE, {"input": BASE | given})).ok()["createVideo"]["video"]
    assert created["targetDurationSeconds"] == stored
    read = (await client.execute(READ, {"id": created["id"]})).ok()
    assert read["video"]["targetDurationSeconds"] == stored
    row = await session.get(Video, from_global_id(created["id"], expected="Video")[1])
    assert row is not None
    assert VideoInput.of(row).target_duration_seconds == stored


@pytest.mark.parametrize("seconds", [14, 601, 0, -60, 2**31 - 1])
async def test_a_duration_out_of_range_is_refused_and_nothing_is_written(
    seconds: int, session: AsyncSession, graphql: GraphQLClient
) -> None:
    user = await make_user(session)
    video = await make_video(session, user)
    await session.commit()
    client = graphql.as_user(user.id)
    before = await _counts(session)
    for query, given in (
        (CREATE, BASE),
        (UPDATE, {"id": to_global_id("Video", video.id)}),
    ):
        response = await client.execute(
            query, {"input": given | {"targetDurationSeconds": seconds}}
        )
        assert response.codes == ["BAD_USER_INPUT"]
        error = response.errors[0]
        assert error["extensions"]["field"] == "targetDurationSeconds"
        assert error["message"] == (
            f"`targetDurationSeconds` must be between 15 and 600 seconds (got {seconds})."
        )
    assert await _counts(session) == before
    await session.refresh(video)
    assert video.target_duration_seconds == 60


async def test_a_duration_that_is_not_a_whole_number_is_refused(
    session: AsyncSession, graphql: GraphQLClient
) -> None:
    user = await make_user(session)
    await session.commit()
    before = await _counts(session)
    response = await graphql.as_user(user.id).execute(
        CREATE, {"input": BASE | {"targetDurationSeconds": 30.5}}
    )
    assert response.errors
    assert await _counts(session) == before


async def test_update_changes_the_duration_and_audits_it(
    session: AsyncSession, graphql: GraphQLClient
) -> None:
    user = await make_user(session)
    video = await make_video(session, user)
    await session.commit()
    client = graphql.as_user(user.id)
    gid = to_global_id("Video", video.id)
    data = (await client.execute(UPDATE, {"input": {"id": gid, "targetDurationSeconds": 120}})).ok()
    assert data["updateVideo"]["video"]["targetDurationSeconds"] == 120
    event = await session.scalar(select(AuditEvent).where(AuditEvent.action == "video.update"))
    assert event is not None
    assert event.diff["target_duration_seconds"] == [60, 120]
    reset = await client.execute(UPDATE, {"input": {"id": gid, "targetDurationSeconds": None}})
    assert reset.ok()["updateVideo"]["video"]["targetDurationSeconds"] == 60


async def test_the_duration_is_locked_while_a_job_runs(
    session: AsyncSession, graphql: GraphQLClient
) -> None:
    user = await make_user(session)
    video = await make_video(session, user)
    await make_job(session, video, status=JobStatus.RUNNING, attempt=1)
    await session.commit()
    response = await graphql.as_user(user.id).execute(
        UPDATE, {"input": {"id": to_global_id("Video", video.id), "targetDurationSeconds": 30}}
    )
    assert response.codes == ["CONFLICT"]
    assert "target duration" in response.errors[0]["message"]

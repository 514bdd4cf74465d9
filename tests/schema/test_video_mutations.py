"""Video mutations: each writes in one transaction, audits itself, and checks its input."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import AuditEvent, JobStatus, Video, VideoStatus
from schema.relay import to_global_id
from tests.factories import make_job, make_user, make_video, make_voice_profile
from tests.support.graphql import GraphQLClient

CREATE = """
mutation Create($input: CreateVideoInput!) {
  createVideo(input: $input) {
    video { id title description inputType sourceUrl status progress
            audioSettings { speed pitch volume language } voiceProfile { name } owner { email } }
  }
}
"""
UPDATE = """
mutation Update($input: UpdateVideoInput!) {
  updateVideo(input: $input) { video { id title description audioSettings { speed language } } }
}
"""


async def _count(session: AsyncSession, model: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_create_video_from_a_description(
    session: AsyncSession, graphql: GraphQLClient
) -> None:
    user = await make_user(session)
    profile = await make_voice_profile(session, user, name="Warm")
    await session.commit()
    data = (
        await graphql.as_user(user.id).execute(
            CREATE,
            {
                "input": {
                    "title": "  Solar panels  ",
                    "description": "Sunlight knocks electrons loose.",
                    "inputType": "DESCRIPTION",
                    "voiceProfileId": to_global_id("VoiceProfile", profile.id),
                    "audioSettings": {"speed": 1.25, "language": "en-GB"},
                }
            },
        )
    ).ok()
    video = data["createVideo"]["video"]
    assert video["title"] == "Solar panels"
    assert video["status"] == "DRAFT"
    assert video["audioSettings"] == {
        "speed": 1.25,
        "pitch": 1.0,
        "volume": 1.0,
        "language": "en-GB",
    }
    assert video["voiceProfile"] == {"name": "Warm"}
    assert video["owner"]["email"] == user.email
    event = await session.scalar(select(AuditEvent).where(AuditEvent.action == "video.create"))
    assert event is not None
    assert event.actor_id == user.id
    assert event.request_id


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"inputType": "URL"}, "sourceUrl"),
        ({"inputType": "URL", "sourceUrl": "ftp://example.com/x"}, "sourceUrl"),
        ({"inputType": "URL", "sourceUrl": "https://user:pw@example.com/"}, "sourceUrl"),
        ({"description": None}, "description"),
        ({"audioSettings": {"speed": 9}}, "audioSettings.speed"),
        ({"audioSettings": {"volume": -1}}, "audioSettings.volume"),
        ({"audioSettings": {"language": "english please"}}, "audioSettings.language"),
        ({"voiceProfileId": "bm90LWFuLWlk"}, "voiceProfileId"),
    ],
)
async def test_invalid_input_names_the_field_and_writes_nothing(
    overrides: dict[str, Any], field: str, session: AsyncSession, graphql: GraphQLClient
) -> None:
    user = await make_user(session)
    await session.commit()
    before = (await _count(session, Video), await _count(session, AuditEvent))
    base = {"title": "Ok", "description": "Some words.", "inputType": "DESCRIPTION"}
    response = await graphql.as_user(user.id).execute(CREATE, {"input": base | overrides})
    assert response.codes == ["BAD_USER_INPUT"]
    assert response.errors[0]["extensions"]["field"] == field
    assert (await _count(session, Video), await _count(session, AuditEvent)) == before


async def test_someone_elses_voice_profile_is_refused(
    session: AsyncSession, graphql: GraphQLClient
) -> None:
    user, stranger = await make_user(session), await make_user(session)
    theirs = await make_voice_profile(session, stranger)
    await session.commit()
    response = await graphql.as_user(user.id).execute(
        CREATE,
        {
            "input": {
                "title": "Mine",
                "description": "Words.",
                "inputType": "DESCRIPTION",
                "voiceProfileId": to_global_id("VoiceProfile", theirs.id),
            }
        },
    )
    assert response.codes == ["BAD_USER_INPUT"]
    assert response.errors[0]["extensions"]["field"] == "voiceProfileId"


async def test_update_changes_only_what_is_given_and_audits_the_diff(
    session: AsyncSession, graphql: GraphQLClient
) -> None:
    user = await make_user(session)
    video = await make_video(session, user, title="Old", description="Old words.")
    await session.commit()
    data = (
        await graphql.as_user(user.id).execute(
            UPDATE,
            {
                "input": {
                    "id": to_global_id("Video", video.id),
                    "title": "New",
                    "audioSettings": {"speed": 0.75},
                }
            },
        )
    ).ok()
    assert data["updateVideo"]["video"]["title"] == "New"
    assert data["updateVideo"]["video"]["description"] == "Old words."
    assert data["updateVideo"]["video"]["audioSettings"] == {"speed": 0.75, "language": "en"}
    event = await session.scalar(select(AuditEvent).where(AuditEvent.action == "video.update"))
    assert event is not None
    assert event.diff["title"] == ["Old", "New"]
    assert "description" not in event.diff


async def test_generation_inputs_are_locked_while_a_job_runs(
    session: AsyncSession, graphql: GraphQLClient
) -> None:
    user = await make_user(session)
    video = await make_video(session, user)
    await make_job(session, video, status=JobStatus.RUNNING, attempt=1)
    await session.commit()
    client = graphql.as_user(user.id)
    gid = to_global_id("Video", video.id)
    locked = await client.execute(UPDATE, {"input": {"id": gid, "description": "Other words."}})
    assert locked.codes == ["CONFLICT"]
    renamed = await client.execute(UPDATE, {"input": {"id": gid, "title": "A new title"}})
    assert renamed.ok()["updateVideo"]["video"]["title"] == "A new title"


async def test_other_users_video_cannot_be_changed(
    session: AsyncSession, graphql: GraphQLClient
) -> None:
    owner, stranger = await make_user(session), await make_user(session)
    video = await make_video(session, owner, title="Theirs")
    await session.commit()
    client = graphql.as_user(stranger.id)
    gid = to_global_id("Video", video.id)
    attempts: list[tuple[str, dict[str, Any]]] = [
        (UPDATE, {"input": {"id": gid, "title": "Mine now"}}),
        ("mutation($id: ID!) { deleteVideo(id: $id) { deletedId } }", {"id": gid}),
        ("mutation($id: ID!) { restoreVideo(id: $id) { video { id } } }", {"id": gid}),
        (
            "mutation($id: ID!) { publishVideo(input: {videoId: $id}) { video { id } } }",
            {"id": gid},
        ),
    ]
    for query, variables in attempts:
        response = await client.execute(query, variables)
        assert response.codes == ["NOT_FOUND"], query
    await session.refresh(video)
    assert video.title == "Theirs"
    assert video.deleted_at is None
    assert await _count(session, AuditEvent) == 0


async def test_delete_then_restore(session: AsyncSession, graphql: GraphQLClient) -> None:
    user = await make_user(session)
    video = await make_video(session, user)
    job = await make_job(session, video, status=JobStatus.QUEUED)
    await session.commit()
    client = graphql.as_user(user.id)
    gid = to_global_id("Video", video.id)
    deleted = await client.execute(
        "mutation($id: ID!) { deleteVideo(id: $id) { deletedId } }", {"id": gid}
    )
    assert deleted.ok()["deleteVideo"]["deletedId"] == gid
    assert (
        await client.execute("query($id: ID!) { video(id: $id) { id } }", {"id": gid})
    ).codes == ["NOT_FOUND"]
    await session.refresh(job)
    assert job.status is JobStatus.CANCELLED
    restored = await client.execute(
        "mutation($id: ID!) { restoreVideo(id: $id) { video { id } } }", {"id": gid}
    )
    assert restored.ok()["restoreVideo"]["video"]["id"] == gid
    actions = (
        await session.scalars(select(AuditEvent.action).order_by(AuditEvent.created_at))
    ).all()
    assert list(actions) == ["video.delete", "video.restore"]


RENDERED = {
    "media_path": "videos/v/j.1/video.mp4",
    "poster_path": "videos/v/j.1/poster.png",
    "duration_ms": 1000,
}


async def test_only_ready_videos_publish(session: AsyncSession, graphql: GraphQLClient) -> None:
    user = await make_user(session)
    draft = await make_video(session, user)
    unrendered = await make_video(session, user, status=VideoStatus.READY)
    ready = await make_video(session, user, status=VideoStatus.READY, **RENDERED)
    await session.commit()
    client = graphql.as_user(user.id)
    publish = """mutation($id: ID!) {
        publishVideo(input: {videoId: $id}) { video { status publishedTo { target url } } }
    }"""
    refused = await client.execute(publish, {"id": to_global_id("Video", draft.id)})
    assert refused.codes == ["CONFLICT"]
    no_media = await client.execute(publish, {"id": to_global_id("Video", unrendered.id)})
    assert no_media.codes == ["CONFLICT"]
    assert "no rendered media" in no_media.errors[0]["message"]
    published = (await client.execute(publish, {"id": to_global_id("Video", ready.id)})).ok()
    assert published["publishVideo"]["video"] == {
        "status": "PUBLISHED",
        "publishedTo": [{"target": "local", "url": f"/published/{ready.id}.mp4"}],
    }
    unknown = await client.execute(
        'mutation($id: ID!) { publishVideo(input: {videoId: $id, target: "myspace"}) { '
        "video { id } } }",
        {"id": to_global_id("Video", ready.id)},
    )
    assert unknown.codes == ["BAD_USER_INPUT"]

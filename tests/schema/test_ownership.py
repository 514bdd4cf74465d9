"""A viewer reads only their own objects, through every path (SPEC §5 Ownership, Soft delete).

Someone else's object must be indistinguishable from one that does not exist: the same code, the
same message and the same error shape, so that a client cannot probe which ids are taken.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import GenerationJob, User, Video, VoiceProfile
from schema.relay import to_global_id
from tests.factories import make_job, make_user, make_video, make_voice_profile
from tests.support.graphql import GraphQLClient, GraphQLResponse

NODE = "query ($id: ID!) { node(id: $id) { id } }"
NODES = "query ($ids: [ID!]!) { nodes(ids: $ids) { id } }"
VIDEO = """
query ($id: ID!) {
  video(id: $id) {
    id title
    owner { email }
    voiceProfile { id name }
    jobs { totalCount edges { node { id } } }
    latestJob { id }
  }
}
"""
GENERATION_JOB = "query ($id: ID!) { generationJob(id: $id) { id status video { id title } } }"
VOICE_PROFILE_OWNER = """
query ($id: ID!) { node(id: $id) { id ... on VoiceProfile { name owner { email } } } }
"""
VIDEOS = "{ videos { totalCount edges { node { id } } } }"
VIEWER_VIDEOS = "{ viewer { videos { totalCount edges { node { id } } } } }"
VOICE_PROFILES = "{ voiceProfiles { totalCount edges { node { id } } } }"


@dataclass
class Objects:
    user: User
    profile: VoiceProfile
    video: Video
    job: GenerationJob


async def _make_objects(session: AsyncSession) -> Objects:
    user = await make_user(session)
    profile = await make_voice_profile(session, user)
    video = await make_video(session, user, voice_profile_id=profile.id)
    job = await make_job(session, video)
    return Objects(user=user, profile=profile, video=video, job=job)


@pytest.fixture
async def mine(session: AsyncSession) -> Objects:
    return await _make_objects(session)


@pytest.fixture
async def theirs(session: AsyncSession) -> Objects:
    return await _make_objects(session)


@pytest.fixture
def viewer(graphql: GraphQLClient, mine: Objects) -> GraphQLClient:
    return graphql.as_user(mine.user.id)


# --- by id: someone else's object looks exactly like a missing one ---------------------------

TYPES = ["User", "Video", "VoiceProfile", "GenerationJob"]


def _global_id(objects: Objects, type_name: str) -> str:
    rows: dict[str, User | Video | VoiceProfile | GenerationJob] = {
        "User": objects.user,
        "Video": objects.video,
        "VoiceProfile": objects.profile,
        "GenerationJob": objects.job,
    }
    return to_global_id(type_name, rows[type_name].id)


@pytest.mark.parametrize("type_name", TYPES)
async def test_node_of_another_user_is_not_found_like_a_missing_id(
    viewer: GraphQLClient, theirs: Objects, type_name: str
) -> None:
    await _assert_hidden(viewer, NODE, _global_id(theirs, type_name), type_name)


@pytest.mark.parametrize("type_name", TYPES)
async def test_node_of_the_viewers_own_object_is_found(
    viewer: GraphQLClient, mine: Objects, type_name: str
) -> None:
    global_id = _global_id(mine, type_name)
    response = await viewer.execute(NODE, {"id": global_id})
    assert response.ok() == {"node": {"id": global_id}}


async def test_video_of_another_user_is_not_found_like_a_missing_id(
    viewer: GraphQLClient, theirs: Objects
) -> None:
    # The selection reaches voiceProfile, jobs, latestJob and owner: none of them may leak.
    await _assert_hidden(viewer, VIDEO, _global_id(theirs, "Video"), "Video")


async def test_generation_job_of_another_user_is_not_found_like_a_missing_id(
    viewer: GraphQLClient, theirs: Objects
) -> None:
    await _assert_hidden(
        viewer, GENERATION_JOB, _global_id(theirs, "GenerationJob"), "GenerationJob"
    )


async def test_voice_profile_of_another_user_does_not_lead_to_its_owner(
    viewer: GraphQLClient, theirs: Objects
) -> None:
    await _assert_hidden(
        viewer, VOICE_PROFILE_OWNER, _global_id(theirs, "VoiceProfile"), "VoiceProfile"
    )


async def test_nested_fields_of_the_viewers_objects_resolve(
    viewer: GraphQLClient, mine: Objects
) -> None:
    video = (await viewer.execute(VIDEO, {"id": _global_id(mine, "Video")})).ok()["video"]
    assert video["owner"] == {"email": mine.user.email}
    assert video["voiceProfile"] == {"id": _global_id(mine, "VoiceProfile"), "name": "Narrator"}
    assert video["jobs"] == {
        "totalCount": 1,
        "edges": [{"node": {"id": _global_id(mine, "GenerationJob")}}],
    }
    assert video["latestJob"] == {"id": _global_id(mine, "GenerationJob")}

    job = (await viewer.execute(GENERATION_JOB, {"id": _global_id(mine, "GenerationJob")})).ok()
    assert job["generationJob"]["video"]["id"] == _global_id(mine, "Video")

    profile = await viewer.execute(VOICE_PROFILE_OWNER, {"id": _global_id(mine, "VoiceProfile")})
    assert profile.ok()["node"]["owner"] == {"email": mine.user.email}


async def test_voice_profile_of_another_user_on_the_viewers_video_is_null(
    session: AsyncSession, viewer: GraphQLClient, mine: Objects, theirs: Objects
) -> None:
    video = await make_video(session, mine.user, voice_profile_id=theirs.profile.id)
    response = await viewer.execute(VIDEO, {"id": to_global_id("Video", video.id)})
    assert response.ok()["video"]["voiceProfile"] is None


# --- nodes ------------------------------------------------------------------------------------


async def test_nodes_returns_the_viewers_objects_in_order_and_not_found_for_others(
    viewer: GraphQLClient, mine: Objects, theirs: Objects
) -> None:
    ids = [
        _global_id(mine, "Video"),
        _global_id(theirs, "Video"),
        _global_id(mine, "GenerationJob"),
        to_global_id("Video", uuid.uuid4()),
        _global_id(mine, "VoiceProfile"),
        _global_id(theirs, "GenerationJob"),
    ]
    response = await viewer.execute(NODES, {"ids": ids})

    assert response.data == {
        "nodes": [{"id": ids[0]}, None, {"id": ids[2]}, None, {"id": ids[4]}, None]
    }
    assert [error["path"] for error in response.errors] == [
        ["nodes", 1],
        ["nodes", 3],
        ["nodes", 5],
    ]
    assert response.codes == ["NOT_FOUND"] * 3
    # Another user's video and a missing video: the same error, but for the id and the index.
    other, missing = (
        _shape(_without(error, "path"), global_id)
        for error, global_id in zip(response.errors[:2], [ids[1], ids[3]], strict=True)
    )
    assert other == missing


# --- lists ------------------------------------------------------------------------------------


async def test_videos_lists_only_the_viewers_videos(
    session: AsyncSession, viewer: GraphQLClient, mine: Objects, theirs: Objects
) -> None:
    second = await make_video(session, mine.user, title="Tides")
    await make_video(session, theirs.user)
    connection = (await viewer.execute(VIDEOS)).ok()["videos"]
    assert _ids(connection) == {to_global_id("Video", v.id) for v in (mine.video, second)}
    assert connection["totalCount"] == 2


async def test_viewer_videos_lists_only_the_viewers_videos(
    viewer: GraphQLClient, mine: Objects, theirs: Objects
) -> None:
    connection = (await viewer.execute(VIEWER_VIDEOS)).ok()["viewer"]["videos"]
    assert _ids(connection) == {_global_id(mine, "Video")}
    assert connection["totalCount"] == 1


async def test_voice_profiles_lists_only_the_viewers_profiles(
    viewer: GraphQLClient, mine: Objects, theirs: Objects
) -> None:
    connection = (await viewer.execute(VOICE_PROFILES)).ok()["voiceProfiles"]
    assert _ids(connection) == {_global_id(mine, "VoiceProfile")}
    assert connection["totalCount"] == 1


# --- soft delete ------------------------------------------------------------------------------


@pytest.mark.parametrize("query", [VIDEO, NODE], ids=["video", "node"])
async def test_deleted_video_is_not_found_like_a_missing_id(
    session: AsyncSession, viewer: GraphQLClient, mine: Objects, query: str
) -> None:
    await _soft_delete(session, mine.video)
    await _assert_hidden(viewer, query, _global_id(mine, "Video"), "Video")


@pytest.mark.parametrize("query", [VIDEOS, VIEWER_VIDEOS], ids=["videos", "viewer.videos"])
async def test_deleted_video_is_absent_from_lists_and_total_count(
    session: AsyncSession, viewer: GraphQLClient, mine: Objects, query: str
) -> None:
    kept = await make_video(session, mine.user, title="Kept")
    await _soft_delete(session, mine.video)
    data = (await viewer.execute(query)).ok()
    connection = data["viewer"]["videos"] if "viewer" in data else data["videos"]
    assert _ids(connection) == {to_global_id("Video", kept.id)}
    assert connection["totalCount"] == 1


async def test_deleted_voice_profile_is_not_found_like_a_missing_id(
    session: AsyncSession, viewer: GraphQLClient, mine: Objects
) -> None:
    await _soft_delete(session, mine.profile)
    await _assert_hidden(
        viewer, VOICE_PROFILE_OWNER, _global_id(mine, "VoiceProfile"), "VoiceProfile"
    )


async def test_deleted_voice_profile_is_absent_from_list_and_total_count(
    session: AsyncSession, viewer: GraphQLClient, mine: Objects
) -> None:
    kept = await make_voice_profile(session, mine.user, name="Kept")
    await _soft_delete(session, mine.profile)
    connection = (await viewer.execute(VOICE_PROFILES)).ok()["voiceProfiles"]
    assert _ids(connection) == {to_global_id("VoiceProfile", kept.id)}
    assert connection["totalCount"] == 1


async def test_video_voice_profile_is_null_once_the_profile_is_deleted(
    session: AsyncSession, viewer: GraphQLClient, mine: Objects
) -> None:
    await _soft_delete(session, mine.profile)
    response = await viewer.execute(VIDEO, {"id": _global_id(mine, "Video")})
    assert response.ok()["video"]["voiceProfile"] is None


@pytest.mark.parametrize("query", [GENERATION_JOB, NODE], ids=["generationJob", "node"])
async def test_job_of_a_deleted_video_is_not_found_like_a_missing_id(
    session: AsyncSession, viewer: GraphQLClient, mine: Objects, query: str
) -> None:
    await _soft_delete(session, mine.video)
    await _assert_hidden(viewer, query, _global_id(mine, "GenerationJob"), "GenerationJob")


# --- helpers ----------------------------------------------------------------------------------


async def _assert_hidden(client: GraphQLClient, query: str, global_id: str, type_name: str) -> None:
    """NOT_FOUND with no data, and the same error as for a random id of the same type."""
    hidden = await client.execute(query, {"id": global_id})
    missing_id = to_global_id(type_name, uuid.uuid4())
    missing = await client.execute(query, {"id": missing_id})

    assert hidden.codes == ["NOT_FOUND"], hidden.body
    assert _nulled(hidden)
    assert _shape(hidden.errors[0], global_id) == _shape(missing.errors[0], missing_id)
    assert hidden.status_code == missing.status_code
    assert _nulled(missing)
    assert len(hidden.errors) == len(missing.errors) == 1


def _nulled(response: GraphQLResponse) -> bool:
    """No data beyond the null root field that failed."""
    return response.data is None or all(value is None for value in response.data.values())


def _shape(error: dict[str, Any], global_id: str) -> dict[str, Any]:
    shaped: dict[str, Any] = json.loads(json.dumps(error).replace(global_id, "<id>"))
    return shaped


def _without(error: dict[str, Any], key: str) -> dict[str, Any]:
    return {name: value for name, value in error.items() if name != key}


def _ids(connection: dict[str, Any]) -> set[str]:
    return {edge["node"]["id"] for edge in connection["edges"]}


async def _soft_delete(session: AsyncSession, row: Video | VoiceProfile) -> None:
    row.deleted_at = datetime.now(UTC)
    await session.flush()

"""Error shapes (SPEC §4): expected failures carry ``extensions.code`` (and ``field`` when an
argument is to blame); unexpected ones are masked as INTERNAL and logged with the request id."""

from __future__ import annotations

import base64
import logging
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import issue_access_token
from app.settings import Settings
from db.models import User, Video
from db.queries import videos as video_queries
from schema.relay import to_global_id
from tests.factories import make_job, make_user, make_video, make_voice_profile
from tests.support.graphql import GraphQLClient

VIDEOS_PAGE = """
query ($first: Int, $after: String, $last: Int, $before: String, $orderBy: VideoOrder) {
  videos(first: $first, after: $after, last: $last, before: $before, orderBy: $orderBy) {
    edges { node { id } }
    pageInfo { endCursor }
  }
}
"""
VIDEO = "query ($id: ID!) { video(id: $id) { id title } }"


@pytest.fixture
async def user(session: AsyncSession) -> User:
    user = await make_user(session)
    await make_video(session, user, title="Alpha")
    await make_video(session, user, title="Beta")
    await make_video(session, user, title="Gamma")
    return user


@pytest.fixture
def viewer(graphql: GraphQLClient, user: User) -> GraphQLClient:
    return graphql.as_user(user.id)


# --- documents --------------------------------------------------------------------------------


async def test_unknown_field_is_bad_user_input(viewer: GraphQLClient) -> None:
    response = await viewer.execute("{ videos { totalCount shoeSize } }")
    assert response.data is None
    assert response.codes == ["BAD_USER_INPUT"]


async def test_parse_error_is_bad_user_input(viewer: GraphQLClient) -> None:
    response = await viewer.execute("{ videos { totalCount }")
    assert response.data is None
    assert response.codes == ["BAD_USER_INPUT"], response.errors


# --- connection arguments ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"first": -1}, "first"),
        ({"first": 101}, "first"),
        ({"last": -1}, "last"),
        ({"last": 101}, "last"),
        ({"first": 1, "last": 1}, "last"),
        ({"after": "a", "before": "b"}, "before"),
    ],
    ids=[
        "first-negative",
        "first-over-100",
        "last-negative",
        "last-over-100",
        "first-and-last",
        "after-and-before",
    ],
)
async def test_bad_connection_arguments_are_bad_user_input(
    viewer: GraphQLClient, variables: dict[str, Any], field: str
) -> None:
    response = await viewer.execute(VIDEOS_PAGE, variables)
    assert response.data is None
    assert response.codes == ["BAD_USER_INPUT"]
    assert response.errors[0]["extensions"]["field"] == field


async def test_page_of_100_is_allowed(viewer: GraphQLClient) -> None:
    response = await viewer.execute(VIDEOS_PAGE, {"first": 100})
    assert len(response.ok()["videos"]["edges"]) == 3


async def test_tampered_cursor_is_bad_user_input(viewer: GraphQLClient) -> None:
    cursor = await _end_cursor(viewer, {"first": 1})
    middle = len(cursor) // 2
    flipped = cursor[:middle] + ("B" if cursor[middle] == "A" else "A") + cursor[middle + 1 :]
    response = await viewer.execute(VIDEOS_PAGE, {"first": 1, "after": flipped})
    assert response.codes == ["BAD_USER_INPUT"]
    assert response.errors[0]["extensions"]["field"] == "after"


@pytest.mark.parametrize(
    ("issued_for", "used_with"),
    [
        ({"field": "TITLE"}, None),
        ({"field": "TITLE", "direction": "ASC"}, {"field": "TITLE", "direction": "DESC"}),
        (None, {"field": "UPDATED_AT"}),
    ],
    ids=["title-to-created-at", "title-asc-to-title-desc", "created-at-to-updated-at"],
)
async def test_cursor_of_another_ordering_is_bad_user_input(
    viewer: GraphQLClient, issued_for: dict[str, str] | None, used_with: dict[str, str] | None
) -> None:
    cursor = await _end_cursor(viewer, {"first": 1, "orderBy": issued_for})
    response = await viewer.execute(
        VIDEOS_PAGE, {"first": 1, "after": cursor, "orderBy": used_with}
    )
    assert response.codes == ["BAD_USER_INPUT"]
    assert response.errors[0]["extensions"]["field"] == "after"


async def test_cursor_of_another_list_is_bad_user_input(viewer: GraphQLClient) -> None:
    cursor = await _end_cursor(viewer, {"first": 1})
    response = await viewer.execute(
        "query ($after: String) { voiceProfiles(first: 1, after: $after) { totalCount } }",
        {"after": cursor},
    )
    assert response.codes == ["BAD_USER_INPUT"]
    assert response.errors[0]["extensions"]["field"] == "after"


@pytest.mark.parametrize(
    "cursor", ["garbage", "", "====", "eyJvcmRlcmluZyI6IngifQ", "\u2603", "A" * 5000]
)
@pytest.mark.parametrize("argument", ["after", "before"])
async def test_garbage_cursor_is_bad_user_input(
    viewer: GraphQLClient, argument: str, cursor: str
) -> None:
    response = await viewer.execute(VIDEOS_PAGE, {argument: cursor})
    assert response.codes == ["BAD_USER_INPUT"]
    assert response.errors[0]["extensions"]["field"] == argument


async def test_search_longer_than_200_characters_is_bad_user_input(viewer: GraphQLClient) -> None:
    query = "query ($search: String) { videos(filter: { search: $search }) { totalCount } }"
    assert (await viewer.execute(query, {"search": "a" * 200})).ok()["videos"]["totalCount"] == 0
    response = await viewer.execute(query, {"search": "a" * 201})
    assert response.data is None
    assert response.codes == ["BAD_USER_INPUT"]
    assert response.errors[0]["extensions"]["field"] == "filter.search"


async def test_more_than_100_ids_in_nodes_is_bad_user_input(viewer: GraphQLClient) -> None:
    query = "query ($ids: [ID!]!) { nodes(ids: $ids) { id } }"
    ids = [to_global_id("Video", uuid.uuid4()) for _ in range(101)]
    response = await viewer.execute(query, {"ids": ids})
    assert response.data is None
    assert response.codes == ["BAD_USER_INPUT"]
    assert response.errors[0]["extensions"]["field"] == "ids"
    allowed = await viewer.execute(query, {"ids": ids[:100]})
    assert set(allowed.codes) == {"NOT_FOUND"}


# --- ids ------------------------------------------------------------------------------------

NODE = "query ($id: ID!) { node(id: $id) { id } }"
JOB = "query ($id: ID!) { generationJob(id: $id) { id } }"
MALFORMED_IDS = [
    "not-an-id",
    "",
    base64.urlsafe_b64encode(b"Video:not-a-uuid").decode(),
    "\u00e9t\u00e9",
]


@pytest.mark.parametrize("global_id", MALFORMED_IDS)
@pytest.mark.parametrize("query", [NODE, VIDEO, JOB], ids=["node", "video", "generationJob"])
async def test_malformed_id_is_bad_user_input(
    viewer: GraphQLClient, query: str, global_id: str
) -> None:
    response = await viewer.execute(query, {"id": global_id})
    assert response.codes == ["BAD_USER_INPUT"]
    assert response.errors[0]["extensions"]["field"] == "id"


async def test_malformed_id_in_nodes_is_bad_user_input_at_its_index(
    session: AsyncSession, viewer: GraphQLClient, user: User
) -> None:
    video_id = to_global_id("Video", (await make_video(session, user)).id)
    response = await viewer.execute(
        "query ($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": [video_id, "not-an-id"]}
    )
    assert response.data == {"nodes": [{"id": video_id}, None]}
    assert response.codes == ["BAD_USER_INPUT"]
    assert response.errors[0]["path"] == ["nodes", 1]


@pytest.mark.parametrize(
    ("query", "type_name"),
    [(VIDEO, "GenerationJob"), (VIDEO, "VoiceProfile"), (VIDEO, "User"), (JOB, "Video")],
    ids=["video-with-job-id", "video-with-profile-id", "video-with-user-id", "job-with-video-id"],
)
async def test_id_of_another_type_is_bad_user_input(
    session: AsyncSession, viewer: GraphQLClient, user: User, query: str, type_name: str
) -> None:
    # The viewer's own objects: the id exists, it just names something else.
    video = await make_video(session, user)
    rows = {
        "User": user.id,
        "Video": video.id,
        "GenerationJob": (await make_job(session, video)).id,
        "VoiceProfile": (await make_voice_profile(session, user)).id,
    }
    response = await viewer.execute(query, {"id": to_global_id(type_name, rows[type_name])})
    assert response.data is None or set(response.data.values()) == {None}
    assert response.codes == ["BAD_USER_INPUT"]
    assert response.errors[0]["extensions"]["field"] == "id"


# --- unexpected errors ------------------------------------------------------------------------

SECRET = "secret detail SELECT password_hash FROM users WHERE id = 1"


@pytest.fixture
def broken_video_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    async def fail(*args: object, **kwargs: object) -> object:
        raise RuntimeError(SECRET)

    monkeypatch.setattr(video_queries, "videos_by_ids", fail)


@pytest.mark.usefixtures("broken_video_loader")
async def test_unexpected_error_is_masked_as_internal_with_the_request_id(
    http: httpx.AsyncClient, settings: Settings, user: User
) -> None:
    response = await _post_video(http, settings, user)
    body = response.json()
    assert body["data"] == {"video": None}
    [error] = body["errors"]
    assert error["extensions"] == {
        "code": "INTERNAL",
        "requestId": response.headers["x-request-id"],
    }
    assert "secret" not in response.text
    assert "SELECT" not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text


@pytest.mark.usefixtures("broken_video_loader")
async def test_unexpected_error_is_logged_with_the_request_id_and_traceback(
    http: httpx.AsyncClient, settings: Settings, user: User, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    response = await _post_video(http, settings, user)
    request_id = response.headers["x-request-id"]
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert getattr(record, "request_id", None) == request_id
    assert record.exc_info is not None
    assert record.exc_info[0] is RuntimeError
    assert SECRET in caplog.text
    assert "Traceback" in caplog.text


async def test_a_null_for_a_non_null_field_is_masked_as_internal_and_logged(
    http: httpx.AsyncClient,
    settings: Settings,
    user: User,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """graphql-core's own refusal of what a resolver returned is a server bug, not bad input."""

    async def titleless(session: object, owner_id: uuid.UUID, ids: list[uuid.UUID]) -> object:
        return {video_id: Video(id=video_id, user_id=owner_id, title=None) for video_id in ids}

    monkeypatch.setattr(video_queries, "videos_by_ids", titleless)
    caplog.set_level(logging.ERROR)
    response = await _post_video(http, settings, user)
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "INTERNAL"
    assert "non-nullable" not in response.text
    assert "Cannot return null for non-nullable field" in caplog.text


@pytest.mark.usefixtures("broken_video_loader")
async def test_client_request_id_is_echoed_and_used(
    http: httpx.AsyncClient, settings: Settings, user: User, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    response = await _post_video(http, settings, user, headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert response.json()["errors"][0]["extensions"]["requestId"] == "abc-123"
    assert [getattr(r, "request_id", None) for r in caplog.records] == ["abc-123"]


# --- helpers ----------------------------------------------------------------------------------


async def _end_cursor(client: GraphQLClient, variables: dict[str, Any]) -> str:
    cursor = (await client.execute(VIDEOS_PAGE, variables)).ok()["videos"]["pageInfo"]["endCursor"]
    assert isinstance(cursor, str)
    return cursor


async def _post_video(
    http: httpx.AsyncClient,
    settings: Settings,
    user: User,
    *,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """Asks for a video by id: with `broken_video_loader`, the lookup itself fails."""
    token = issue_access_token(settings, user.id).token
    return await http.post(
        "/graphql",
        json={"query": VIDEO, "variables": {"id": to_global_id("Video", uuid.uuid4())}},
        headers={"Authorization": f"Bearer {token}"} | (headers or {}),
    )

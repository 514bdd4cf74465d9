"""A video's rendered files through the API: signed `mediaUrl`/`posterUrl` that a ``<video>``
element can play and seek in, served only while the video shows them; and the public link of a
video published to this studio."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app import media
from app.settings import Settings
from db import models
from db.models import VideoStatus
from schema.relay import to_global_id
from tests.factories import make_video
from tests.support.graphql import GraphQLClient

PLAYER = (
    "query($id: ID!) { video(id: $id) { mediaUrl posterUrl durationMs captionTracks { url } } }"
)
MP4 = b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 8  # the bytes only need to be served


@pytest.fixture
def app_settings(media_settings: Settings) -> Settings:
    return media_settings


async def rendered_video(
    session: AsyncSession, owner: models.User, media_settings: Settings, run: str = "job.1"
) -> models.Video:
    video = await make_video(session, owner, status=VideoStatus.READY)
    await show_run(session, video, media_settings, run)
    return video


async def show_run(
    session: AsyncSession, video: models.Video, media_settings: Settings, run: str
) -> None:
    folder = f"videos/{video.id}/{run}"
    media.write_file(media_settings, f"{folder}/video.mp4", MP4)
    media.write_file(media_settings, f"{folder}/poster.png", b"\x89PNG\r\n\x1a\n")
    media.write_file(media_settings, f"{folder}/captions/en.vtt", b"WEBVTT\n\n")
    video.media_path, video.poster_path = f"{folder}/video.mp4", f"{folder}/poster.png"
    video.duration_ms = 2500
    video.caption_tracks = [
        {"language": "en", "format": "vtt", "path": f"{folder}/captions/en.vtt"}
    ]
    await session.commit()


async def player(client: GraphQLClient, video: models.Video) -> dict[str, object]:
    data = (await client.execute(PLAYER, {"id": to_global_id("Video", video.id)})).ok()
    found: dict[str, object] = data["video"]
    return found


async def statuses(http: httpx.AsyncClient, *urls: str) -> list[int]:
    """The status of a GET of each URL, without a token (media URLs carry their signature)."""
    return [(await http.get(url)).status_code for url in urls]


async def delete_video(client: GraphQLClient, video: models.Video) -> None:
    gid = to_global_id("Video", video.id)
    await client.execute("mutation($id: ID!) { deleteVideo(id: $id) { deletedId } }", {"id": gid})


@pytest.fixture
def client(graphql: GraphQLClient, owner: models.User) -> GraphQLClient:
    return graphql.as_user(owner.id)


@pytest.fixture
async def video(
    session: AsyncSession, owner: models.User, media_settings: Settings
) -> models.Video:
    """A READY video of `owner`'s, showing the files of its run ``job.1``."""
    return await rendered_video(session, owner, media_settings)


async def test_the_player_fields_are_signed_urls_that_play_and_seek(
    video: models.Video, client: GraphQLClient, http: httpx.AsyncClient
) -> None:
    fields = await player(client, video)
    assert fields["durationMs"] == 2500
    media_url, poster_url = str(fields["mediaUrl"]), str(fields["posterUrl"])
    assert media_url.startswith(f"/media/videos/{video.id}/job.1/video.mp4?expires=")

    whole = await http.get(media_url)
    assert (whole.status_code, whole.content) == (200, MP4)
    assert whole.headers["content-type"] == "video/mp4"
    assert whole.headers["accept-ranges"] == "bytes"
    part = await http.get(media_url, headers={"Range": "bytes=100-199"})
    assert (part.status_code, part.content) == (206, MP4[100:200])
    assert part.headers["content-range"] == f"bytes 100-199/{len(MP4)}"
    poster = await http.get(poster_url)
    assert (poster.status_code, poster.headers["content-type"]) == (200, "image/png")
    assert await statuses(http, media_url.partition("?")[0]) == [403]  # unsigned


async def test_a_video_without_a_render_has_no_player_fields(
    session: AsyncSession, owner: models.User, client: GraphQLClient
) -> None:
    video = await make_video(session, owner)
    await session.commit()
    fields = await player(client, video)
    assert fields == {"mediaUrl": None, "posterUrl": None, "durationMs": None, "captionTracks": []}


async def test_a_deleted_videos_files_stop_being_served_and_come_back_with_a_restore(
    video: models.Video,
    media_settings: Settings,
    client: GraphQLClient,
    http: httpx.AsyncClient,
) -> None:
    fields = await player(client, video)
    urls = [str(fields["mediaUrl"]), str(fields["posterUrl"])]

    await delete_video(client, video)
    assert await statuses(http, *urls) == [404, 404]
    assert media.resolve(media_settings, str(video.media_path)).is_file()  # kept until purged

    await client.execute(
        "mutation($id: ID!) { restoreVideo(id: $id) { video { id } } }",
        {"id": to_global_id("Video", video.id)},
    )
    assert await statuses(http, *urls) == [200, 200]


async def test_files_of_a_replaced_run_or_of_another_video_are_not_served(
    session: AsyncSession,
    owner: models.User,
    video: models.Video,
    media_settings: Settings,
    client: GraphQLClient,
    http: httpx.AsyncClient,
) -> None:
    old = await player(client, video)
    await show_run(session, video, media_settings, "second.1")
    new = await player(client, video)
    assert await statuses(http, str(old["mediaUrl"]), str(new["mediaUrl"])) == [404, 200]

    # A signature for a path under one video that names a file of another is still refused.
    other = await rendered_video(session, owner, media_settings, run="other.1")
    forged = f"videos/{video.id}/../{other.id}/other.1/video.mp4"
    [forged_status] = await statuses(http, media.signed_url(media_settings, forged, viewer_id=None))
    assert forged_status in (403, 404)
    stray = f"videos/{video.id}/job.1/video.mp4"  # still on disk, no longer shown
    stray_url = media.signed_url(media_settings, stray, viewer_id=None)
    assert await statuses(http, stray_url) == [404]


async def test_a_published_video_has_a_public_link_while_it_is_live(
    video: models.Video, client: GraphQLClient, http: httpx.AsyncClient
) -> None:
    link = f"/published/{video.id}.mp4"
    assert await statuses(http, link) == [404]  # not published yet

    publish = """mutation($id: ID!) {
        publishVideo(input: {videoId: $id}) { video { publishedTo { url } } }
    }"""
    published = await client.execute(publish, {"id": to_global_id("Video", video.id)})
    assert published.ok()["publishVideo"]["video"]["publishedTo"] == [{"url": link}]
    served = await http.get(link, headers={"Range": "bytes=0-15"})  # no token, no signature
    assert (served.status_code, served.content) == (206, MP4[:16])
    assert served.headers["content-type"] == "video/mp4"

    await delete_video(client, video)
    others = [f"/published/{uuid.uuid4()}.mp4", "/published/not-an-id.mp4"]
    assert await statuses(http, link, *others) == [404, 404, 404]

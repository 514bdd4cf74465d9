"""``STUDIO_PUBLIC_URL``: every media URL the API returns is absolute under it when it is set (a
client on another origin, a mobile app, an email can use it as it is), and a path when it is not.

The URLs are the player's (``mediaUrl``, ``posterUrl``, caption tracks), a voice profile's
(``sampleUrl``, ``previewUrl``) and the link of a video published to this studio. Signatures cover
the file's path only, so the app behind a proxy that strips the prefix serves them just the same.
"""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.settings import Settings, load_settings
from db import models
from db.models import VideoStatus
from schema.relay import to_global_id
from tests.app.test_video_media import MP4, show_run
from tests.factories import make_video, make_voice_profile
from tests.support.graphql import GraphQLClient

PUBLIC_URL = "https://studio.example.com/studio"

VIDEO = """query($id: ID!) { video(id: $id) {
  mediaUrl posterUrl captionTracks { url } publishedTo { target url }
} }"""
PROFILE = "query($id: ID!) { node(id: $id) { ... on VoiceProfile { sampleUrl previewUrl } } }"
PUBLISH = """mutation($id: ID!) {
  publishVideo(input: {videoId: $id}) { video { publishedTo { target url } } }
}"""


@pytest.fixture(params=[None, f"{PUBLIC_URL}/"], ids=["unset", "set"])
def app_settings(media_settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """The test's media folder, with ``STUDIO_PUBLIC_URL`` unset, or set with a trailing slash
    (which the setting drops)."""
    return load_settings(
        database_url=media_settings.database_url,
        media_dir=media_settings.media_dir,
        public_url=request.param,
    )


def _origin(settings: Settings) -> str:
    """What every media URL starts with before its path: nothing, or the public URL."""
    assert settings.public_url in (None, PUBLIC_URL)
    return settings.public_url or ""


async def test_the_players_urls_and_the_published_link_follow_the_setting(
    session: AsyncSession,
    owner: models.User,
    graphql: GraphQLClient,
    http: httpx.AsyncClient,
    app_settings: Settings,
) -> None:
    video = await make_video(session, owner, status=VideoStatus.READY)
    await show_run(session, video, app_settings, "job.1")
    video.caption_tracks = [
        *video.caption_tracks,
        {"language": "de", "format": "vtt", "url": "/media/old/de.vtt"},  # stored as a URL
    ]
    await session.commit()
    client = graphql.as_user(owner.id)
    gid = to_global_id("Video", video.id)

    published = (await client.execute(PUBLISH, {"id": gid})).ok()["publishVideo"]["video"]
    fields = (await client.execute(VIDEO, {"id": gid})).ok()["video"]

    origin = _origin(app_settings)
    folder = f"{origin}/media/videos/{video.id}/job.1"
    assert fields["mediaUrl"].startswith(f"{folder}/video.mp4?expires=")
    assert fields["posterUrl"].startswith(f"{folder}/poster.png?expires=")
    [english, german] = [track["url"] for track in fields["captionTracks"]]
    assert english.startswith(f"{folder}/captions/en.vtt?expires=")
    assert german == f"{origin}/media/old/de.vtt"
    link = {"target": "local", "url": f"{origin}/published/{video.id}.mp4"}
    assert published["publishedTo"] == fields["publishedTo"] == [link]

    # Behind a proxy that strips the public URL's prefix, the app serves each of them.
    for url in (fields["mediaUrl"], fields["posterUrl"], english, link["url"]):
        response = await http.get(url.removeprefix(origin))
        assert response.status_code == 200, url
    assert (await http.get(link["url"].removeprefix(origin))).content == MP4


async def test_a_voice_profiles_urls_follow_the_setting(
    session: AsyncSession, owner: models.User, graphql: GraphQLClient, app_settings: Settings
) -> None:
    profile = await make_voice_profile(session, owner, sample_path="voice-samples/p/take.wav")
    await session.commit()
    client = graphql.as_user(owner.id)

    gid = to_global_id("VoiceProfile", profile.id)
    fields = (await client.execute(PROFILE, {"id": gid})).ok()["node"]

    origin = _origin(app_settings)
    assert fields["sampleUrl"].startswith(f"{origin}/media/voice-samples/p/take.wav?expires=")
    assert fields["previewUrl"].startswith(f"{origin}/media/voice-previews/{profile.id}/")


def test_a_url_from_elsewhere_is_left_as_it_is(app_settings: Settings) -> None:
    for url in ("https://youtu.be/abc", "//cdn.example.com/a.mp4", ""):
        assert app_settings.public_link(url) == url

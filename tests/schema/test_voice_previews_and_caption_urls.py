"""Synthesized voice previews and caption files, served through freshly signed URLs."""

from __future__ import annotations

import io
import wave

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app import media
from app.pipeline import preview
from app.settings import Settings
from db import models
from schema.relay import to_global_id
from tests.factories import make_video, make_voice_profile
from tests.support.graphql import GraphQLClient

CREATE = """
mutation Create($input: CreateVoiceProfileInput!) {
  createVoiceProfile(input: $input) { voiceProfile { id previewUrl } }
}
"""
UPDATE = """
mutation Update($input: UpdateVoiceProfileInput!) {
  updateVoiceProfile(input: $input) { voiceProfile { previewUrl } }
}
"""
PREVIEW = "query($id: ID!) { node(id: $id) { ... on VoiceProfile { previewUrl } } }"
TRACKS = "query($id: ID!) { video(id: $id) { captionTracks { language format url } } }"


@pytest.fixture
def app_settings(media_settings: Settings) -> Settings:
    return media_settings


def _previews(media_settings: Settings) -> list[str]:
    root = media_settings.resolved_media_dir
    folder = root / preview.PREVIEWS
    return sorted(str(p.relative_to(root)) for p in folder.rglob("*") if p.is_file())


def _path(url: str) -> str:
    return url.removeprefix(media.URL_PREFIX).split("?", 1)[0]


async def _wav_seconds(response: httpx.Response) -> float:
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(response.content), "rb") as file:
        return file.getnframes() / file.getframerate()


async def test_a_new_profile_has_a_preview_in_its_voice(
    owner: models.User,
    graphql: GraphQLClient,
    http: httpx.AsyncClient,
    media_settings: Settings,
) -> None:
    client = graphql.as_user(owner.id)
    created = await client.execute(CREATE, {"input": {"name": "Ada", "language": "en-GB"}})
    profile = created.ok()["createVoiceProfile"]["voiceProfile"]
    url = profile["previewUrl"]
    assert _previews(media_settings) == [_path(url)]  # made by the mutation
    assert 0.8 < await _wav_seconds(await http.get(url)) < 4  # "Hello, this is Ada."

    # A change of name or language is a new preview; a new description keeps the old one.
    same = await client.execute(UPDATE, {"input": {"id": profile["id"], "description": "Calm"}})
    assert _path(same.ok()["updateVoiceProfile"]["voiceProfile"]["previewUrl"]) == _path(url)
    renamed = await client.execute(UPDATE, {"input": {"id": profile["id"], "name": "Grace"}})
    new_url = renamed.ok()["updateVoiceProfile"]["voiceProfile"]["previewUrl"]
    assert _path(new_url) != _path(url)
    assert sorted(_previews(media_settings)) == sorted([_path(url), _path(new_url)])
    # The old URL is no longer served; fetching the current one removes the old file.
    assert (await http.get(url)).status_code == 404
    assert await _wav_seconds(await http.get(new_url)) > 0.8
    assert _previews(media_settings) == [_path(new_url)]


async def test_a_missing_preview_is_made_when_fetched(
    session: AsyncSession,
    owner: models.User,
    graphql: GraphQLClient,
    http: httpx.AsyncClient,
    media_settings: Settings,
) -> None:
    """A profile from before previews (or whose synthesis failed at the time) gets one."""
    profile = await make_voice_profile(session, owner, name="Old", engine_settings={"rate": 300})
    await session.commit()
    client = graphql.as_user(owner.id)
    result = await client.execute(PREVIEW, {"id": to_global_id("VoiceProfile", profile.id)})
    url = result.ok()["node"]["previewUrl"]
    assert _previews(media_settings) == []
    assert await _wav_seconds(await http.get(url)) > 0.3
    assert _previews(media_settings) == [_path(url)]
    # A preview URL for another path of the profile's folder is refused.
    forged = media.signed_url(
        media_settings, f"{preview.PREVIEWS}/{profile.id}/{'0' * 32}.wav", viewer_id=owner.id
    )
    assert (await http.get(forged)).status_code == 404


@pytest.fixture
def previews_blocked(media_settings: Settings) -> None:
    """A file where the previews folder should be: the media folder cannot take a preview (a
    condition that stops root too, unlike permissions)."""
    root = media_settings.resolved_media_dir
    root.mkdir(parents=True, exist_ok=True)
    (root / preview.PREVIEWS).write_bytes(b"in the way")


async def test_a_preview_that_cannot_be_stored_fails_neither_the_mutation_nor_quietly(
    owner: models.User, graphql: GraphQLClient, http: httpx.AsyncClient, previews_blocked: None
) -> None:
    """The profile is created without its preview (made on first fetch, as after a failed
    synthesis); the fetch says the storage is the trouble: 503, not a 404 or a 500."""
    created = await graphql.as_user(owner.id).execute(CREATE, {"input": {"name": "Ada"}})
    url = created.ok()["createVoiceProfile"]["voiceProfile"]["previewUrl"]
    response = await http.get(url)
    assert response.status_code == 503
    assert response.json() == {"error": "The studio's media storage is not writable."}


async def test_caption_tracks_get_a_fresh_signed_url_for_their_stored_file(
    session: AsyncSession,
    owner: models.User,
    graphql: GraphQLClient,
    http: httpx.AsyncClient,
    media_settings: Settings,
) -> None:
    vtt = "WEBVTT\n\n00:00:00.000 --> 00:00:01.200\nHow solar panels work\n\n"
    legacy = "data:text/plain;charset=utf-8;base64,MQo="
    video = await make_video(session, owner)
    path = f"videos/{video.id}/run.1/captions/en.vtt"
    media.write_file(media_settings, path, vtt.encode())
    video.caption_tracks = [
        {"language": "en", "format": "vtt", "path": path},
        {"language": "en", "format": "srt", "url": legacy},  # stored by the old stage
    ]
    await session.commit()
    client = graphql.as_user(owner.id)
    tracks = (await client.execute(TRACKS, {"id": to_global_id("Video", video.id)})).ok()
    (stored, old) = tracks["video"]["captionTracks"]
    assert (stored["language"], stored["format"]) == ("en", "vtt")
    assert stored["url"].startswith(f"/media/{path}?expires=")
    assert old == {"language": "en", "format": "srt", "url": legacy}

    served = await http.get(stored["url"])
    assert served.status_code == 200
    assert served.text == vtt
    assert served.headers["content-type"].startswith("text/vtt")
    assert (await http.get(f"/media/{path}")).status_code == 403  # unsigned

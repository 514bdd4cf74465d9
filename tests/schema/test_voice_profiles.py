"""Voice profile mutations with sample uploads (SPEC §4, §5 Uploads, Ownership, Audit).

Uploads go through the GraphQL multipart request spec exactly as a client sends them
(``operations``, ``map``, then the file parts) with ``Apollo-Require-Preflight``. A rejected
request leaves the database (profiles and audit records) and the media folder exactly as they
were; a stored sample is served through a signed URL that an ``<audio>`` element can play.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import media
from app.auth import issue_access_token
from app.settings import Settings, load_settings
from db import models
from db.models import AuditEvent, VoiceProfile
from db.queries import voice_profiles
from schema.relay import to_global_id
from tests.app.test_audio import HTML, PNG, encoded, wav_bytes
from tests.factories import make_user, make_video, make_voice_profile
from tests.support.graphql import GraphQLClient, GraphQLResponse

BODY_LIMIT = 16 * 1024
UPLOAD_LIMIT = 64 * 1024
SAMPLE = wav_bytes(frames=10_000)  # 20 kB of 16-bit mono: over BODY_LIMIT, within UPLOAD_LIMIT

CREATE = """
mutation Create($input: CreateVoiceProfileInput!) {
  createVoiceProfile(input: $input) {
    voiceProfile { id name description language sampleUrl previewUrl owner { id } }
  }
}
"""
UPDATE = """
mutation Update($input: UpdateVoiceProfileInput!) {
  updateVoiceProfile(input: $input) { voiceProfile { id name description language } }
}
"""
DELETE = "mutation Delete($id: ID!) { deleteVoiceProfile(id: $id) { deletedId } }"


# --- fixtures: an app with its own media folder and small limits -------------------------------


@pytest.fixture
def app_settings(media_settings: Settings) -> Settings:
    return load_settings(
        database_url=media_settings.database_url,
        media_dir=media_settings.media_dir,
        max_body_bytes=BODY_LIMIT,
        max_upload_bytes=UPLOAD_LIMIT,
    )


@pytest.fixture
def media_dir(media_settings: Settings) -> Path:
    return media_settings.resolved_media_dir


@dataclass
class Uploader:
    """Posts a multipart request the way an upload client does."""

    http: httpx.AsyncClient
    settings: Settings

    async def create(
        self,
        user: models.User | None,
        sample: tuple[str, bytes, str] | None,
        **fields: Any,
    ) -> GraphQLResponse:
        variables = {"input": {"name": "Narrator"} | fields | {"sample": None}}
        operations = {"query": CREATE, "variables": variables}
        headers = {"Apollo-Require-Preflight": "true"}
        if user is not None:
            headers["Authorization"] = f"Bearer {issue_access_token(self.settings, user.id).token}"
        file_map = {"0": ["variables.input.sample"]} if sample is not None else {}
        parts: list[tuple[str, tuple[str | None, bytes | str, str | None]]] = [
            ("operations", (None, json.dumps(operations), None)),
            ("map", (None, json.dumps(file_map), None)),
        ]
        if sample is not None:
            parts.append(("0", sample))
        response = await self.http.post("/graphql", files=parts, headers=headers)
        body = response.json() if response.headers["content-type"] == "application/json" else {}
        return GraphQLResponse(response.status_code, body)


@pytest.fixture
def uploader(http: httpx.AsyncClient, media_settings: Settings) -> Uploader:
    return Uploader(http, media_settings)


@dataclass(frozen=True)
class Snapshot:
    profiles: int
    events: int
    files: tuple[str, ...]


async def _snapshot(session: AsyncSession, media_dir: Path) -> Snapshot:
    profiles = await session.scalar(select(func.count()).select_from(VoiceProfile))
    events = await session.scalar(select(func.count()).select_from(AuditEvent))
    return Snapshot(int(profiles or 0), int(events or 0), _files(media_dir))


def _files(folder: Path) -> tuple[str, ...]:
    """Every file below ``folder``, as relative paths."""
    return tuple(
        sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())
    )


def _samples(files: tuple[str, ...]) -> list[str]:
    """The uploaded samples among ``files`` (a profile also has a synthesized preview)."""
    return [file for file in files if _kind(file) == media.VOICE_SAMPLES]


def _kind(file: str) -> str:
    return file.split("/", 1)[0]


def _folders(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_dir())


def _sample_path(profile_id: Any) -> str:
    return rf"voice-samples/{profile_id}/[0-9a-f]{{32}}"


# --- creating, with and without a sample -------------------------------------------------------


async def test_create_without_a_sample(
    session: AsyncSession, owner: models.User, uploader: Uploader, media_dir: Path
) -> None:
    response = await uploader.create(
        owner, None, name="  Warm  ", description="A warm voice.", language="en-GB"
    )
    profile = response.ok()["createVoiceProfile"]["voiceProfile"]
    assert profile["name"] == "Warm"
    assert profile["description"] == "A warm voice."
    assert profile["language"] == "en-GB"
    assert profile["sampleUrl"] is None
    assert profile["previewUrl"].startswith("/media/voice-previews/")
    assert profile["owner"]["id"] == to_global_id("User", owner.id)
    snapshot = await _snapshot(session, media_dir)
    assert snapshot.profiles == 1
    assert [_kind(file) for file in snapshot.files] == ["voice-previews"]  # no sample
    actions = (await session.scalars(select(AuditEvent.action))).all()
    assert list(actions) == ["voice_profile.create"]


async def test_create_with_a_sample_stores_it_and_serves_it_through_a_signed_url(
    session: AsyncSession,
    owner: models.User,
    uploader: Uploader,
    http: httpx.AsyncClient,
    media_dir: Path,
) -> None:
    response = await uploader.create(owner, ("take-1.wav", SAMPLE, "audio/wav"))
    profile = response.ok()["createVoiceProfile"]["voiceProfile"]
    row = await session.scalar(select(VoiceProfile))
    assert row is not None
    assert row.sample_path is not None
    assert re.fullmatch(_sample_path(row.id) + r"\.wav", row.sample_path)
    assert _samples((await _snapshot(session, media_dir)).files) == [row.sample_path]
    assert (media_dir / row.sample_path).read_bytes() == SAMPLE

    url = profile["sampleUrl"]
    assert url.startswith("/media/voice-samples/")
    assert "sample_path" not in url
    served = await http.get(url)
    assert served.status_code == 200
    assert served.content == SAMPLE
    assert served.headers["content-type"] == "audio/wav"
    assert served.headers["cache-control"].startswith("private")

    actions = (
        await session.scalars(select(AuditEvent.action).order_by(AuditEvent.created_at))
    ).all()
    assert sorted(actions) == ["voice_profile.create", "voice_profile.sample"]
    sample_event = await session.scalar(
        select(AuditEvent).where(AuditEvent.action == "voice_profile.sample")
    )
    assert sample_event is not None
    assert sample_event.diff == {"sample": [None, "wav"]}  # the format, never the path
    assert sample_event.request_id


async def test_sample_url_is_signed_short_lived_and_ranged(
    session: AsyncSession,
    owner: models.User,
    uploader: Uploader,
    http: httpx.AsyncClient,
    media_settings: Settings,
) -> None:
    response = await uploader.create(owner, ("take-1.wav", SAMPLE, "audio/wav"))
    url = response.ok()["createVoiceProfile"]["voiceProfile"]["sampleUrl"]
    query = {key: value[0] for key, value in parse_qs(urlsplit(url).query).items()}
    assert int(query["expires"]) > time.time() + media_settings.media_url_ttl_seconds - 1

    ranged = await http.get(url, headers={"Range": "bytes=44-143"})
    assert ranged.status_code == 206
    assert ranged.content == SAMPLE[44:144]
    assert ranged.headers["content-range"] == f"bytes 44-143/{len(SAMPLE)}"

    sig = query["sig"]
    tampered = url.replace(sig, ("B" if sig[0] == "A" else "A") + sig[1:])
    assert (await http.get(tampered)).status_code == 403
    row = await session.scalar(select(VoiceProfile))
    assert row is not None
    assert row.sample_path is not None
    expired = media.signed_url(
        media_settings, row.sample_path, viewer_id=owner.id, now=time.time() - 8 * 24 * 3600
    )
    assert (await http.get(expired)).status_code == 403


async def test_the_stored_kind_comes_from_the_bytes_not_the_name(
    session: AsyncSession, owner: models.User, uploader: Uploader, http: httpx.AsyncClient
) -> None:
    response = await uploader.create(owner, ("voice.wav", encoded("-f", "flac"), "audio/wav"))
    url = response.ok()["createVoiceProfile"]["voiceProfile"]["sampleUrl"]
    row = await session.scalar(select(VoiceProfile))
    assert row is not None
    assert row.sample_path is not None
    assert row.sample_path.endswith(".flac")
    assert (await http.get(url)).headers["content-type"] == "audio/flac"


async def test_a_path_like_file_name_is_ignored(
    session: AsyncSession,
    owner: models.User,
    uploader: Uploader,
    media_dir: Path,
    tmp_path: Path,
) -> None:
    response = await uploader.create(owner, ("../../etc/passwd.wav", SAMPLE, "audio/wav"))
    url = response.ok()["createVoiceProfile"]["voiceProfile"]["sampleUrl"]
    assert "passwd" not in url
    row = await session.scalar(select(VoiceProfile))
    assert row is not None
    files = (await _snapshot(session, media_dir)).files
    stored = _samples(files)
    assert len(stored) == 1
    assert re.fullmatch(_sample_path(row.id) + r"\.wav", stored[0])
    # Nothing written beside the media folder.
    assert _files(tmp_path) == tuple(f"media/{file}" for file in files)


async def test_an_upload_larger_than_the_body_limit_but_within_the_upload_limit_is_taken(
    owner: models.User, uploader: Uploader
) -> None:
    big = wav_bytes(frames=(UPLOAD_LIMIT - 100) // 2)
    assert BODY_LIMIT < len(big) <= UPLOAD_LIMIT
    response = await uploader.create(owner, ("big.wav", big, "audio/wav"))
    assert response.ok()["createVoiceProfile"]["voiceProfile"]["sampleUrl"]


# --- rejected uploads change nothing --------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "message"),
    [
        (("sample.wav", PNG, "audio/wav"), "must be a WAV, MP3"),
        (("sample.wav", b"", "audio/wav"), "empty"),
        (("sample.wav", wav_bytes(frames=UPLOAD_LIMIT // 2), "audio/wav"), "limited to"),
        (("../../etc/passwd.wav", b"<html>not audio</html>", "audio/wav"), "must be a WAV"),
        (("sample.wav", SAMPLE[:30], "audio/wav"), "must be a WAV"),
        (("sample.wav", SAMPLE[:36] + HTML, "audio/wav"), "does not decode"),
    ],
    ids=[
        "png-named-wav",
        "zero-bytes",
        "too-big",
        "path-like-and-not-audio",
        "truncated",
        "wav-header-then-html",
    ],
)
async def test_a_rejected_sample_names_the_field_and_leaves_everything_as_it_was(
    session: AsyncSession,
    owner: models.User,
    uploader: Uploader,
    media_dir: Path,
    sample: tuple[str, bytes, str],
    message: str,
) -> None:
    await uploader.create(owner, ("keep.wav", SAMPLE, "audio/wav"))  # something to keep
    before = await _snapshot(session, media_dir)
    response = await uploader.create(owner, sample)
    assert response.codes == ["BAD_USER_INPUT"]
    assert response.errors[0]["extensions"]["field"] == "sample"
    assert message in response.errors[0]["message"]
    assert await _snapshot(session, media_dir) == before


async def test_a_body_over_both_limits_is_413_and_changes_nothing(
    session: AsyncSession, owner: models.User, uploader: Uploader, media_dir: Path
) -> None:
    before = await _snapshot(session, media_dir)
    huge = wav_bytes(frames=BODY_LIMIT + UPLOAD_LIMIT)
    response = await uploader.create(owner, ("huge.wav", huge, "audio/wav"))
    assert response.status_code == 413
    assert response.codes == ["BAD_USER_INPUT"]
    assert await _snapshot(session, media_dir) == before


async def test_a_sample_sent_as_json_is_not_a_file(
    session: AsyncSession, owner: models.User, graphql: GraphQLClient, media_dir: Path
) -> None:
    before = await _snapshot(session, media_dir)
    response = await graphql.as_user(owner.id).execute(
        CREATE, {"input": {"name": "Sneaky", "sample": "../../etc/passwd"}}
    )
    assert response.codes == ["BAD_USER_INPUT"]
    assert response.errors[0]["extensions"]["field"] == "sample"
    assert await _snapshot(session, media_dir) == before


async def test_signed_out_uploads_are_refused_and_store_nothing(
    session: AsyncSession, uploader: Uploader, media_dir: Path
) -> None:
    before = await _snapshot(session, media_dir)
    response = await uploader.create(None, ("take.wav", SAMPLE, "audio/wav"))
    assert response.codes == ["UNAUTHENTICATED"]
    assert await _snapshot(session, media_dir) == before


async def test_a_failure_after_the_file_was_stored_removes_it(
    session: AsyncSession,
    owner: models.User,
    uploader: Uploader,
    media_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The transaction rolls back, and its rollback hook deletes the stored file."""
    stored: list[str] = []

    async def fail_after_storing(session: AsyncSession, *args: Any, **kwargs: Any) -> Any:
        stored.extend(_files(media_dir))
        raise RuntimeError("the database went away")

    before = await _snapshot(session, media_dir)
    monkeypatch.setattr(voice_profiles, "set_sample_path", fail_after_storing)
    response = await uploader.create(owner, ("take.wav", SAMPLE, "audio/wav"))
    assert response.codes == ["INTERNAL"]
    assert len(stored) == 1  # the file was there while the mutation ran
    assert await _snapshot(session, media_dir) == before
    assert _folders(media_dir) == ["voice-samples"]  # no empty profile folder left either


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"description": "x" * 10_001}, "description"),
        ({"language": "english please"}, "language"),
        ({"name": "a\x00b"}, "name"),
        ({"engineSettings": {"voice": "klingon"}}, "engineSettings.voice"),
        ({"engineSettings": {"rate": 1000}}, "engineSettings.rate"),
    ],
)
async def test_invalid_fields_are_named_and_nothing_is_stored(
    session: AsyncSession,
    owner: models.User,
    uploader: Uploader,
    media_dir: Path,
    fields: dict[str, Any],
    field: str,
) -> None:
    before = await _snapshot(session, media_dir)
    response = await uploader.create(owner, ("take.wav", SAMPLE, "audio/wav"), **fields)
    assert response.codes == ["BAD_USER_INPUT"]
    assert response.errors[0]["extensions"]["field"] == field
    assert await _snapshot(session, media_dir) == before


@pytest.fixture
def samples_blocked(media_dir: Path) -> Path:
    """A real condition that holds for root too (tests run as root, for whom permissions do
    not stop a write): a file where the media folder's ``voice-samples`` folder should be."""
    media_dir.mkdir(parents=True, exist_ok=True)
    blocker = media_dir / media.VOICE_SAMPLES
    blocker.write_bytes(b"in the way")
    return blocker


async def test_a_media_folder_that_cannot_take_the_sample_is_said_so_and_changes_nothing(
    session: AsyncSession,
    owner: models.User,
    uploader: Uploader,
    media_dir: Path,
    samples_blocked: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = await _snapshot(session, media_dir)
    caplog.set_level(logging.ERROR, logger="app.media")
    response = await uploader.create(owner, ("take-1.wav", SAMPLE, "audio/wav"))
    assert response.codes == ["INTERNAL"]
    assert response.errors[0]["message"] == "The studio's media storage is not writable."
    assert response.errors[0]["extensions"]["requestId"]
    assert await _snapshot(session, media_dir) == before
    assert f"media storage is not writable: cannot write {samples_blocked}/" in caplog.text


async def test_a_full_media_folder_is_said_so_and_changes_nothing(
    session: AsyncSession,
    owner: models.User,
    uploader: Uploader,
    media_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ENOSPC needs a file system that fills up, which the tests do not have (no tmpfs, no
    loop device): the refusal is made at the OS boundary, where a full disk reports it."""

    def no_space(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    await uploader.create(owner, ("keep.wav", SAMPLE, "audio/wav"))  # the folders exist
    before = await _snapshot(session, media_dir)
    monkeypatch.setattr(os, "fsync", no_space)
    response = await uploader.create(owner, ("take-2.wav", SAMPLE, "audio/wav"))
    assert response.codes == ["INTERNAL"]
    assert response.errors[0]["message"] == "The studio's media storage is full."
    assert await _snapshot(session, media_dir) == before


# --- update and delete, by the owner and by someone else ---------------------------------------


async def test_update_changes_only_what_is_given_and_audits_the_diff(
    session: AsyncSession, owner: models.User, graphql: GraphQLClient
) -> None:
    profile = await make_voice_profile(session, owner, name="Old", description="Kept.")
    await session.commit()
    data = (
        await graphql.as_user(owner.id).execute(
            UPDATE,
            {"input": {"id": to_global_id("VoiceProfile", profile.id), "name": "New"}},
        )
    ).ok()
    assert data["updateVoiceProfile"]["voiceProfile"] == {
        "id": to_global_id("VoiceProfile", profile.id),
        "name": "New",
        "description": "Kept.",
        "language": "en",
    }
    event = await session.scalar(
        select(AuditEvent).where(AuditEvent.action == "voice_profile.update")
    )
    assert event is not None
    assert event.diff == {"name": ["Old", "New"]}
    assert event.object_id == profile.id


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"language": "e"}, "language"),
        ({"description": "x" * 10_001}, "description"),
        ({"id": "not-an-id"}, "id"),
        ({"engineSettings": None}, "engineSettings"),
        ({"engineSettings": {"variant": "nope"}}, "engineSettings.variant"),
    ],
)
async def test_invalid_updates_are_named_and_change_nothing(
    session: AsyncSession,
    owner: models.User,
    graphql: GraphQLClient,
    media_dir: Path,
    change: dict[str, Any],
    field: str,
) -> None:
    profile = await make_voice_profile(session, owner, name="Same")
    await session.commit()
    before = await _snapshot(session, media_dir)
    gid = to_global_id("VoiceProfile", profile.id)
    response = await graphql.as_user(owner.id).execute(UPDATE, {"input": {"id": gid} | change})
    assert response.codes == ["BAD_USER_INPUT"]
    assert response.errors[0]["extensions"]["field"] == field
    await session.refresh(profile)
    assert profile.name == "Same"
    assert await _snapshot(session, media_dir) == before


async def test_someone_elses_profile_cannot_be_changed_or_deleted(
    session: AsyncSession,
    owner: models.User,
    uploader: Uploader,
    graphql: GraphQLClient,
    media_dir: Path,
) -> None:
    created = await uploader.create(owner, ("take.wav", SAMPLE, "audio/wav"), name="Theirs")
    gid = created.ok()["createVoiceProfile"]["voiceProfile"]["id"]
    stranger = await make_user(session)
    await session.commit()
    before = await _snapshot(session, media_dir)
    client = graphql.as_user(stranger.id)
    attempts: list[tuple[str, dict[str, Any]]] = [
        (UPDATE, {"input": {"id": gid, "name": "Mine now"}}),
        (DELETE, {"id": gid}),
        ("query($id: ID!) { node(id: $id) { id } }", {"id": gid}),
    ]
    for query, variables in attempts:
        response = await client.execute(query, variables)
        assert response.codes == ["NOT_FOUND"], query
    assert await _snapshot(session, media_dir) == before
    row = await session.scalar(select(VoiceProfile))
    assert row is not None
    await session.refresh(row)
    assert (row.name, row.deleted_at) == ("Theirs", None)


async def test_delete_hides_the_profile_everywhere(
    session: AsyncSession,
    owner: models.User,
    uploader: Uploader,
    graphql: GraphQLClient,
    http: httpx.AsyncClient,
    media_dir: Path,
) -> None:
    created = await uploader.create(owner, ("take.wav", SAMPLE, "audio/wav"), name="Gone")
    profile = created.ok()["createVoiceProfile"]["voiceProfile"]
    gid, sample_url = profile["id"], profile["sampleUrl"]
    row = await session.scalar(select(VoiceProfile))
    assert row is not None
    video = await make_video(session, owner, voice_profile_id=row.id)
    await session.commit()
    client = graphql.as_user(owner.id)

    deleted = await client.execute(DELETE, {"id": gid})
    assert deleted.ok() == {"deleteVoiceProfile": {"deletedId": gid}}

    lists = (
        await client.execute(
            "{ voiceProfiles { totalCount edges { node { id } } }"
            " viewer { voiceProfiles { totalCount } } }"
        )
    ).ok()
    assert lists["voiceProfiles"] == {"totalCount": 0, "edges": []}
    assert lists["viewer"]["voiceProfiles"]["totalCount"] == 0
    node = await client.execute("query($id: ID!) { node(id: $id) { id } }", {"id": gid})
    assert node.codes == ["NOT_FOUND"]
    nodes = await client.execute("query($id: ID!) { nodes(ids: [$id]) { id } }", {"id": gid})
    assert nodes.codes == ["NOT_FOUND"]
    through_video = await client.execute(
        "query($id: ID!) { video(id: $id) { voiceProfile { id } } }",
        {"id": to_global_id("Video", video.id)},
    )
    assert through_video.ok() == {"video": {"voiceProfile": None}}
    again = await client.execute(DELETE, {"id": gid})
    assert again.codes == ["NOT_FOUND"]
    renamed = await client.execute(UPDATE, {"input": {"id": gid, "name": "Back"}})
    assert renamed.codes == ["NOT_FOUND"]
    # URLs handed out before the delete no longer serve the sample or the preview; the files
    # stay for a restore.
    assert (await http.get(sample_url)).status_code == 404
    assert (await http.get(profile["previewUrl"])).status_code == 404
    assert [_kind(file) for file in (await _snapshot(session, media_dir)).files] == [
        "voice-previews",
        "voice-samples",
    ]

    actions = (await session.scalars(select(AuditEvent.action))).all()
    assert sorted(actions) == [
        "voice_profile.create",
        "voice_profile.delete",
        "voice_profile.sample",
    ]


async def test_delete_needs_a_voice_profile_id(
    session: AsyncSession, owner: models.User, graphql: GraphQLClient
) -> None:
    video = await make_video(session, owner)
    await session.commit()
    response = await graphql.as_user(owner.id).execute(
        DELETE, {"id": to_global_id("Video", video.id)}
    )
    assert response.codes == ["BAD_USER_INPUT"]
    assert response.errors[0]["extensions"]["field"] == "id"

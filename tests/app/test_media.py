"""Stored media and signed media URLs (app/media.py, app/media_routes.py): files stay inside the
media folder under server-chosen names and are written atomically; ``GET /media/…`` serves a
file only for a valid, unexpired signature, privately, with range requests."""

from __future__ import annotations

import base64
import errno
import hashlib
import hmac
import os
import re
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app import media
from app.settings import Settings, load_settings
from tests.factories import make_user, make_voice_profile

# --- a per-test media folder ------------------------------------------------------------------


@pytest.fixture
def app_settings(media_settings: Settings) -> Settings:
    return media_settings


def _files(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


# --- names and paths ----------------------------------------------------------------------


def test_voice_sample_names_are_chosen_by_the_server() -> None:
    profile_id = uuid.uuid4()
    first = media.voice_sample_path(profile_id, "wav")
    second = media.voice_sample_path(profile_id, "wav")
    assert re.fullmatch(rf"voice-samples/{profile_id}/[0-9a-f]{{32}}\.wav", first)
    assert first != second


@pytest.mark.parametrize(
    "relative",
    [
        "",
        "/etc/passwd",
        "../outside.wav",
        "voice-samples/../../outside.wav",
        "voice-samples/..",
        ".",
        "a\x00b",
        "voice-samples\\..\\..\\x",
    ],
)
def test_paths_outside_the_media_folder_are_refused(
    media_settings: Settings, relative: str
) -> None:
    with pytest.raises(media.MediaPathError):
        media.resolve(media_settings, relative)


def test_a_symlink_leading_out_of_the_media_folder_is_refused(
    media_settings: Settings, tmp_path: Path
) -> None:
    root = media_settings.resolved_media_dir
    root.mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("secret")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(media.MediaPathError):
        media.resolve(media_settings, "link.txt")


def test_write_is_atomic_and_leaves_no_temporary_file(media_settings: Settings) -> None:
    root = media_settings.resolved_media_dir
    path = media.voice_sample_path(uuid.uuid4(), "wav")
    stored = media.write_file(media_settings, path, b"RIFF-and-so-on")
    assert stored == (root / path).resolve()
    assert stored.read_bytes() == b"RIFF-and-so-on"
    assert _files(root) == [path]


def test_a_failed_write_leaves_nothing(
    media_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)  # the rename, after the data was written
    with pytest.raises(OSError, match="disk full"):
        media.write_file(media_settings, media.voice_sample_path(uuid.uuid4(), "wav"), b"x")
    assert _files(media_settings.resolved_media_dir) == []


def test_a_media_folder_that_is_not_writable_is_said_so_and_logged_with_the_path(
    tmp_path: Path, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Tests run as root, whom permissions do not stop: the media folder's path leads through a
    file instead, which stops root too (ENOTDIR), a real condition and no simulation."""
    (tmp_path / "not-a-folder").write_bytes(b"")
    blocked = load_settings(
        database_url=settings.database_url, media_dir=tmp_path / "not-a-folder" / "media"
    )
    with pytest.raises(media.StorageUnavailable) as refused:
        media.write_file(blocked, "voice-samples/x/take.wav", b"RIFF")
    assert refused.value.message == "The studio's media storage is not writable."
    assert refused.value.code == "INTERNAL"
    [record] = [r for r in caplog.records if r.name == "app.media"]
    assert record.levelname == "ERROR"
    assert record.getMessage().startswith(
        f"media storage is not writable: cannot write {tmp_path / 'not-a-folder' / 'media'}"
    )


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_media_folder_is_said_so_and_leaves_nothing(
    media_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    code: int,
) -> None:
    """No file system here fills up (no tmpfs, no loop device): the error is raised where a
    full disk reports it, flushing the file's data."""

    def full(descriptor: int) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", full)
    path = media.voice_sample_path(uuid.uuid4(), "wav")
    with pytest.raises(media.StorageUnavailable, match="storage is full"):
        media.write_file(media_settings, path, b"RIFF")
    root = media_settings.resolved_media_dir
    assert _files(root) == []
    assert f"media storage is full: cannot write {(root / path).resolve()}" in caplog.text


def test_delete_removes_the_file_and_its_empty_profile_folder(media_settings: Settings) -> None:
    root = media_settings.resolved_media_dir
    profile_id = uuid.uuid4()
    kept = media.voice_sample_path(uuid.uuid4(), "wav")
    path = media.voice_sample_path(profile_id, "wav")
    media.write_file(media_settings, kept, b"other")
    media.write_file(media_settings, path, b"mine")
    media.delete_file(media_settings, path)
    media.delete_file(media_settings, path)  # gone already is fine
    assert _files(root) == [kept]
    assert not (root / "voice-samples" / str(profile_id)).exists()
    assert (root / "voice-samples").is_dir()


# --- signatures ---------------------------------------------------------------------------

NOW = 1_800_000_030.0  # inside a five-minute step, not on its edge


def _query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def test_signed_url_names_the_path_and_an_expiry_after_the_ttl(settings: Settings) -> None:
    url = media.signed_url(settings, "voice-samples/x/y.wav", viewer_id=None, now=NOW)
    assert urlsplit(url).path == "/media/voice-samples/x/y.wav"
    expires = int(_query(url)["expires"])
    assert (
        NOW + settings.media_url_ttl_seconds
        <= expires
        <= NOW + settings.media_url_ttl_seconds + 300
    )


def test_urls_are_stable_for_a_while_so_browsers_can_cache(settings: Settings) -> None:
    start = media.signed_url(settings, "a/b.wav", viewer_id=None, now=NOW)
    assert media.signed_url(settings, "a/b.wav", viewer_id=None, now=NOW + 60) == start


def test_a_valid_signature_verifies_until_it_expires(settings: Settings) -> None:
    query = _query(media.signed_url(settings, "a/b.wav", viewer_id=uuid.uuid4(), now=NOW))
    expires = int(query["expires"])
    assert media.verify(settings, "a/b.wav", expires=query["expires"], sig=query["sig"], now=NOW)
    assert not media.verify(
        settings, "a/b.wav", expires=query["expires"], sig=query["sig"], now=expires
    )


@pytest.mark.parametrize(
    ("path", "change"),
    [
        ("a/c.wav", {}),
        ("a/b.wav", {"expires": "1900000000"}),
        ("a/b.wav", {"sig": "A" * 43}),
        ("a/b.wav", {"sig": ""}),
        ("a/b.wav", {"expires": ""}),
        ("a/b.wav", {"expires": "-5"}),
        ("a/b.wav", {"expires": "١٨٠٠٠٠٠٠٠٠"}),  # digits, but not ASCII ones
        ("a/b.wav", {"expires": "9" * 5000}),
        ("a/b.wav", {"sig": "é" * 43}),
    ],
)
def test_anything_tampered_does_not_verify(
    settings: Settings, path: str, change: dict[str, str]
) -> None:
    query = _query(media.signed_url(settings, "a/b.wav", viewer_id=None, now=NOW)) | change
    assert not media.verify(settings, path, expires=query["expires"], sig=query["sig"], now=NOW)


def test_the_signing_key_is_derived_not_the_secret_itself(settings: Settings) -> None:
    query = _query(media.signed_url(settings, "a/b.wav", viewer_id=None, now=NOW))
    message = f"a/b.wav\n{query['expires']}".encode()
    with_raw_secret = hmac.new(settings.secret_key.encode(), message, hashlib.sha256).digest()
    assert query["sig"] not in (with_raw_secret.hex(), _b64(with_raw_secret))
    other_key = load_settings(database_url=settings.database_url, secret_key="another " * 5)
    assert not media.verify(
        other_key, "a/b.wav", expires=query["expires"], sig=query["sig"], now=NOW
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# --- the route ----------------------------------------------------------------------------

CONTENT = bytes(range(256)) * 4


@pytest.fixture
def stored(media_settings: Settings) -> str:
    path = "recordings/take-1.wav"  # not a voice sample: served on its signature alone
    media.write_file(media_settings, path, CONTENT)
    return path


async def test_a_signed_url_serves_the_file_privately(
    http: httpx.AsyncClient, media_settings: Settings, stored: str
) -> None:
    response = await http.get(media.signed_url(media_settings, stored, viewer_id=None))
    assert response.status_code == 200
    assert response.content == CONTENT
    assert response.headers["content-type"] == "audio/wav"
    assert response.headers["cache-control"].startswith("private")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["accept-ranges"] == "bytes"


async def test_a_range_request_gets_206_with_that_slice(
    http: httpx.AsyncClient, media_settings: Settings, stored: str
) -> None:
    url = media.signed_url(media_settings, stored, viewer_id=None)
    response = await http.get(url, headers={"Range": "bytes=100-199"})
    assert response.status_code == 206
    assert response.content == CONTENT[100:200]
    assert response.headers["content-range"] == f"bytes 100-199/{len(CONTENT)}"
    tail = await http.get(url, headers={"Range": "bytes=-24"})
    assert tail.status_code == 206
    assert tail.content == CONTENT[-24:]


async def test_tampered_expired_or_missing_signatures_are_403(
    http: httpx.AsyncClient, media_settings: Settings, stored: str
) -> None:
    url = media.signed_url(media_settings, stored, viewer_id=None)
    query = _query(url)
    expired = media.signed_url(
        media_settings, stored, viewer_id=None, now=time.time() - 2 * 24 * 3600
    )
    attempts = [
        url.replace(query["sig"], query["sig"][::-1]),
        url.replace(query["expires"], str(int(query["expires"]) + 3600)),
        url.replace("take-1", "take-2"),
        expired,
        f"/media/{stored}",
        f"/media/{stored}?expires={query['expires']}",
    ]
    for attempt in attempts:
        response = await http.get(attempt)
        assert response.status_code == 403, attempt
        assert response.headers["cache-control"] == "no-store"
        assert CONTENT[:16] not in response.content


async def test_signed_but_missing_or_a_folder_is_404_never_a_listing(
    http: httpx.AsyncClient, media_settings: Settings, stored: str
) -> None:
    for path in ("recordings/take-9.wav", "recordings", "recordings/", "../outside.wav"):
        response = await http.get(media.signed_url(media_settings, path, viewer_id=None))
        assert response.status_code == 404, path
        assert b"take-1" not in response.content


async def test_a_voice_sample_is_served_only_while_its_profile_shows_it(
    http: httpx.AsyncClient, media_settings: Settings, session: AsyncSession
) -> None:
    user = await make_user(session)
    profile = await make_voice_profile(session, user)
    path = media.voice_sample_path(profile.id, "wav")
    media.write_file(media_settings, path, CONTENT)
    url = media.signed_url(media_settings, path, viewer_id=user.id)
    assert (await http.get(url)).status_code == 404  # not (yet) the profile's sample
    profile.sample_path = path
    await session.commit()
    assert (await http.get(url)).status_code == 200
    profile.sample_path = media.voice_sample_path(profile.id, "wav")  # replaced
    await session.commit()
    assert (await http.get(url)).status_code == 404


async def test_media_route_only_answers_get(
    http: httpx.AsyncClient, media_settings: Settings, stored: str
) -> None:
    url = media.signed_url(media_settings, stored, viewer_id=None)
    head = await http.head(url)
    assert head.status_code == 200
    assert head.content == b""
    refused = await http.post(url, headers={"X-Studio-CSRF": "1"})
    assert refused.status_code == 405


@pytest.mark.parametrize(
    "range_header",
    [
        "items=0-1",  # a unit the server does not know: MUST be ignored (RFC 9110 §14.2)
        "bytes",
        "bytes=",
        "bytes=abc",
        "bytes=5-2",  # last before first: an invalid range-spec
        "bytes=1-2-3",
        "bytes=--1",
        "bytes=0-1,x",  # one invalid range-spec: the whole header is invalid
        "bytes=1e3-",
        "bytes=+5-",
        ",".join(["bytes=0-0", *["1-1"] * 100]),  # more ranges than are worth serving
    ],
)
async def test_a_range_header_that_cannot_be_read_is_ignored(
    http: httpx.AsyncClient, media_settings: Settings, stored: str, range_header: str
) -> None:
    """RFC 9110 §14.2: a server ignores a Range with a unit it does not understand, and may
    ignore one that is invalid: the whole file, 200 (Starlette answered 400)."""
    url = media.signed_url(media_settings, stored, viewer_id=None)
    response = await http.get(url, headers={"Range": range_header})
    assert response.status_code == 200
    assert response.content == CONTENT
    assert "content-range" not in response.headers


@pytest.mark.parametrize(
    ("range_header", "first", "last"),
    [
        ("Bytes=100-199", 100, 199),  # the unit is case-insensitive
        (f"bytes={len(CONTENT) + 5}-, 100-199", 100, 199),  # the unsatisfiable one is dropped
        ("bytes=1000-99999999999999999999999999", 1000, len(CONTENT) - 1),
        (f"bytes=-{len(CONTENT) * 2}", 0, len(CONTENT) - 1),
        ("bytes= 10-19 ,", 10, 19),
    ],
)
async def test_the_satisfiable_ranges_are_served(
    http: httpx.AsyncClient,
    media_settings: Settings,
    stored: str,
    range_header: str,
    first: int,
    last: int,
) -> None:
    url = media.signed_url(media_settings, stored, viewer_id=None)
    response = await http.get(url, headers={"Range": range_header})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {first}-{last}/{len(CONTENT)}"
    assert response.content == CONTENT[first : last + 1]


@pytest.mark.parametrize(
    "range_header",
    [f"bytes={len(CONTENT)}-", "bytes=-0", "bytes=99999999999999999999999-", "bytes=2000-3000"],
)
async def test_a_range_entirely_outside_the_file_is_416(
    http: httpx.AsyncClient, media_settings: Settings, stored: str, range_header: str
) -> None:
    url = media.signed_url(media_settings, stored, viewer_id=None)
    response = await http.get(url, headers={"Range": range_header})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(CONTENT)}"


async def test_if_range_that_does_not_match_serves_the_whole_file(
    http: httpx.AsyncClient, media_settings: Settings, stored: str
) -> None:
    """RFC 9110 §13.1.5: a Range whose If-Range validator no longer matches is ignored, even
    one that could not be satisfied."""
    url = media.signed_url(media_settings, stored, viewer_id=None)
    for range_header in ("bytes=0-9", "bytes=5000-"):
        response = await http.get(url, headers={"Range": range_header, "If-Range": '"stale"'})
        assert response.status_code == 200
        assert response.content == CONTENT

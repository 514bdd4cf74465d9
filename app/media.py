"""Stored media files and the signed URLs that serve them (SPEC §5 Uploads).

Files live under ``settings.resolved_media_dir`` with names the server chooses
(``voice-samples/<profile id>/<random hex>.<ext>``); a client-sent file name never reaches the
file system. Every relative path is resolved and checked to stay inside the media folder, so a
stored path that was tampered with (``../``, an absolute path, a symlink leading out) is refused
rather than followed. A write the media folder cannot take (full, read-only) is
`StorageUnavailable`, with a message for people and a log line with the path.

Media URLs are capabilities: ``<audio src>`` sends no ``Authorization`` header, so whoever holds
the URL may fetch the file until it expires. The signature therefore binds exactly what the URL
grants — one path, until one moment — with a key derived from ``STUDIO_SECRET_KEY`` for this
purpose alone (a media signature can never be replayed as a token or a cursor MAC).
"""

from __future__ import annotations

import base64
import errno
import hashlib
import hmac
import logging
import math
import os
import secrets
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import lru_cache
from pathlib import Path, PurePosixPath
from urllib.parse import quote, urlencode

from app.errors import StudioError
from app.settings import Settings

logger = logging.getLogger(__name__)

VOICE_SAMPLES = "voice-samples"
URL_PREFIX = "/media/"

_KEY_LABEL = b"studio-api media url v1"
# Expiry times are rounded up to this step, so a URL stays the same for a while (browsers can
# cache what they fetched) and is valid for between the TTL and the TTL plus one step.
_EXPIRY_STEP_SECONDS = 300


class MediaPathError(ValueError):
    """A relative media path that is malformed or leads outside the media folder."""


# --- names and paths ----------------------------------------------------------------------


def voice_sample_path(profile_id: uuid.UUID, extension: str) -> str:
    """A fresh server-chosen name for a profile's sample (``extension`` from `app.audio`)."""
    if not extension.isalnum():
        raise MediaPathError(f"unexpected extension {extension!r}")
    return f"{VOICE_SAMPLES}/{profile_id}/{secrets.token_hex(16)}.{extension.lower()}"


def resolve(settings: Settings, relative: str) -> Path:
    """The absolute path of a stored file; `MediaPathError` unless it is inside the media root."""
    if not relative or "\x00" in relative or "\\" in relative:
        raise MediaPathError("malformed media path")
    if PurePosixPath(relative).is_absolute():
        raise MediaPathError("media paths are relative to the media folder")
    root = media_root(settings)
    candidate = (root / relative).resolve()
    if candidate == root or not candidate.is_relative_to(root):
        raise MediaPathError("media path leaves the media folder")
    return candidate


def media_root(settings: Settings) -> Path:
    return settings.resolved_media_dir.resolve()


# --- storage that cannot take a file ------------------------------------------------------

STORAGE_FULL = "The studio's media storage is full."
STORAGE_NOT_WRITABLE = "The studio's media storage is not writable."

#: What the media folder's file system says when it cannot take a file: full (or over a
#: quota, or past a file size limit) …
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
#: … or not writable: read-only, no permission, or a file where a folder of the media folder
#: should be.
_NOT_WRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EEXIST})


class StorageUnavailable(StudioError):
    """The media folder cannot take a file: full, or not writable. Not the client's doing,
    hence ``INTERNAL``, but with a message people can act on (an upload answers it, a job fails
    with it); the log line has the path and the system's own words."""

    code = "INTERNAL"


def storage_unavailable(code: int | None, path: Path | str, reason: str) -> StorageUnavailable:
    """The error for a write to ``path`` that failed with ``errno`` ``code``, logged as such;
    `ValueError` for a code that says neither full nor not writable."""
    if code in _FULL:
        state, message = "full", STORAGE_FULL
    elif code in _NOT_WRITABLE:
        state, message = "not writable", STORAGE_NOT_WRITABLE
    else:
        raise ValueError(f"errno {code} says nothing about the storage")
    logger.error("media storage is %s: cannot write %s (%s)", state, path, reason)
    return StorageUnavailable(message)


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Writes to ``path`` in the block: an `OSError` that says the storage is full or not
    writable leaves it as `StorageUnavailable` (logged); any other as it was."""
    try:
        yield
    except OSError as error:
        if error.errno not in _FULL | _NOT_WRITABLE:
            raise
        where = error.filename or path
        raise storage_unavailable(error.errno, where, error.strerror or str(error)) from error


# --- writing and deleting (blocking: call them with asyncio.to_thread) --------------------


def write_file(settings: Settings, relative: str, data: bytes) -> Path:
    """Store ``data`` atomically: readers see the whole file or none of it; `StorageUnavailable`
    when the media folder cannot take it.

    Written to a temporary file in the same folder, flushed to disk, then renamed into place
    (a rename within one file system is atomic); the folder entry is flushed too.
    """
    target = resolve(settings, relative)
    with writing(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(
            dir=target.parent, prefix=".upload-", suffix=".part"
        )
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        _fsync_directory(target.parent)
    return target


def delete_file(settings: Settings, relative: str) -> None:
    """Remove a stored file (gone already is fine) and its folder when that is left empty.

    Only the file's own folder is removed (``voice-samples/<profile id>/``): folders shared with
    other profiles stay, so a concurrent upload never finds its folder gone.
    """
    target = resolve(settings, relative)
    with suppress(FileNotFoundError, NotADirectoryError):  # gone, or its folder never was
        target.unlink()
    parent = target.parent
    if parent != media_root(settings) and parent.parent != media_root(settings):
        with suppress(OSError):  # not empty (another sample), or already gone
            parent.rmdir()


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# --- signed URLs --------------------------------------------------------------------------


def signed_url(
    settings: Settings, path: str, *, viewer_id: uuid.UUID | None, now: float | None = None
) -> str:
    """A URL that serves the media file at ``path`` until it expires (see the module docstring).

    ``viewer_id`` is who the URL is minted for. It is deliberately not part of the signature:
    the fetch carries no credentials to compare it with, so binding it would only look safer.
    Who may receive a URL is decided by whoever mints one (a resolver that has already checked
    ownership).
    """
    expires = expiry(settings, now=now)
    query = urlencode({"expires": expires, "sig": _signature(settings, path, expires)})
    return f"{URL_PREFIX}{quote(path, safe='/')}?{query}"


def expiry(settings: Settings, *, now: float | None = None) -> int:
    """When a URL signed at ``now`` expires (the same for every URL signed within one step)."""
    issued = time.time() if now is None else now
    return _round_up(issued + settings.media_url_ttl_seconds)


def verify(
    settings: Settings,
    path: str,
    *,
    expires: str | None,
    sig: str | None,
    now: float | None = None,
) -> bool:
    """Whether ``sig`` is this server's signature for ``path`` and ``expires`` is still ahead."""
    if not expires or not sig or not _is_timestamp(expires) or not sig.isascii():
        return False
    if not hmac.compare_digest(_signature(settings, path, int(expires)), sig):
        return False
    return int(expires) > (time.time() if now is None else now)


def _is_timestamp(value: str) -> bool:
    return len(value) <= 12 and value.isascii() and value.isdigit()


def _signature(settings: Settings, path: str, expires: int) -> str:
    message = f"{path}\n{expires}".encode()
    digest = hmac.new(media_key(settings.secret_key), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@lru_cache(maxsize=8)  # one key per secret, made once
def media_key(secret_key: str) -> bytes:
    """A key for media URLs only, derived from the secret (HMAC as a PRF, labelled)."""
    return hmac.new(secret_key.encode(), _KEY_LABEL, hashlib.sha256).digest()


def _round_up(moment: float) -> int:
    return math.ceil(moment / _EXPIRY_STEP_SECONDS) * _EXPIRY_STEP_SECONDS

"""``GET /media/{path}``: stored media, for whoever holds a valid signed URL (see `app.media`).

The signature is checked before anything else, so an unsigned request learns nothing about
which files exist (403 either way); a signed one for a file that is gone, for a sample whose
profile was deleted or replaced, or for a video's file that the video no longer shows (deleted,
or replaced by a newer run), is 404. A voice profile's preview is made here if it is
missing (`app.pipeline.preview`). Only regular files are served: never a folder listing.
Range requests (seeking in a ``<video>`` or ``<audio>`` element) are answered by Starlette's
`FileResponse`, with the ``Range`` header read as RFC 9110 says (`app.byte_ranges`).

``GET /published/<video id>.mp4`` serves a video published to this studio to anyone.
"""

from __future__ import annotations

import mimetypes
import time
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from app import byte_ranges, media
from app.audio import MEDIA_TYPES
from app.pipeline import preview, speech
from app.pipeline.run_media import VIDEOS
from app.publishing import PUBLISHED_PREFIX
from app.state import AppState
from db.queries import video_media, voice_profiles

#: Sent with every media answer: private (per-user content; no shared cache keeps it), no
#: sniffing a stored file into something a browser would run.
_SAFE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'",
}


async def serve_media(request: Request) -> Response:
    state = AppState.of(request)
    path: str = request.path_params["path"]
    expires = request.query_params.get("expires")
    if not media.verify(state.settings, path, expires=expires, sig=request.query_params.get("sig")):
        return _error(403, "This media link is invalid or has expired.")
    try:
        file = media.resolve(state.settings, path)
    except media.MediaPathError:
        return _error(404, "No such media.")
    try:
        served = await _still_published(state, path) and await anyio.Path(file).is_file()
    except media.StorageUnavailable as unavailable:  # a missing preview could not be stored
        return _error(503, unavailable.message)
    if not served:
        return _error(404, "No such media.")
    assert expires is not None  # verified above
    max_age = max(0, int(expires) - int(time.time()))
    return await _file_response(
        request, file, _media_type(file.name), f"private, max-age={max_age}"
    )


async def serve_published(request: Request) -> Response:
    """``GET /published/<video id>.mp4``: a video published to this studio, for anyone with the
    link, while the video is live and published (`app.publishing.LocalTarget`)."""
    state = AppState.of(request)
    video_id = _uuid(request.path_params["video_id"])
    if video_id is None:
        return _error(404, "No such video.")
    async with state.sessionmaker() as session:
        path = await video_media.published_media_path(session, video_id)
    if path is None:
        return _error(404, "No such video.")
    file = media.resolve(state.settings, path)
    if not await anyio.Path(file).is_file():
        return _error(404, "No such video.")
    return await _file_response(request, file, "video/mp4", "public, max-age=60")


def media_routes() -> list[Route]:
    return [
        Route("/media/{path:path}", serve_media, methods=["GET"]),
        Route(f"{PUBLISHED_PREFIX}{{video_id}}.mp4", serve_published, methods=["GET"]),
    ]


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def _still_published(state: AppState, path: str) -> bool:
    """Whether the object the file belongs to still shows it (a deleted profile's sample is
    not served, even through a URL handed out before the delete)."""
    parts = PurePosixPath(path).parts
    if parts[0] == preview.PREVIEWS:
        return await _preview_ready(state, path)
    if parts[0] == VIDEOS:
        video_id = _uuid(parts[1]) if len(parts) > 2 else None
        if video_id is None:
            return False
        async with state.sessionmaker() as session:
            return await video_media.media_is_live(session, video_id, path)
    if parts[0] != media.VOICE_SAMPLES:
        return True  # no object to ask: the signature alone decides
    profile_id = _uuid(parts[1]) if len(parts) == 3 else None
    if profile_id is None:
        return False
    async with state.sessionmaker() as session:
        return await voice_profiles.sample_is_live(session, profile_id, path)


async def _preview_ready(state: AppState, path: str) -> bool:
    """Whether ``path`` is the current preview of a live profile; it is made now if missing
    (see `app.pipeline.preview`), and older previews of the profile are removed."""
    profile_id = preview.profile_of(path)
    if profile_id is None:
        return False
    async with state.sessionmaker() as session:
        profile = await voice_profiles.live_profile(session, profile_id)
    if profile is None or preview.preview_path(profile) != path:
        return False
    try:
        await preview.make_preview(state.settings, profile)
    except speech.SpeechError:
        return False
    await preview.prune(state.settings, profile)
    return True


async def _file_response(
    request: Request, file: Path, media_type: str, cache_control: str
) -> Response:
    """The file, whole or the ranges its ``Range`` header asks for, as RFC 9110 reads that
    header (`app.byte_ranges`): ignored when it cannot be read, 416 only when no range fits."""
    stat = await anyio.Path(file).stat()
    try:
        ranges = byte_ranges.satisfiable_ranges(request.headers.get("range"), stat.st_size)
    except byte_ranges.RangeNotSatisfiable:
        # A range that starts at the end: Starlette answers 416 (with `Content-Range: bytes
        # */size`) itself, after `If-Range`, which may still ask for the whole file.
        ranges = [(stat.st_size, stat.st_size)]
    return _RangedFileResponse(
        file,
        byte_ranges.as_header(ranges) if ranges is not None else None,
        media_type=media_type,
        headers={"Cache-Control": cache_control} | _SAFE_HEADERS,
        stat_result=stat,
    )


class _RangedFileResponse(FileResponse):
    """Starlette's file response, reading ``range_header`` instead of the client's ``Range``
    (None: as if the client had sent none)."""

    def __init__(self, path: Path, range_header: str | None, **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        self.range_header = range_header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(name, value) for name, value in scope["headers"] if name != b"range"]
        if self.range_header is not None:
            headers.append((b"range", self.range_header.encode("latin-1")))
        await super().__call__({**scope, "headers": headers}, receive, send)


def _media_type(name: str) -> str:
    extension = PurePosixPath(name).suffix.lstrip(".").lower()
    return MEDIA_TYPES.get(extension) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": message}, status_code=status, headers={"Cache-Control": "no-store"}
    )

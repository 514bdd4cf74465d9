"""The JSON-backed parts of a video (``audio_settings``, ``script``, ``caption_tracks``,
``published_to`` columns), read tolerantly: a missing key takes its default, never an error."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from db.models import DEFAULT_AUDIO_SETTINGS
from schema.context import Info


@strawberry.type(name="AudioSettings")
class AudioSettings:
    speed: float
    pitch: float
    volume: float
    language: str

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> AudioSettings:
        merged = DEFAULT_AUDIO_SETTINGS | (data or {})
        return cls(
            speed=float(merged["speed"]),
            pitch=float(merged["pitch"]),
            volume=float(merged["volume"]),
            language=str(merged["language"]),
        )


@strawberry.type(name="ScriptSegment")
class ScriptSegment:
    index: int
    text: str
    start_ms: int | None
    end_ms: int | None


@strawberry.type(name="Script")
class Script:
    segments: list[ScriptSegment]

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Script | None:
        if data is None:
            return None
        return cls(
            segments=[
                ScriptSegment(
                    index=int(segment.get("index", position)),
                    text=str(segment.get("text", "")),
                    start_ms=segment.get("startMs"),
                    end_ms=segment.get("endMs"),
                )
                for position, segment in enumerate(data.get("segments", []))
            ]
        )


@strawberry.type(name="CaptionTrack")
class CaptionTrack:
    """A stored track carries its media-relative ``path`` and gets a freshly signed URL each
    time it is read (a stored signed URL would expire); an older track carries its ``url``."""

    language: str
    format: str
    path: strawberry.Private[str | None]
    stored_url: strawberry.Private[str | None]

    @strawberry.field
    def url(self, info: Info) -> str:
        if self.path is None:
            return info.context.link(self.stored_url or "")
        return info.context.media_url(self.path) or ""

    @classmethod
    def from_json(cls, data: list[dict[str, Any]] | None) -> list[CaptionTrack]:
        return [
            cls(
                language=str(track["language"]),
                format=str(track["format"]),
                path=str(track["path"]) if "path" in track else None,
                stored_url=str(track["url"]) if "url" in track else None,
            )
            for track in data or []
            if "path" in track or "url" in track
        ]


@strawberry.type(name="Publication")
class Publication:
    """A stored publication keeps the URL its target gave; a path on this studio (the local
    target's ``/published/<id>.mp4``) is made absolute when read, as media URLs are."""

    def _url(self, info: Info) -> str | None:
        return None if self.stored_url is None else info.context.link(self.stored_url)

    target: str
    url: str | None = strawberry.field(resolver=_url)
    published_at: datetime
    stored_url: strawberry.Private[str | None]

    @classmethod
    def from_json(cls, data: list[dict[str, Any]] | None) -> list[Publication]:
        return [
            cls(
                target=str(item["target"]),
                stored_url=item.get("url"),
                published_at=datetime.fromisoformat(str(item["publishedAt"])),
            )
            for item in data or []
        ]

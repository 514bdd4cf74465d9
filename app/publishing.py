"""Where a finished video can be published (``publishVideo(target:)``).

A target is a small class with a name and one method; the registry maps the name a client sends
to the class. A YouTube (or any other) uploader is one more class registered here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from app.errors import BadUserInput


@dataclass(frozen=True)
class Publication:
    target: str
    url: str | None
    published_at: datetime

    def to_json(self) -> dict[str, str | None]:
        return {
            "target": self.target,
            "url": self.url,
            "publishedAt": self.published_at.isoformat(),
        }


class PublishTarget(Protocol):
    name: str

    async def publish(self, video_id: uuid.UUID, media_file: Path) -> Publication:
        """Publish the rendered MP4 at ``media_file``; the publication's URL is where it is
        watched now."""
        ...


class LocalTarget:
    """Publishing on this studio itself: anyone with the link can watch the video, at
    ``/published/<video id>.mp4`` (`app.media_routes`), for as long as it is live. A later
    run's video replaces the one served there."""

    name = "local"

    async def publish(self, video_id: uuid.UUID, media_file: Path) -> Publication:
        return Publication(
            target=self.name, url=published_url(video_id), published_at=datetime.now(UTC)
        )


def published_url(video_id: uuid.UUID) -> str:
    return f"{PUBLISHED_PREFIX}{video_id}.mp4"


PUBLISHED_PREFIX = "/published/"


TARGETS: dict[str, PublishTarget] = {LocalTarget.name: LocalTarget()}


def target_named(name: str) -> PublishTarget:
    target = TARGETS.get(name.strip().lower())
    if target is None:
        known = ", ".join(sorted(TARGETS))
        raise BadUserInput(
            f"Unknown publishing target {name!r}; use one of: {known}.", field="target"
        )
    return target

"""Where a finished video can be published (``publishVideo(target:)``).

A target is a small class with a name and one method; the registry maps the name a client sends
to the class. A YouTube (or any other) uploader is one more class registered here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
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

    async def publish(self, video_id: uuid.UUID, media_url: str | None) -> Publication: ...


class LocalTarget:
    """Publishing on this studio itself: the video is served from its own media URL."""

    name = "local"

    async def publish(self, video_id: uuid.UUID, media_url: str | None) -> Publication:
        return Publication(target=self.name, url=media_url, published_at=datetime.now(UTC))


TARGETS: dict[str, PublishTarget] = {LocalTarget.name: LocalTarget()}


def target_named(name: str) -> PublishTarget:
    target = TARGETS.get(name.strip().lower())
    if target is None:
        known = ", ".join(sorted(TARGETS))
        raise BadUserInput(
            f"Unknown publishing target {name!r}; use one of: {known}.", field="target"
        )
    return target

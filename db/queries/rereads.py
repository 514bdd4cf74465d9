"""Rows read again for many viewers at once: one statement per type, each row owned per key.

The subscriptions of a process re-read the row an event is about (`schema.change_reads`); when
several rows change within a few milliseconds, their re-reads are one statement. Each key is a
(viewer, id) pair, and the ownership test is the one the single-viewer functions make
(`db.queries.jobs.jobs_by_ids`, `db.queries.videos.videos_by_ids`), applied to the pair's own
viewer: a row is returned for a key only when that key's viewer may see it. The answer is keyed
by pair, so nothing read for one viewer is handed to another.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import GenerationJob, Video
from db.queries.arrays import bound_ids
from db.queries.jobs import owned_by
from db.queries.live import live

#: (viewer's user id, row id)
OwnedKey = tuple[uuid.UUID, uuid.UUID]

_KEYS = (
    func.unnest(bound_ids("viewers"), bound_ids("ids"))
    .table_valued("viewer", "id")
    .render_derived(name="keys")
)

_JOBS = (
    select(GenerationJob, _KEYS.c.viewer)
    .join(_KEYS, GenerationJob.id == _KEYS.c.id)
    .where(owned_by(_KEYS.c.viewer))
)
_VIDEOS = (
    select(Video, _KEYS.c.viewer)
    .join(_KEYS, Video.id == _KEYS.c.id)
    .where(Video.user_id == _KEYS.c.viewer, live(Video))
)


async def jobs_by_owned_ids(
    session: AsyncSession, keys: Sequence[OwnedKey]
) -> dict[OwnedKey, GenerationJob]:
    """The jobs each key's viewer owns (through a live video); others are absent."""
    result = await session.execute(_JOBS, _parameters(keys))
    return {(viewer, job.id): job for job, viewer in result}


async def videos_by_owned_ids(
    session: AsyncSession, keys: Sequence[OwnedKey]
) -> dict[OwnedKey, Video]:
    """The live videos each key's viewer owns; others' and deleted ones are absent."""
    result = await session.execute(_VIDEOS, _parameters(keys))
    return {(viewer, video.id): video for video, viewer in result}


def _parameters(keys: Sequence[OwnedKey]) -> dict[str, list[uuid.UUID]]:
    return {"viewers": [viewer for viewer, _ in keys], "ids": [row for _, row in keys]}

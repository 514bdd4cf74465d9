"""Which stored files a video shows: asked before a media file is served."""

from __future__ import annotations

import uuid

from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Video
from db.queries.live import live

LOCAL_TARGET = "local"


async def media_is_live(session: AsyncSession, video_id: uuid.UUID, path: str) -> bool:
    """Whether ``path`` is the MP4, the poster or a caption file of the live video ``video_id``.

    Asked by the media route before it serves a signed ``videos/…`` URL: a deleted video's files
    stop being served at once (they stay on disk until purged, so a restore brings them back),
    and so do the files of a run that a newer run replaced.
    """
    return bool(
        await session.scalar(
            select(
                exists().where(
                    Video.id == video_id,
                    live(Video),
                    or_(
                        Video.media_path == path,
                        Video.poster_path == path,
                        Video.caption_tracks.contains([{"path": path}]),
                    ),
                )
            )
        )
    )


async def published_media_path(session: AsyncSession, video_id: uuid.UUID) -> str | None:
    """The MP4 of ``video_id`` if it is live and published to this studio (target ``local``)."""
    return await session.scalar(
        select(Video.media_path).where(
            Video.id == video_id,
            live(Video),
            Video.media_path.is_not(None),
            Video.published_to.contains([{"target": LOCAL_TARGET}]),
        )
    )

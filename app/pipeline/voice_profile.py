"""The voice profile a video names, as the stages that need it read it (VOICE speaks with it,
SCRIPT paces the script by its rate)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import VoiceProfile
from db.queries.live import live

logger = logging.getLogger(__name__)


async def profile_settings(
    sessionmaker: async_sessionmaker[AsyncSession] | None, profile_id: uuid.UUID | None
) -> tuple[dict[str, Any], str | None]:
    """The live profile's ``engine_settings`` and ``language``; empty without one, without a
    sessionmaker (stage-level tests), or when the profile was deleted since (logged)."""
    if profile_id is None or sessionmaker is None:
        return {}, None
    async with sessionmaker() as session:
        row = (
            await session.execute(
                select(VoiceProfile.engine_settings, VoiceProfile.language).where(
                    VoiceProfile.id == profile_id, live(VoiceProfile)
                )
            )
        ).one_or_none()
    if row is None:
        logger.info("voice profile %s is gone; the video's language picks the voice", profile_id)
        return {}, None
    return dict(row.engine_settings or {}), row.language

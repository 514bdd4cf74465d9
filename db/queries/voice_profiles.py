from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import VoiceProfile
from db.queries.arrays import is_any_of
from db.queries.pagination import Ordering, PageRequest, PageSlice, count_for_parents, fetch_pages

VOICE_PROFILE_ORDERING = Ordering(VoiceProfile.created_at, descending=True)
_LIVE: list[ColumnElement[bool]] = [VoiceProfile.deleted_at.is_(None)]


async def voice_profiles_by_ids(
    session: AsyncSession, owner_id: uuid.UUID, profile_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, VoiceProfile]:
    """The owner's live voice profiles among ``profile_ids``."""
    rows = await session.scalars(
        select(VoiceProfile).where(
            is_any_of(VoiceProfile.id, profile_ids), VoiceProfile.user_id == owner_id, *_LIVE
        )
    )
    return {profile.id: profile for profile in rows}


async def list_for_owners(
    session: AsyncSession, owner_ids: Sequence[uuid.UUID], *, page: PageRequest
) -> dict[uuid.UUID, PageSlice[VoiceProfile]]:
    """Newest first, each owner paged on its own, one statement."""
    return await fetch_pages(
        session,
        VoiceProfile,
        VoiceProfile.user_id,
        owner_ids,
        where=_LIVE,
        ordering=VOICE_PROFILE_ORDERING,
        page=page,
    )


async def count_for_owners(
    session: AsyncSession, owner_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    return await count_for_parents(session, VoiceProfile.user_id, owner_ids, where=_LIVE)

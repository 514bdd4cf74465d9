from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import Uuid, any_, bindparam, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from db.integrity import constraint_errors
from db.models import VoiceProfile
from db.queries.arrays import bound_ids
from db.queries.audit import changes, record_owned_change, transaction_now
from db.queries.live import live
from db.queries.pagination import (
    Ordering,
    PageRequest,
    PageSlice,
    Where,
    count_for_parents,
    fetch_pages,
)

VOICE_PROFILE_ORDERING = Ordering(VoiceProfile.created_at, descending=True)
_LIVE_WHERE = Where.of(live(VoiceProfile))
# Built once, run with their values (`db.queries.statements`).
_VOICE_PROFILES_BY_IDS = select(VoiceProfile).where(
    VoiceProfile.id == any_(bound_ids("ids")),
    VoiceProfile.user_id == bindparam("owner_id", type_=Uuid()),
    live(VoiceProfile),
)


async def voice_profiles_by_ids(
    session: AsyncSession, owner_id: uuid.UUID, profile_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, VoiceProfile]:
    """The owner's live voice profiles among ``profile_ids``."""
    rows = await session.scalars(
        _VOICE_PROFILES_BY_IDS, {"owner_id": owner_id, "ids": list(profile_ids)}
    )
    return {profile.id: profile for profile in rows}


async def list_for_owners(
    session: AsyncSession,
    owner_ids: Sequence[uuid.UUID],
    *,
    page: PageRequest,
    detached: bool = False,
) -> dict[uuid.UUID, PageSlice[VoiceProfile]]:
    """Newest first, each owner paged on its own, one statement (``detached``: see
    `fetch_pages`)."""
    return await fetch_pages(
        session,
        VoiceProfile,
        VoiceProfile.user_id,
        owner_ids,
        where=_LIVE_WHERE,
        ordering=VOICE_PROFILE_ORDERING,
        page=page,
        detached=detached,
    )


async def count_for_owners(
    session: AsyncSession, owner_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    return await count_for_parents(session, VoiceProfile.user_id, owner_ids, where=_LIVE_WHERE)


async def sample_is_live(session: AsyncSession, profile_id: uuid.UUID, sample_path: str) -> bool:
    """Whether ``sample_path`` is the current sample of a live profile.

    Asked by the media route before it serves a signed sample URL, so that a sample stops being
    served the moment its profile is deleted or the sample is replaced. The URL's signature
    already proves the owner received it; the profile id comes from the path.
    """
    return bool(
        await session.scalar(
            select(
                exists().where(
                    VoiceProfile.id == profile_id,
                    VoiceProfile.sample_path == sample_path,
                    live(VoiceProfile),
                )
            )
        )
    )


async def live_profile(session: AsyncSession, profile_id: uuid.UUID) -> VoiceProfile | None:
    """The profile if it is live, whoever owns it: for the media route, which serves a signed
    preview URL (the signature proves the owner received it; the id comes from the path)."""
    return await session.scalar(
        select(VoiceProfile).where(VoiceProfile.id == profile_id, live(VoiceProfile))
    )


# --- writes (each in the caller's transaction, each audited) ------------------------------

_AUDITED_COLUMNS = ("name", "description", "language", "engine_settings", "deleted_at")


async def create_voice_profile(
    session: AsyncSession, owner_id: uuid.UUID, values: Mapping[str, Any], *, request_id: str | None
) -> VoiceProfile:
    profile = VoiceProfile(user_id=owner_id, **values)
    async with constraint_errors(session):
        session.add(profile)
    await _audit(session, profile, "create", request_id, _snapshot(profile))
    return profile


async def update_voice_profile(
    session: AsyncSession,
    owner_id: uuid.UUID,
    profile_id: uuid.UUID,
    values: Mapping[str, Any],
    *,
    engine_settings: Mapping[str, Any] | None = None,
    request_id: str | None,
) -> VoiceProfile:
    """Apply ``values`` under a row lock, so concurrent updates queue rather than overwrite.

    ``engine_settings`` changes single keys of the stored settings, merged under that lock
    (a ``None`` value removes its key); keys it does not name keep their values.
    """
    profile = await _lock_profile(session, owner_id, profile_id)
    before = _snapshot(profile)
    if engine_settings:
        merged = dict(profile.engine_settings or {}) | dict(engine_settings)
        values = {**values, "engine_settings": {k: v for k, v in merged.items() if v is not None}}
    async with constraint_errors(session):
        for key, value in values.items():
            setattr(profile, key, value)
    await _audit(session, profile, "update", request_id, changes(before, _snapshot(profile)))
    return profile


async def delete_voice_profile(
    session: AsyncSession, owner_id: uuid.UUID, profile_id: uuid.UUID, *, request_id: str | None
) -> VoiceProfile:
    """Hide the profile (soft delete). Its stored sample stays, for a restore, but is no longer
    served (see `sample_is_live`); videos that used the voice no longer show it."""
    profile = await _lock_profile(session, owner_id, profile_id)
    profile.deleted_at = await transaction_now(session)
    await session.flush()
    await _audit(session, profile, "delete", request_id, {"deleted_at": [None, profile.deleted_at]})
    return profile


async def set_sample_path(
    session: AsyncSession,
    owner_id: uuid.UUID,
    profile_id: uuid.UUID,
    sample_path: str,
    *,
    request_id: str | None,
) -> VoiceProfile:
    """Point the profile at a newly stored sample; returns the profile (locked).

    The audit diff names the sample's format, never its path (paths are not shown to clients,
    and the trail is).
    """
    profile = await _lock_profile(session, owner_id, profile_id)
    previous, profile.sample_path = profile.sample_path, sample_path
    await session.flush()
    diff = {"sample": [_sample_format(previous), _sample_format(sample_path)]}
    await _audit(session, profile, "sample", request_id, diff)
    return profile


async def _lock_profile(
    session: AsyncSession, owner_id: uuid.UUID, profile_id: uuid.UUID
) -> VoiceProfile:
    profile = await session.scalar(
        select(VoiceProfile)
        .where(VoiceProfile.id == profile_id, VoiceProfile.user_id == owner_id, live(VoiceProfile))
        .with_for_update()
    )
    if profile is None:
        raise NotFound("Voice profile not found.")
    return profile


async def _audit(
    session: AsyncSession,
    profile: VoiceProfile,
    verb: str,
    request_id: str | None,
    diff: Mapping[str, Any],
) -> None:
    await record_owned_change(
        session,
        profile,
        object_type="VoiceProfile",
        action=f"voice_profile.{verb}",
        request_id=request_id,
        diff=diff,
    )


def _snapshot(profile: VoiceProfile) -> dict[str, Any]:
    return {column: getattr(profile, column) for column in _AUDITED_COLUMNS}


def _sample_format(sample_path: str | None) -> str | None:
    return None if sample_path is None else PurePosixPath(sample_path).suffix.lstrip(".")

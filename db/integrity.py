"""Turn constraint violations into the errors clients understand (SPEC §4 codes).

Constraint names are stable (see the naming convention in `db.models.base`), so the mapping is by
name. A violation that is not listed here is a bug, and is re-raised untouched.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import BadUserInput, Conflict, StudioError

_MESSAGES: dict[str, StudioError] = {
    "uq_users_email_lower": Conflict(
        "A user with this email address already exists.", field="email"
    ),
    "uq_users_oauth_provider_oauth_subject": Conflict(
        "This sign-in identity is already linked to another user."
    ),
    "ck_users_email_has_at": BadUserInput("Email must be an address.", field="email"),
    "ck_videos_progress_range": BadUserInput(
        "Progress must be between 0 and 100.", field="progress"
    ),
    "ck_generation_jobs_progress_range": BadUserInput(
        "Progress must be between 0 and 100.", field="progress"
    ),
    "ck_videos_title_not_blank": BadUserInput("Title must not be blank.", field="title"),
    "ck_videos_url_input_has_source_url": BadUserInput(
        "A video made from a URL needs a sourceUrl.", field="sourceUrl"
    ),
    "uq_generation_jobs_active_video_id": Conflict(
        "This video already has a generation job queued or running."
    ),
    "fk_videos_voice_profile_id_voice_profiles": BadUserInput(
        "Voice profile not found.", field="voiceProfileId"
    ),
    "fk_videos_user_id_users": BadUserInput("Owner not found."),
    "fk_voice_profiles_user_id_users": BadUserInput("Owner not found."),
    "fk_generation_jobs_video_id_videos": BadUserInput("Video not found.", field="videoId"),
}


def violated_constraint(error: IntegrityError) -> str | None:
    """The name of the constraint asyncpg reports for a violation."""
    cause = error.orig
    # SQLAlchemy wraps asyncpg's exception; the original is on __cause__.
    original = getattr(cause, "__cause__", None) or cause
    name = getattr(original, "constraint_name", None)
    return name if isinstance(name, str) else None


def translate(error: IntegrityError) -> StudioError | None:
    name = violated_constraint(error)
    known = _MESSAGES.get(name) if name else None
    if known is None:
        return None
    return type(known)(known.message, field=known.field)


@asynccontextmanager
async def constraint_errors(session: AsyncSession) -> AsyncIterator[None]:
    """Flush inside this block to get a `StudioError` for a known constraint violation.

    The session is rolled back to the state before the block (a savepoint), so the caller's
    transaction stays usable and nothing of the failed write remains.
    """
    savepoint = await session.begin_nested()
    try:
        yield
        await session.flush()
    except IntegrityError as exc:
        await savepoint.rollback()
        translated = translate(exc)
        if translated is None:
            raise
        raise translated from exc
    else:
        await savepoint.commit()

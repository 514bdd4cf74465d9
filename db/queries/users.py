from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import User


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    """An active (not deleted) user."""
    return await session.scalar(select(User).where(User.id == user_id, User.deleted_at.is_(None)))


async def get_user_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


async def ensure_user(
    session: AsyncSession, email: str, *, display_name: str | None = None
) -> tuple[User, bool]:
    """The user with this email (any case), created if missing; ``(user, created)``.

    Safe under concurrency: two callers racing on one address get the same row, because the
    insert goes through the case-insensitive unique index with ``ON CONFLICT DO NOTHING``.
    """
    inserted = await session.scalar(
        insert(User)
        .values(email=email.strip(), display_name=display_name)
        .on_conflict_do_nothing(index_elements=[text("lower(email)")])
        .returning(User.id)
    )
    user = await get_user_by_email(session, email)
    assert user is not None  # inserted now or by the conflicting writer, and never removed
    return user, inserted is not None


async def users_by_ids(
    session: AsyncSession, viewer_id: uuid.UUID, user_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, User]:
    """Users a viewer may see among ``user_ids``: only themselves (every object's owner is its
    viewer, SPEC §5 Ownership), and only while active."""
    if viewer_id not in user_ids:
        return {}
    user = await get_user(session, viewer_id)
    return {} if user is None else {user.id: user}

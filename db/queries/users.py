from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import Uuid, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, Unauthenticated
from db.integrity import constraint_errors, violated_constraint
from db.models import User
from db.queries.audit import changes, record_event
from db.queries.live import live

EMAIL_TAKEN = "This email address is already used by another account."
_IDENTITY_CONSTRAINT = "uq_users_oauth_provider_oauth_subject"


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    """An active (not deleted) user."""
    return await session.scalar(_ACTIVE_USER, {"user_id": user_id})


# Built once, run with its value (`db.queries.statements`): every signed-in read asks it.
_ACTIVE_USER = select(User).where(User.id == bindparam("user_id", type_=Uuid()), live(User))


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


async def sign_in_user(
    session: AsyncSession,
    *,
    provider: str,
    subject: str,
    email: str,
    display_name: str | None,
    avatar_url: str | None,
    request_id: str | None,
) -> User:
    """The account of a verified OpenID Connect identity, created on its first sign-in.

    The identity is ``(provider, subject)``; an email address alone never links it to an account
    (anyone can claim an address at some provider), so an address another account uses is a
    `Conflict`. Later sign-ins take the profile (name, picture, address) the token carries; a
    field the token leaves out is kept. Writes the audit event in the caller's transaction.
    """
    profile = {"email": email, "display_name": display_name, "avatar_url": avatar_url}
    user = await _user_by_identity(session, provider, subject)
    if user is None:
        created = await _create_identity_user(session, provider, subject, profile, request_id)
        if created is not None:
            return created
        # A concurrent first sign-in of the same identity committed first: sign in to it.
        user = await _user_by_identity(session, provider, subject)
        assert user is not None
    if user.deleted_at is not None:
        raise Unauthenticated("This account has been deleted.")
    return await _update_identity_user(session, user, profile, request_id)


async def _user_by_identity(session: AsyncSession, provider: str, subject: str) -> User | None:
    # FOR UPDATE: two sign-ins of one person queue instead of overwriting each other's profile.
    return await session.scalar(
        select(User)
        .where(User.oauth_provider == provider, User.oauth_subject == subject)
        .with_for_update()
    )


async def _create_identity_user(
    session: AsyncSession,
    provider: str,
    subject: str,
    profile: dict[str, str | None],
    request_id: str | None,
) -> User | None:
    """The new user, or ``None`` when another transaction created this identity first."""
    email = profile["email"]
    assert email is not None
    if await get_user_by_email(session, email) is not None:
        raise Conflict(EMAIL_TAKEN)
    user = User(oauth_provider=provider, oauth_subject=subject, **profile)
    try:
        async with constraint_errors(session):
            session.add(user)
    except Conflict as error:
        if _violated(error) == _IDENTITY_CONSTRAINT:
            return None
        raise Conflict(EMAIL_TAKEN) from None  # the address was taken since the check above
    await record_event(
        session,
        actor_id=user.id,
        action="user.create",
        object_type="User",
        object_id=user.id,
        request_id=request_id,
        diff={"oauth_provider": provider, **profile},
    )
    return user


async def _update_identity_user(
    session: AsyncSession, user: User, profile: dict[str, str | None], request_id: str | None
) -> User:
    changed = {
        key: value
        for key, value in profile.items()
        if value is not None and value != getattr(user, key)
    }
    email = changed.get("email")
    if email is not None and email.lower() != user.email.lower():
        other = await get_user_by_email(session, email)
        if other is not None and other.id != user.id:
            raise Conflict(EMAIL_TAKEN)
    before = {key: getattr(user, key) for key in changed}
    try:
        async with constraint_errors(session):
            for key, value in changed.items():
                setattr(user, key, value)
    except Conflict:
        raise Conflict(EMAIL_TAKEN) from None  # the address was taken since the check above
    await record_event(
        session,
        actor_id=user.id,
        action="user.sign_in",
        object_type="User",
        object_id=user.id,
        request_id=request_id,
        diff=changes(before, changed),
    )
    return user


def _violated(error: Exception) -> str | None:
    cause = error.__cause__
    return violated_constraint(cause) if isinstance(cause, IntegrityError) else None

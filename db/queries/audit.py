"""The audit trail (SPEC §5 Audit): one row per mutation, written in the mutation's transaction,
so a rolled-back change leaves no record and a committed one always has one."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import AuditEvent
from db.queries.arrays import is_any_of
from db.queries.pagination import (
    Ordering,
    PageRequest,
    PageSlice,
    Where,
    count_for_parents,
    fetch_pages,
)

AUDIT_ORDERING = Ordering(AuditEvent.created_at, descending=True)
_ALL = Where.of()


async def record_event(
    session: AsyncSession,
    *,
    actor_id: uuid.UUID | None,
    action: str,
    object_type: str,
    object_id: uuid.UUID | None,
    request_id: str | None,
    diff: Mapping[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        actor_id=actor_id,
        action=action,
        object_type=object_type,
        object_id=object_id,
        request_id=request_id,
        diff=_jsonable(dict(diff or {})),
        # The wall clock, not the transaction's start: events of one transaction stay ordered.
        created_at=func.clock_timestamp(),
    )
    session.add(event)
    await session.flush()
    return event


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """A compact diff: ``{field: [old, new]}`` for the fields whose value changed."""
    return {
        key: [before.get(key), value] for key, value in after.items() if before.get(key) != value
    }


async def list_for_actors(
    session: AsyncSession,
    actor_ids: Sequence[uuid.UUID],
    *,
    page: PageRequest,
    detached: bool = False,
) -> dict[uuid.UUID, PageSlice[AuditEvent]]:
    """Each actor's own events, newest first (an actor is only ever shown their own;
    ``detached``: see `fetch_pages`)."""
    return await fetch_pages(
        session,
        AuditEvent,
        AuditEvent.actor_id,  # type: ignore[arg-type]
        actor_ids,
        where=_ALL,
        ordering=AUDIT_ORDERING,
        page=page,
        detached=detached,
    )


async def count_for_actors(
    session: AsyncSession, actor_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    return await count_for_parents(session, AuditEvent.actor_id, actor_ids, where=_ALL)  # type: ignore[arg-type]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    return value


async def events_by_ids(
    session: AsyncSession, actor_id: uuid.UUID, event_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, AuditEvent]:
    """The actor's own events among ``event_ids``."""
    rows = await session.scalars(
        select(AuditEvent).where(
            is_any_of(AuditEvent.id, event_ids), AuditEvent.actor_id == actor_id
        )
    )
    return {event.id: event for event in rows}


async def record_owned_change(
    session: AsyncSession,
    row: Any,
    *,
    object_type: str,
    action: str,
    request_id: str | None,
    diff: Mapping[str, Any],
) -> None:
    """Audit a change to an owned row (it has ``id`` and ``user_id``): the owner is the actor."""
    await record_event(
        session,
        actor_id=row.user_id,
        action=action,
        object_type=object_type,
        object_id=row.id,
        request_id=request_id,
        diff=diff,
    )


async def transaction_now(session: AsyncSession) -> datetime:
    """The transaction's clock, the same one the timestamp defaults and the triggers use."""
    now = await session.scalar(select(func.now()))
    assert isinstance(now, datetime)
    return now

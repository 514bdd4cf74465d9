"""What a subscriber re-reads after it may have missed change events (a listener reconnect)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import GenerationJob
from db.queries.jobs import owned_by

RESYNC_LIMIT = 200


async def database_time(session: AsyncSession) -> datetime:
    """The database's clock (``updated_at`` is set by it), to compare with later changes."""
    now: datetime = (await session.execute(select(func.statement_timestamp()))).scalar_one()
    return now


async def jobs_changed_since(
    session: AsyncSession, owner_id: uuid.UUID, since: datetime, *, limit: int = RESYNC_LIMIT
) -> Sequence[GenerationJob]:
    """The owner's jobs created or updated at or after ``since`` (the ``limit`` most recent),
    oldest change first."""
    rows = await session.scalars(
        select(GenerationJob)
        .where(owned_by(owner_id), GenerationJob.updated_at >= since)
        .order_by(GenerationJob.updated_at.desc(), GenerationJob.id.desc())
        .limit(limit)
    )
    return list(reversed(rows.all()))

"""What a subscriber re-reads after it may have missed change events: what changed lately (a
listener reconnect), and the states a row went through (`db.models.state_change`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy import func, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from db.models import GenerationJob, JobStateChange, Video, VideoStateChange
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


#: At most this many missed states are sent at once (a run has a handful per attempt).
HISTORY_LIMIT = 100

_T = TypeVar("_T", GenerationJob, Video)


async def job_states_between(
    session: AsyncSession, job_id: uuid.UUID, after: int, before: int
) -> list[GenerationJob]:
    """The job as it was at each status or stage change with a version in (``after``,
    ``before``), in order: transient rows (never in a session), for a subscriber that has to
    send every status it would otherwise skip."""
    return await _states_between(
        session, GenerationJob, JobStateChange.job_id, job_id, after, before
    )


async def video_states_between(
    session: AsyncSession, video_id: uuid.UUID, after: int, before: int
) -> list[Video]:
    """`job_states_between` for a video's status changes."""
    return await _states_between(session, Video, VideoStateChange.video_id, video_id, after, before)


async def _states_between(
    session: AsyncSession,
    model: type[_T],
    key: InstrumentedAttribute[uuid.UUID],
    row_id: uuid.UUID,
    after: int,
    before: int,
) -> list[_T]:
    """``key``'s history table read back as ``model`` rows (`jsonb_populate_record` gives each
    column its type)."""
    table = model.__table__
    history = key.class_.__tablename__
    columns = ", ".join(f"r.{column.name}" for column in table.c)
    statement = text(
        f"SELECT {columns} FROM {history} h,"  # noqa: S608 - names from the models
        f" jsonb_populate_record(NULL::{model.__tablename__}, h.state) AS r"
        f" WHERE h.{key.key} = :row_id AND h.version > :after AND h.version < :before"
        " ORDER BY h.version DESC LIMIT :limit"
    ).columns(*table.c)
    params = {"row_id": row_id, "after": after, "before": before, "limit": HISTORY_LIMIT}
    rows = (await session.execute(statement, params)).all()
    mapper = inspect(model)
    return [
        model(
            **{
                attribute.key: row._mapping[attribute.columns[0].name]
                for attribute in mapper.column_attrs
            }
        )
        for row in reversed(rows)
    ]

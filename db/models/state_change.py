"""Each committed status (and stage) a job or video went through, as the whole row then.

A subscriber re-reads a row when it is told that the row changed; states that change faster
than it re-reads merge into the newest. Progress may merge, but a status or a stage must not be
skipped (SPEC §5 Live progress: "each change in order"), and a client that reconnects must be
able to catch up. So a trigger (see the migration ``20261203_state_history``) keeps a copy of
the row for every change of its status or stage, keyed by the row's ``version``; progress-only
updates write nothing here. Rows go with their job or video (``ON DELETE CASCADE``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Integer, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base


class _StateChange:
    """What both histories keep: the row's version, the row then, and when."""

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: ``to_jsonb`` of the row at ``version``.
    state: Mapped[dict[str, Any]] = mapped_column(JSONB)
    changed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.statement_timestamp()
    )


class JobStateChange(_StateChange, Base):
    __tablename__ = "job_state_changes"

    job_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("generation_jobs.id", ondelete="CASCADE"),
        primary_key=True,
    )


class VideoStateChange(_StateChange, Base):
    __tablename__ = "video_state_changes"

    video_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("videos.id", ondelete="CASCADE"),
        primary_key=True,
    )

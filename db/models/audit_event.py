from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ForeignKey, Index, Text, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base, Timestamps, UUIDPrimaryKey


class AuditEvent(UUIDPrimaryKey, Timestamps, Base):
    """Who changed what, when, from which request (SPEC §5 Audit). Rows are never updated."""

    __tablename__ = "audit_events"
    __table_args__ = (
        # The actor's own trail, newest first, paged by (created_at, id).
        Index("ix_audit_events_actor_id_created_at_id", "actor_id", "created_at", "id"),
        Index("ix_audit_events_object_id", "object_id"),
    )

    # SET NULL: the trail outlives an account that is removed for good.
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(Text)
    object_type: Mapped[str] = mapped_column(Text)
    object_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    request_id: Mapped[str | None] = mapped_column(Text)
    diff: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))

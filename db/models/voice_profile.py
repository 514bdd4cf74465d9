from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Index, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.models.base import Base, SoftDelete, Timestamps, UUIDPrimaryKey

if TYPE_CHECKING:
    from db.models.user import User
    from db.models.video import Video


class VoiceProfile(UUIDPrimaryKey, Timestamps, SoftDelete, Base):
    __tablename__ = "voice_profiles"
    __table_args__ = (
        # The owner's list, newest first, paged by (created_at, id).
        Index(
            "ix_voice_profiles_user_id_created_at_id",
            "user_id",
            "created_at",
            "id",
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(Text)
    engine_settings: Mapped[dict[str, Any]] = mapped_column(
        JSONB, server_default=text("'{}'::jsonb")
    )
    # Where the uploaded sample is stored, relative to the media folder; never sent to clients.
    sample_path: Mapped[str | None] = mapped_column(Text)

    owner: Mapped[User] = relationship(back_populates="voice_profiles", lazy="raise")
    videos: Mapped[list[Video]] = relationship(back_populates="voice_profile", lazy="raise")

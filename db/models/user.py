from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, Index, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.models.base import Base, SoftDelete, Timestamps, UUIDPrimaryKey

if TYPE_CHECKING:
    from db.models.video import Video
    from db.models.voice_profile import VoiceProfile


class User(UUIDPrimaryKey, Timestamps, SoftDelete, Base):
    __tablename__ = "users"
    __table_args__ = (
        # One account per address whatever its case: Ada@Example.com is ada@example.com.
        Index("uq_users_email_lower", text("lower(email)"), unique=True),
        # A person is identified by their provider's subject, never by email alone.
        UniqueConstraint("oauth_provider", "oauth_subject"),
        CheckConstraint("position('@' in email) > 1", name="email_has_at"),
        CheckConstraint(
            "(oauth_provider IS NULL) = (oauth_subject IS NULL)", name="oauth_identity_complete"
        ),
    )

    email: Mapped[str] = mapped_column(Text)
    display_name: Mapped[str | None] = mapped_column(Text)
    avatar_url: Mapped[str | None] = mapped_column(Text)
    oauth_provider: Mapped[str | None] = mapped_column(Text)
    oauth_subject: Mapped[str | None] = mapped_column(Text)

    videos: Mapped[list[Video]] = relationship(back_populates="owner", lazy="raise")
    voice_profiles: Mapped[list[VoiceProfile]] = relationship(back_populates="owner", lazy="raise")

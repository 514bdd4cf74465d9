from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    CheckConstraint,
    ColumnElement,
    Enum,
    FetchedValue,
    ForeignKey,
    Index,
    Integer,
    SQLColumnExpression,
    Text,
    func,
    literal_column,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.models.base import Base, SoftDelete, Timestamps, UUIDPrimaryKey
from db.models.enums import VideoInputType, VideoStatus

if TYPE_CHECKING:
    from db.models.generation_job import GenerationJob
    from db.models.user import User
    from db.models.voice_profile import VoiceProfile

DEFAULT_AUDIO_SETTINGS: dict[str, Any] = {
    "speed": 1.0,
    "pitch": 1.0,
    "volume": 1.0,
    "language": "en",
}

#: How long a video's narration should last by default, and the range a video may ask for
#: (``targetDurationSeconds``): long enough for a title and a few scenes, short enough for one
#: page's summary.
DEFAULT_TARGET_DURATION_SECONDS = 60
TARGET_DURATION_RANGE = (15, 600)

_LIVE = text("deleted_at IS NULL")


def search_document(
    title: SQLColumnExpression[str], description: SQLColumnExpression[str | None]
) -> ColumnElement[Any]:
    """What `VideoFilter.search` matches: title and description as words.

    Dictionary 'simple' (no language-specific stemming). Queries must build exactly this
    expression for PostgreSQL to use the ``ix_videos_search`` GIN index.
    """
    # Constants as literals, not bound parameters: the planner matches index expressions only
    # against constants.
    empty: ColumnElement[str] = literal_column("''::text")
    space: ColumnElement[str] = literal_column("' '::text")
    return func.to_tsvector(
        literal_column("'simple'::regconfig"),
        func.coalesce(title, empty).op("||")(space).op("||")(func.coalesce(description, empty)),
    )


class Video(UUIDPrimaryKey, Timestamps, SoftDelete, Base):
    __tablename__ = "videos"
    __table_args__ = (
        CheckConstraint("progress BETWEEN 0 AND 100", name="progress_range"),
        CheckConstraint("length(btrim(title)) > 0", name="title_not_blank"),
        CheckConstraint(
            "input_type <> 'URL' OR source_url IS NOT NULL", name="url_input_has_source_url"
        ),
        CheckConstraint("duration_ms IS NULL OR duration_ms >= 0", name="duration_not_negative"),
        CheckConstraint("(media_path IS NULL) = (duration_ms IS NULL)", name="media_has_duration"),
        CheckConstraint("target_duration_seconds BETWEEN 15 AND 600", name="target_duration_range"),
        # One index per keyset order the API pages by (SPEC §5 Pagination): owner first, the
        # order column, then id as the tie-breaker. Deleted rows are never listed.
        Index(
            "ix_videos_user_id_created_at_id", "user_id", "created_at", "id", postgresql_where=_LIVE
        ),
        Index(
            "ix_videos_user_id_updated_at_id", "user_id", "updated_at", "id", postgresql_where=_LIVE
        ),
        Index("ix_videos_user_id_title_id", "user_id", "title", "id", postgresql_where=_LIVE),
        # Written as PostgreSQL prints it back, so that `alembic check` sees no difference.
        Index(
            "ix_videos_search",
            text(
                "to_tsvector('simple'::regconfig, "
                "(COALESCE(title, ''::text) || ' '::text) || COALESCE(description, ''::text))"
            ),
            postgresql_using="gin",
        ),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    voice_profile_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("voice_profiles.id", ondelete="SET NULL"), index=True
    )
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    input_type: Mapped[VideoInputType] = mapped_column(
        Enum(VideoInputType, name="video_input_type")
    )
    source_url: Mapped[str | None] = mapped_column(Text)
    audio_settings: Mapped[dict[str, Any]] = mapped_column(
        JSONB,
        server_default=text(
            """'{"speed": 1.0, "pitch": 1.0, "volume": 1.0, "language": "en"}'::jsonb"""
        ),
    )
    #: How long the SCRIPT stage makes the narration of a page (`TARGET_DURATION_RANGE`).
    target_duration_seconds: Mapped[int] = mapped_column(
        Integer, server_default=text(str(DEFAULT_TARGET_DURATION_SECONDS))
    )
    script: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    caption_tracks: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, server_default=text("'[]'::jsonb")
    )
    published_to: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, server_default=text("'[]'::jsonb")
    )
    status: Mapped[VideoStatus] = mapped_column(
        Enum(VideoStatus, name="video_status"), server_default=VideoStatus.DRAFT.value
    )
    progress: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    error_message: Mapped[str | None] = mapped_column(Text)
    #: The rendered MP4 and its poster image, relative to the media folder (never shown to
    #: clients as paths: the API signs URLs for them), and the MP4's length. Set together by
    #: the job that rendered them; NULL until a render succeeds.
    media_path: Mapped[str | None] = mapped_column(Text)
    poster_path: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    #: Bumped by the database on every change (see GenerationJob.version).
    version: Mapped[int] = mapped_column(
        Integer, server_default=text("1"), server_onupdate=FetchedValue()
    )

    owner: Mapped[User] = relationship(back_populates="videos", lazy="raise")
    voice_profile: Mapped[VoiceProfile | None] = relationship(back_populates="videos", lazy="raise")
    jobs: Mapped[list[GenerationJob]] = relationship(back_populates="video", lazy="raise")

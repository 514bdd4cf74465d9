"""Rendered media on videos: the MP4, its poster image and its duration.

Revision ID: 20261125_video_media
Revises: 20261125_job_events
Create Date: 2026-11-25

Paths are relative to the media folder and never reach clients (the API signs URLs for them).
A video has a duration exactly when it has an MP4.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "20261125_video_media"
down_revision: str | Sequence[str] | None = "20261125_job_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("videos", sa.Column("media_path", sa.Text(), nullable=True))
    op.add_column("videos", sa.Column("poster_path", sa.Text(), nullable=True))
    op.add_column("videos", sa.Column("duration_ms", sa.Integer(), nullable=True))
    op.create_check_constraint(
        "duration_not_negative", "videos", "duration_ms IS NULL OR duration_ms >= 0"
    )
    op.create_check_constraint(
        "media_has_duration", "videos", "(media_path IS NULL) = (duration_ms IS NULL)"
    )


def downgrade() -> None:
    op.drop_constraint("media_has_duration", "videos", type_="check")
    op.drop_constraint("duration_not_negative", "videos", type_="check")
    op.drop_column("videos", "duration_ms")
    op.drop_column("videos", "poster_path")
    op.drop_column("videos", "media_path")

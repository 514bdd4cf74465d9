"""Index for searching videos by the words of their title and description.

Revision ID: 20261125_video_search
Revises: 20261125_initial
Create Date: 2026-11-25

``VideoFilter.search`` matches word prefixes with a ``tsquery``; a GIN index over the same
``to_tsvector('simple', …)`` expression serves it (pg_trgm would allow substring search, but the
embedded PostgreSQL ships without contrib extensions).
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "20261125_video_search"
down_revision: str | Sequence[str] | None = "20261125_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DOCUMENT = (
    "to_tsvector('simple'::regconfig, coalesce(title, '') || ' ' || coalesce(description, ''))"
)


def upgrade() -> None:
    op.create_index(
        "ix_videos_search", "videos", [sa.literal_column(DOCUMENT)], postgresql_using="gin"
    )


def downgrade() -> None:
    op.drop_index("ix_videos_search", table_name="videos")

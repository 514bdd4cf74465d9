"""Rate-limit buckets shared by every API process.

Revision ID: 20261125_rate_limits
Revises: 20261125_video_media
Create Date: 2026-11-25

One row per bucket (``user:<id>:operations``, ``ip:<address>:signIn`` …) holding its GCRA
theoretical arrival time; `db.queries.rate_limits` reads and writes it with one upsert per
operation. UNLOGGED: no WAL for a table written on every request, at the price of an empty table
after a database crash (the limits start afresh) and of not being copied to replicas. No
``updated_at`` trigger: ``tat`` is the only value that changes.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "20261125_rate_limits"
down_revision: str | Sequence[str] | None = "20261125_video_media"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_buckets",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("tat", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_limit_buckets")),
        prefixes=["UNLOGGED"],
    )


def downgrade() -> None:
    op.drop_table("rate_limit_buckets")

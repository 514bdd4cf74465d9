"""How long a video's narration should last: ``videos.target_duration_seconds``.

Revision ID: 20261204_video_target_duration
Revises: 20261204_account_events
Create Date: 2026-12-04

The SCRIPT stage fits a page's summary to it. Existing videos get the default, 60 seconds; the
API accepts 15 to 600 and the database checks the same range.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "20261204_video_target_duration"
down_revision: str | Sequence[str] | None = "20261204_account_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "videos",
        sa.Column(
            "target_duration_seconds", sa.Integer(), server_default=sa.text("60"), nullable=False
        ),
    )
    op.create_check_constraint(
        "target_duration_range", "videos", "target_duration_seconds BETWEEN 15 AND 600"
    )


def downgrade() -> None:
    op.drop_constraint("target_duration_range", "videos", type_="check")
    op.drop_column("videos", "target_duration_seconds")

"""Every status and stage a job or video went through (`db.models.state_change`).

Revision ID: 20261203_state_history
Revises: 20261125_rate_limits
Create Date: 2026-12-03

An AFTER trigger on each table copies the row (``to_jsonb(NEW)``) into its history when it is
inserted and whenever its status (or a job's stage) changes; progress-only updates write
nothing. Like the NOTIFY beside it, the copy commits or rolls back with the change itself, whoever
made it. Existing rows get their current state as their first entry.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "20261203_state_history"
down_revision: str | Sequence[str] | None = "20261125_rate_limits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (history table, its key column, the table it follows, what counts as a state change)
HISTORIES = (
    (
        "job_state_changes",
        "job_id",
        "generation_jobs",
        "NEW.status IS DISTINCT FROM OLD.status OR NEW.stage IS DISTINCT FROM OLD.stage",
    ),
    ("video_state_changes", "video_id", "videos", "NEW.status IS DISTINCT FROM OLD.status"),
)


def upgrade() -> None:
    for history, key, table, changed in HISTORIES:
        op.create_table(
            history,
            sa.Column(key, postgresql.UUID(as_uuid=True), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("state", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
            sa.Column(
                "changed_at",
                sa.DateTime(timezone=True),
                server_default=sa.text("statement_timestamp()"),
                nullable=False,
            ),
            sa.ForeignKeyConstraint(
                [key], [f"{table}.id"], name=op.f(f"fk_{history}_{key}_{table}"), ondelete="CASCADE"
            ),
            sa.PrimaryKeyConstraint(key, "version", name=op.f(f"pk_{history}")),
        )
        op.execute(
            f"""
            CREATE FUNCTION record_{history}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'INSERT' OR {changed} THEN
                    INSERT INTO {history} ({key}, version, state)
                    VALUES (NEW.id, NEW.version, to_jsonb(NEW));
                END IF;
                RETURN NULL;
            END;
            $$
            """
        )
        op.execute(
            f"CREATE TRIGGER {table}_record_state AFTER INSERT OR UPDATE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION record_{history}()"
        )
        op.execute(
            f"INSERT INTO {history} ({key}, version, state) "
            f"SELECT id, version, to_jsonb(t) FROM {table} t"
        )


def downgrade() -> None:
    for history, _, table, _ in HISTORIES:
        op.execute(f"DROP TRIGGER {table}_record_state ON {table}")
        op.execute(f"DROP FUNCTION record_{history}()")
        op.drop_table(history)

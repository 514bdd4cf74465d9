"""Job queue and change events: backoff, versions, and NOTIFY on every job and video change.

Revision ID: 20261125_job_events
Revises: 20261125_video_search
Create Date: 2026-11-25

* ``generation_jobs.available_at``: when a worker may take the job (a retry backs off); the
  claim index now follows it.
* ``version`` on jobs and videos, bumped by a trigger on every update: events carry it, so a
  subscriber can tell a newer state from one it has already sent.
* ``studio_notify_change()``: an AFTER trigger that sends ``NOTIFY studio_events`` with what a
  subscriber needs (ids, owner, status, stage, progress, version). NOTIFY is transactional: a
  change that rolls back sends nothing, a committed one always sends, whoever made it — the API,
  a worker, or a bulk UPDATE.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "20261125_job_events"
down_revision: str | Sequence[str] | None = "20261125_video_search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "studio_events"
TABLES = ("videos", "generation_jobs")


def upgrade() -> None:
    op.add_column(
        "generation_jobs",
        sa.Column(
            "available_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    )
    op.execute("UPDATE generation_jobs SET available_at = queued_at")
    op.drop_index("ix_generation_jobs_claimable", table_name="generation_jobs")
    op.create_index(
        "ix_generation_jobs_claimable",
        "generation_jobs",
        ["available_at", "queued_at"],
        postgresql_where=sa.text("status = 'QUEUED'"),
    )
    for table in TABLES:
        op.add_column(
            table, sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False)
        )

    op.execute(
        """
        CREATE FUNCTION bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.version := OLD.version + 1;
            RETURN NEW;
        END;
        $$
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION studio_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            payload json;
        BEGIN
            IF TG_TABLE_NAME = 'generation_jobs' THEN
                payload := json_build_object(
                    'kind', 'job',
                    'id', NEW.id,
                    'video_id', NEW.video_id,
                    'owner_id', (SELECT user_id FROM videos WHERE id = NEW.video_id),
                    'status', NEW.status,
                    'stage', NEW.stage,
                    'progress', NEW.progress,
                    'version', NEW.version
                );
            ELSE
                payload := json_build_object(
                    'kind', 'video',
                    'id', NEW.id,
                    'owner_id', NEW.user_id,
                    'status', NEW.status,
                    'progress', NEW.progress,
                    'deleted', NEW.deleted_at IS NOT NULL,
                    'version', NEW.version
                );
            END IF;
            PERFORM pg_notify('{CHANNEL}', payload::text);
            RETURN NULL;
        END;
        $$
        """
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_bump_version BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION bump_version()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_notify_change AFTER INSERT OR UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION studio_notify_change()"
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER {table}_notify_change ON {table}")
        op.execute(f"DROP TRIGGER {table}_bump_version ON {table}")
        op.drop_column(table, "version")
    op.execute("DROP FUNCTION studio_notify_change()")
    op.execute("DROP FUNCTION bump_version()")
    op.drop_index("ix_generation_jobs_claimable", table_name="generation_jobs")
    op.create_index(
        "ix_generation_jobs_claimable",
        "generation_jobs",
        ["queued_at"],
        postgresql_where=sa.text("status = 'QUEUED'"),
    )
    op.drop_column("generation_jobs", "available_at")

"""Initial schema: users, voice profiles, videos, generation jobs and the audit trail.

Revision ID: 20261125_initial
Revises:
Create Date: 2026-11-25

Every table has database-generated UUID keys and ``created_at``/``updated_at``; ``updated_at`` is
maintained by one trigger function so that bulk ``UPDATE`` statements keep it right as well as the
ORM does. It takes the statement's time, not the transaction's, so two changes in one transaction
are ordered. Indexes follow the API's keyset orders: owner, order column, id.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "20261125_initial"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("users", "voice_profiles", "videos", "generation_jobs", "audit_events")

video_input_type = postgresql.ENUM("URL", "DESCRIPTION", name="video_input_type", create_type=False)
video_status = postgresql.ENUM(
    "DRAFT",
    "QUEUED",
    "PROCESSING",
    "READY",
    "PUBLISHED",
    "ERROR",
    name="video_status",
    create_type=False,
)
job_status = postgresql.ENUM(
    "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", name="job_status", create_type=False
)
job_stage = postgresql.ENUM(
    "SCRIPT", "VOICE", "CAPTIONS", "RENDER", name="job_stage", create_type=False
)
ENUMS = (video_input_type, video_status, job_status, job_stage)


def _id() -> sa.Column[object]:
    return sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False)


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    ]


def _deleted_at() -> sa.Column[object]:
    return sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True)


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.updated_at := statement_timestamp();
            RETURN NEW;
        END;
        $$
        """
    )
    for enum in ENUMS:
        enum.create(op.get_bind())

    op.create_table(
        "users",
        _id(),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=True),
        sa.Column("avatar_url", sa.Text(), nullable=True),
        sa.Column("oauth_provider", sa.Text(), nullable=True),
        sa.Column("oauth_subject", sa.Text(), nullable=True),
        *_timestamps(),
        _deleted_at(),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint(
            "oauth_provider", "oauth_subject", name="uq_users_oauth_provider_oauth_subject"
        ),
        sa.CheckConstraint("position('@' in email) > 1", name=op.f("ck_users_email_has_at")),
        sa.CheckConstraint(
            "(oauth_provider IS NULL) = (oauth_subject IS NULL)",
            name=op.f("ck_users_oauth_identity_complete"),
        ),
    )
    op.create_index("uq_users_email_lower", "users", [sa.text("lower(email)")], unique=True)

    op.create_table(
        "voice_profiles",
        _id(),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("language", sa.Text(), nullable=True),
        sa.Column(
            "engine_settings",
            postgresql.JSONB(),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("sample_path", sa.Text(), nullable=True),
        *_timestamps(),
        _deleted_at(),
        sa.PrimaryKeyConstraint("id", name="pk_voice_profiles"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_voice_profiles_user_id_users", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_voice_profiles_user_id", "voice_profiles", ["user_id"])
    op.create_index(
        "ix_voice_profiles_user_id_created_at_id",
        "voice_profiles",
        ["user_id", "created_at", "id"],
        postgresql_where=sa.text("deleted_at IS NULL"),
    )

    op.create_table(
        "videos",
        _id(),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("voice_profile_id", sa.Uuid(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("input_type", video_input_type, nullable=False),
        sa.Column("source_url", sa.Text(), nullable=True),
        sa.Column(
            "audio_settings",
            postgresql.JSONB(),
            server_default=sa.text(
                """'{"speed": 1.0, "pitch": 1.0, "volume": 1.0, "language": "en"}'::jsonb"""
            ),
            nullable=False,
        ),
        sa.Column("script", postgresql.JSONB(), nullable=True),
        sa.Column(
            "caption_tracks",
            postgresql.JSONB(),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "published_to",
            postgresql.JSONB(),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("status", video_status, server_default="DRAFT", nullable=False),
        sa.Column("progress", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=True),
        *_timestamps(),
        _deleted_at(),
        sa.PrimaryKeyConstraint("id", name="pk_videos"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_videos_user_id_users", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["voice_profile_id"],
            ["voice_profiles.id"],
            name="fk_videos_voice_profile_id_voice_profiles",
            ondelete="SET NULL",
        ),
        sa.CheckConstraint("progress BETWEEN 0 AND 100", name=op.f("ck_videos_progress_range")),
        sa.CheckConstraint("length(btrim(title)) > 0", name=op.f("ck_videos_title_not_blank")),
        sa.CheckConstraint(
            "input_type <> 'URL' OR source_url IS NOT NULL",
            name=op.f("ck_videos_url_input_has_source_url"),
        ),
    )
    op.create_index("ix_videos_user_id", "videos", ["user_id"])
    op.create_index("ix_videos_voice_profile_id", "videos", ["voice_profile_id"])
    for column in ("created_at", "updated_at", "title"):
        op.create_index(
            f"ix_videos_user_id_{column}_id",
            "videos",
            ["user_id", column, "id"],
            postgresql_where=sa.text("deleted_at IS NULL"),
        )

    op.create_table(
        "generation_jobs",
        _id(),
        sa.Column("video_id", sa.Uuid(), nullable=False),
        sa.Column("status", job_status, server_default="QUEUED", nullable=False),
        sa.Column("stage", job_stage, nullable=True),
        sa.Column("progress", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("attempt", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("max_attempts", sa.Integer(), server_default=sa.text("3"), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.Text(), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "queued_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("execution_time_ms", sa.Integer(), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_generation_jobs"),
        sa.ForeignKeyConstraint(
            ["video_id"],
            ["videos.id"],
            name="fk_generation_jobs_video_id_videos",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "progress BETWEEN 0 AND 100", name=op.f("ck_generation_jobs_progress_range")
        ),
        sa.CheckConstraint(
            "attempt >= 0 AND attempt <= max_attempts",
            name=op.f("ck_generation_jobs_attempt_range"),
        ),
        sa.CheckConstraint(
            "max_attempts >= 1", name=op.f("ck_generation_jobs_max_attempts_positive")
        ),
        sa.CheckConstraint(
            "execution_time_ms IS NULL OR execution_time_ms >= 0",
            name=op.f("ck_generation_jobs_execution_time_non_negative"),
        ),
    )
    # At most one queued or running job per video, whoever races to start one.
    op.create_index(
        "uq_generation_jobs_active_video_id",
        "generation_jobs",
        ["video_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('QUEUED', 'RUNNING')"),
    )
    op.create_index(
        "ix_generation_jobs_video_id_queued_at_id",
        "generation_jobs",
        ["video_id", "queued_at", "id"],
    )
    op.create_index(
        "ix_generation_jobs_claimable",
        "generation_jobs",
        ["queued_at"],
        postgresql_where=sa.text("status = 'QUEUED'"),
    )
    op.create_index(
        "ix_generation_jobs_lease_expires_at",
        "generation_jobs",
        ["lease_expires_at"],
        postgresql_where=sa.text("status = 'RUNNING'"),
    )

    op.create_table(
        "audit_events",
        _id(),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("object_type", sa.Text(), nullable=False),
        sa.Column("object_id", sa.Uuid(), nullable=True),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.Column(
            "diff", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name="fk_audit_events_actor_id_users", ondelete="SET NULL"
        ),
    )
    op.create_index(
        "ix_audit_events_actor_id_created_at_id", "audit_events", ["actor_id", "created_at", "id"]
    )
    op.create_index("ix_audit_events_object_id", "audit_events", ["object_id"])

    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_set_updated_at BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION set_updated_at()"
        )


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)  # drops its indexes and trigger with it
    for enum in reversed(ENUMS):
        enum.drop(op.get_bind())
    op.execute("DROP FUNCTION set_updated_at()")

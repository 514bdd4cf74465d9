from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Enum,
    FetchedValue,
    ForeignKey,
    Index,
    Integer,
    Text,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.models.base import Base, Timestamps, UUIDPrimaryKey
from db.models.enums import JobStage, JobStatus

if TYPE_CHECKING:
    from db.models.video import Video


class GenerationJob(UUIDPrimaryKey, Timestamps, Base):
    """One generation run of a video; the table is also the work queue (no second source)."""

    __tablename__ = "generation_jobs"
    __table_args__ = (
        CheckConstraint("progress BETWEEN 0 AND 100", name="progress_range"),
        CheckConstraint("attempt >= 0 AND attempt <= max_attempts", name="attempt_range"),
        CheckConstraint("max_attempts >= 1", name="max_attempts_positive"),
        CheckConstraint(
            "execution_time_ms IS NULL OR execution_time_ms >= 0",
            name="execution_time_non_negative",
        ),
        # A video has at most one queued or running job: startGeneration's CONFLICT rule holds
        # even for two requests racing on two API processes.
        Index(
            "uq_generation_jobs_active_video_id",
            "video_id",
            unique=True,
            postgresql_where=text("status IN ('QUEUED', 'RUNNING')"),
        ),
        # A video's jobs, newest first, paged by (queued_at, id).
        Index("ix_generation_jobs_video_id_queued_at_id", "video_id", "queued_at", "id"),
        # Workers claim the queued job that has waited longest (retries wait out a backoff) ...
        Index(
            "ix_generation_jobs_claimable",
            "available_at",
            "queued_at",
            postgresql_where=text("status = 'QUEUED'"),
        ),
        # ... and reclaim running jobs whose lease ran out.
        Index(
            "ix_generation_jobs_lease_expires_at",
            "lease_expires_at",
            postgresql_where=text("status = 'RUNNING'"),
        ),
    )

    video_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"))
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, name="job_status"), server_default=JobStatus.QUEUED.value
    )
    stage: Mapped[JobStage | None] = mapped_column(Enum(JobStage, name="job_stage"))
    progress: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    attempt: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    max_attempts: Mapped[int] = mapped_column(Integer, server_default=text("3"))
    error: Mapped[str | None] = mapped_column(Text)
    # Lease: the worker that runs the job, until when, and its last heartbeat.
    lease_owner: Mapped[str | None] = mapped_column(Text)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    queued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    #: When a worker may take the job: now for a new job, later for a retry backing off.
    available_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    execution_time_ms: Mapped[int | None] = mapped_column(Integer)
    #: Bumped by the database on every change (trigger); events carry it, so a subscriber can
    #: tell a newer state from one it has already sent.
    version: Mapped[int] = mapped_column(
        Integer, server_default=text("1"), server_onupdate=FetchedValue()
    )

    video: Mapped[Video] = relationship(back_populates="jobs", lazy="raise")

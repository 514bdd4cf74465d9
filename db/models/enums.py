"""Enumerations stored as PostgreSQL enum types (their values are the GraphQL enum values)."""

from __future__ import annotations

import enum


class VideoInputType(enum.StrEnum):
    URL = "URL"
    DESCRIPTION = "DESCRIPTION"


class VideoStatus(enum.StrEnum):
    DRAFT = "DRAFT"
    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    READY = "READY"
    PUBLISHED = "PUBLISHED"
    ERROR = "ERROR"


class JobStatus(enum.StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_active(self) -> bool:
        return self in (JobStatus.QUEUED, JobStatus.RUNNING)


class JobStage(enum.StrEnum):
    SCRIPT = "SCRIPT"
    VOICE = "VOICE"
    CAPTIONS = "CAPTIONS"
    RENDER = "RENDER"

"""ORM models: one module per table, all registered on `Base.metadata` by importing this."""

from db.models.audit_event import AuditEvent
from db.models.base import Base
from db.models.enums import JobStage, JobStatus, VideoInputType, VideoStatus
from db.models.generation_job import GenerationJob
from db.models.rate_limit_bucket import RateLimitBucket
from db.models.state_change import JobStateChange, VideoStateChange
from db.models.user import User
from db.models.video import (
    DEFAULT_AUDIO_SETTINGS,
    DEFAULT_TARGET_DURATION_SECONDS,
    TARGET_DURATION_RANGE,
    Video,
)
from db.models.voice_profile import VoiceProfile

__all__ = [
    "DEFAULT_AUDIO_SETTINGS",
    "DEFAULT_TARGET_DURATION_SECONDS",
    "TARGET_DURATION_RANGE",
    "AuditEvent",
    "Base",
    "GenerationJob",
    "JobStage",
    "JobStateChange",
    "JobStatus",
    "RateLimitBucket",
    "User",
    "Video",
    "VideoInputType",
    "VideoStateChange",
    "VideoStatus",
    "VoiceProfile",
]

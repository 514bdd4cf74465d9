"""What a pipeline stage is run with in a test: a described video's input and a stage context."""

from __future__ import annotations

import uuid
from typing import Any

from app.worker.pipeline import ProgressMeter, StageContext, VideoInput
from db.models import VideoInputType


def described_video(description: str, *, language: str = "en", **overrides: Any) -> VideoInput:
    """A video made from ``description`` with no voice profile, at the default audio settings
    in ``language``; ``overrides`` replace any other field."""
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "title": "Reefs",
        "description": description,
        "input_type": VideoInputType.DESCRIPTION,
        "source_url": None,
        "voice_profile_id": None,
        "audio_settings": {"speed": 1.0, "pitch": 1.0, "volume": 1.0, "language": language},
    } | overrides
    return VideoInput(**values)


def stage_context() -> StageContext:
    """A first attempt's context for one stage, reporting to a meter nobody reads."""
    return StageContext(
        job_id=uuid.uuid4(),
        attempt=1,
        stage_index=0,
        meter=ProgressMeter([1.0]),
        stopped=lambda: None,
    )

"""The generation pipeline's one small interface (SPEC §5 Generation).

A job runs its stages in order — SCRIPT → VOICE → CAPTIONS → RENDER. A stage is any object with a
``name``, a ``weight`` (its share of the overall progress bar) and ``async run(context, video,
results)``: it reads the video and what earlier stages returned, reports how far it is through
``context.report(fraction)``, and returns its own results as a dict. A hosted model or service
replaces a stage by being another class with the same three members.

A stage fails in a way the user should read by raising `StageError(user_message)`; media storage
that is full or not writable (`app.media.StorageUnavailable`) is retried and named as such;
anything else it raises is a bug or an outage, shown as a generic message and retried.

Stages share the worker's event loop with the job's lease heartbeat: blocking work (synthesis,
encoding) belongs in a thread or subprocess (``asyncio.to_thread``), or the lease runs out.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from db.models import DEFAULT_TARGET_DURATION_SECONDS, JobStage, Video, VideoInputType

#: What earlier stages returned, by stage.
Results = Mapping[JobStage, Mapping[str, Any]]

#: The pace of progress writes: at most one per this many seconds per job (~4 per second).
PROGRESS_INTERVAL = 0.25


class StageError(Exception):
    """A failure the user can act on; ``user_message`` becomes the job's and video's error."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class JobStopped(Exception):
    """Raised inside a stage once its job must stop (cancelled, lease lost, shutting down)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class VideoInput:
    """What stages see of the video: a snapshot taken when the job was claimed."""

    id: uuid.UUID
    title: str
    description: str | None
    input_type: VideoInputType
    source_url: str | None
    voice_profile_id: uuid.UUID | None
    audio_settings: Mapping[str, Any]
    #: How long SCRIPT makes the narration of a page (``targetDurationSeconds``).
    target_duration_seconds: int = DEFAULT_TARGET_DURATION_SECONDS

    @classmethod
    def of(cls, video: Video) -> VideoInput:
        return cls(
            id=video.id,
            title=video.title,
            description=video.description,
            input_type=video.input_type,
            source_url=video.source_url,
            voice_profile_id=video.voice_profile_id,
            audio_settings=dict(video.audio_settings),
            target_duration_seconds=video.target_duration_seconds,
        )


class Stage(Protocol):
    name: JobStage
    weight: float

    async def run(
        self, context: StageContext, video: VideoInput, results: Results
    ) -> dict[str, Any]: ...


class ProgressMeter:
    """A job's overall progress: weighted by stage, never backwards, written at a bounded pace.

    Stages offer values as often as they like; the job's monitor asks `due()` a few times a
    second and writes only when the value grew and `PROGRESS_INTERVAL` has passed since the
    last write, so the database sees at most ~4 writes per second per job however chatty a stage
    is, and the last value is always written eventually.
    """

    def __init__(
        self,
        weights: Sequence[float],
        *,
        interval: float = PROGRESS_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        total = sum(weights) or 1.0
        self._starts = [sum(weights[:index]) / total for index in range(len(weights))]
        self._spans = [weight / total for weight in weights]
        self._interval = interval
        self._clock = clock
        self._value = 0
        self._written = 0
        self._written_at = float("-inf")

    @property
    def value(self) -> int:
        return self._value

    def offer(self, stage_index: int, fraction: float) -> None:
        """Stage ``stage_index`` is ``fraction`` (0 to 1) done."""
        fraction = min(1.0, max(0.0, fraction))
        overall = self._starts[stage_index] + self._spans[stage_index] * fraction
        self._value = max(self._value, min(100, int(overall * 100)))

    def due(self) -> int | None:
        """The value to write now, or ``None`` (nothing new, or too soon)."""
        if self._value > self._written and self._clock() - self._written_at >= self._interval:
            return self._value
        return None

    def mark_written(self, value: int) -> None:
        self._written = max(self._written, value)
        self._written_at = self._clock()


class StageContext:
    """What a running stage can do besides its work: report progress and notice a stop."""

    def __init__(
        self,
        *,
        job_id: uuid.UUID,
        attempt: int,
        stage_index: int,
        meter: ProgressMeter,
        stopped: Callable[[], str | None],
    ) -> None:
        self.job_id = job_id
        self.attempt = attempt
        self._stage_index = stage_index
        self._meter = meter
        self._stopped = stopped

    def report(self, fraction: float) -> None:
        """This stage is ``fraction`` (0 to 1) done. Cheap: call it as often as is convenient."""
        self.check_cancelled()
        self._meter.offer(self._stage_index, fraction)

    def check_cancelled(self) -> None:
        """Raise `JobStopped` once the job must stop. Stages that loop without awaiting call
        this; an awaiting stage is also interrupted at its ``await``."""
        reason = self._stopped()
        if reason is not None:
            raise JobStopped(reason)

"""The pipeline's progress: weighted by stage, never backwards, written at a bounded pace."""

from __future__ import annotations

import uuid
from itertools import pairwise

import pytest

from app.worker.pipeline import PROGRESS_INTERVAL, JobStopped, ProgressMeter, StageContext


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_overall_progress_is_weighted_by_stage() -> None:
    meter = ProgressMeter([1, 4, 1, 4])
    meter.offer(0, 1.0)
    assert meter.value == 10
    meter.offer(1, 0.5)
    assert meter.value == 30
    meter.offer(3, 1.0)
    assert meter.value == 100


def test_progress_never_goes_backwards() -> None:
    meter = ProgressMeter([1, 1])
    meter.offer(1, 0.5)
    meter.offer(0, 0.2)  # a late report from an earlier stage
    meter.offer(1, 0.1)
    meter.offer(1, -3)
    assert meter.value == 75


def test_writes_are_throttled_and_the_last_value_is_always_written() -> None:
    clock = FakeClock()
    meter = ProgressMeter([1], clock=clock)
    written = []
    # A chatty stage: 1,000 reports over 2 seconds; the monitor looks every 10 ms.
    for step in range(1, 1001):
        clock.now = step * 0.002
        meter.offer(0, step / 1000)
        if step % 5 == 0 and (value := meter.due()) is not None:
            meter.mark_written(value)
            written.append((clock.now, value))
    clock.now += PROGRESS_INTERVAL
    if (value := meter.due()) is not None:
        meter.mark_written(value)
        written.append((clock.now, value))

    assert written[-1][1] == 100
    assert len(written) <= 2 / PROGRESS_INTERVAL + 2
    gaps = [b[0] - a[0] for a, b in pairwise(written)]
    assert min(gaps) >= PROGRESS_INTERVAL - 1e-9
    values = [value for _, value in written]
    assert values == sorted(values)
    assert meter.due() is None  # nothing new to write


def test_nothing_is_due_until_progress_grows() -> None:
    clock = FakeClock()
    meter = ProgressMeter([1], clock=clock)
    assert meter.due() is None
    meter.offer(0, 0.0)
    assert meter.due() is None


def test_a_stopped_job_stops_its_stage_at_the_next_report() -> None:
    reason: list[str] = []
    context = StageContext(
        job_id=uuid.uuid4(),
        attempt=1,
        stage_index=0,
        meter=ProgressMeter([1]),
        stopped=lambda: reason[0] if reason else None,
    )
    context.report(0.5)
    context.check_cancelled()
    reason.append("the job was cancelled")
    with pytest.raises(JobStopped, match="cancelled"):
        context.report(0.6)
    with pytest.raises(JobStopped):
        context.check_cancelled()

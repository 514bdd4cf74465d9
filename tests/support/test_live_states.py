"""`assert_job_states` accepts every sequence the job queue can show a subscriber, merged
states included, and fails every sequence that goes backwards or does not end as expected."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.live_states import assert_job_states


def states(*steps: str) -> list[dict[str, Any]]:
    """``"RUNNING VOICE 30 a1"`` -> a state; ``-`` for no stage, ``aN`` (optional) the attempt."""
    made = []
    for step in steps:
        status, stage, progress, *attempt = step.split()
        state: dict[str, Any] = {
            "status": status,
            "stage": None if stage == "-" else stage,
            "progress": int(progress),
        }
        if attempt:
            state["attempt"] = int(attempt[0].removeprefix("a"))
        made.append(state)
    return made


WHOLE_RUN = (
    "QUEUED - 0",
    "RUNNING - 0",
    "RUNNING SCRIPT 0",
    "RUNNING VOICE 12",
    "RUNNING VOICE 30",
    "RUNNING CAPTIONS 37",
    "RUNNING RENDER 50",
    "RUNNING RENDER 80",
    "SUCCEEDED RENDER 100",
)


@pytest.mark.parametrize(
    ("steps", "ends"),
    [
        pytest.param(WHOLE_RUN, "SUCCEEDED", id="every state"),
        pytest.param(
            ("RUNNING VOICE 20", "RUNNING RENDER 50", "RUNNING RENDER 60", "SUCCEEDED RENDER 100"),
            "SUCCEEDED",
            id="CAPTIONS merged away",
        ),
        pytest.param(("QUEUED - 0", "SUCCEEDED RENDER 100"), "SUCCEEDED", id="the run merged"),
        pytest.param(("SUCCEEDED RENDER 100",), "SUCCEEDED", id="only the final state"),
        pytest.param(
            ("RUNNING VOICE 30", "RUNNING VOICE 30", "SUCCEEDED RENDER 100"),
            "SUCCEEDED",
            id="an unchanged state (a lease renewal)",
        ),
        pytest.param(
            (
                "QUEUED - 0 a0",
                "RUNNING VOICE 20 a1",
                "RUNNING - 0 a2",
                "RUNNING SCRIPT 5 a2",
                "SUCCEEDED RENDER 100 a2",
            ),
            "SUCCEEDED",
            id="reclaimed: a new attempt starts again",
        ),
        pytest.param(
            ("RUNNING RENDER 80 a1", "RUNNING VOICE 20 a2", "SUCCEEDED RENDER 100 a2"),
            "SUCCEEDED",
            id="retried: the QUEUED between the attempts merged away",
        ),
        pytest.param(
            ("RUNNING RENDER 60", "QUEUED - 0", "RUNNING SCRIPT 5", "SUCCEEDED RENDER 100"),
            "SUCCEEDED",
            id="requeued, without attempts",
        ),
        pytest.param(("QUEUED - 0", "RUNNING SCRIPT 0", "FAILED SCRIPT 0"), "FAILED", id="failed"),
        pytest.param(("RUNNING VOICE 30", "CANCELLED VOICE 30"), "CANCELLED", id="cancelled"),
        pytest.param(
            ("QUEUED - 0", "CANCELLED VOICE 30"),
            "CANCELLED",
            id="claimed, run and cancelled, merged",
        ),
        pytest.param(
            ("RUNNING VOICE 30 a1", "CANCELLED - 0 a1"),
            "CANCELLED",
            id="requeued, then cancelled while queued",
        ),
    ],
)
def test_what_the_job_queue_can_show_passes(steps: tuple[str, ...], ends: str) -> None:
    assert_job_states(states(*steps), ends=ends)


@pytest.mark.parametrize(
    ("steps", "ends", "why"),
    [
        pytest.param((), "SUCCEEDED", "no state arrived", id="nothing"),
        pytest.param(WHOLE_RUN[:-1], "SUCCEEDED", "never reached SUCCEEDED", id="no final state"),
        pytest.param(WHOLE_RUN, "FAILED", "never reached FAILED", id="another final state"),
        pytest.param(
            ("RUNNING RENDER 90", "SUCCEEDED RENDER 90"), "SUCCEEDED", "below 100", id="not 100"
        ),
        pytest.param(
            ("RUNNING RENDER 50", "RUNNING CAPTIONS 50", "SUCCEEDED RENDER 100"),
            "SUCCEEDED",
            "state 2 goes back",
            id="an earlier stage",
        ),
        pytest.param(
            ("RUNNING RENDER 80", "RUNNING RENDER 60", "SUCCEEDED RENDER 100"),
            "SUCCEEDED",
            "state 2 goes back",
            id="smaller progress in a stage",
        ),
        pytest.param(
            ("RUNNING VOICE 30", "RUNNING CAPTIONS 20", "SUCCEEDED RENDER 100"),
            "SUCCEEDED",
            "state 2 goes back",
            id="smaller progress in a later stage",
        ),
        pytest.param(
            ("RUNNING VOICE 30", "FAILED VOICE 20"),
            "FAILED",
            "state 2 goes back",
            id="failed lower",
        ),
        pytest.param(
            ("QUEUED - 0", "RUNNING VOICE 30", "SUCCEEDED RENDER 100", "SUCCEEDED RENDER 100"),
            "SUCCEEDED",
            "follows a terminal one",
            id="a state after the end",
        ),
        pytest.param(
            ("RUNNING VOICE 30 a2", "RUNNING RENDER 60 a1", "SUCCEEDED RENDER 100 a1"),
            "SUCCEEDED",
            "state 2 goes back",
            id="an earlier attempt",
        ),
        pytest.param(
            ("QUEUED - 0 a1", "RUNNING VOICE 30 a1", "SUCCEEDED RENDER 100 a1"),
            "SUCCEEDED",
            "state 2 goes back",
            id="running again without a new attempt",
        ),
        pytest.param(
            ("RUNNING RENDER 80", "RUNNING VOICE 20", "SUCCEEDED RENDER 100"),
            "SUCCEEDED",
            "state 2 goes back",
            id="a second run without attempts or a QUEUED state",
        ),
        pytest.param(
            ("QUEUED - 0 a0", "CANCELLED VOICE 30 a0"),
            "CANCELLED",
            "state 2 goes back",
            id="a stage without a claim",
        ),
        pytest.param(
            ("QUEUED - 0", "RUNNING MIXING 10", "SUCCEEDED RENDER 100"),
            "SUCCEEDED",
            "unknown stage",
            id="a stage the pipeline does not have",
        ),
        pytest.param(
            ("RUNNING RENDER 80", "SUCCEEDED RENDER 101"),
            "SUCCEEDED",
            "out of range",
            id="more than 100 %",
        ),
        pytest.param(
            ("QUEUED - 0", "PAUSED - 0", "SUCCEEDED RENDER 100"),
            "SUCCEEDED",
            "unknown status",
            id="a status the queue does not have",
        ),
    ],
)
def test_what_the_job_queue_cannot_show_fails(steps: tuple[str, ...], ends: str, why: str) -> None:
    with pytest.raises(AssertionError, match=why):
        assert_job_states(states(*steps), ends=ends)


def test_attempts_are_in_every_state_or_in_none() -> None:
    mixed = states("RUNNING VOICE 30 a1", "SUCCEEDED RENDER 100")
    with pytest.raises(AssertionError, match="attempt only in some states"):
        assert_job_states(mixed)


def test_the_message_shows_what_was_seen() -> None:
    seen = states("RUNNING RENDER 80", "RUNNING VOICE 20", "SUCCEEDED RENDER 100")
    with pytest.raises(AssertionError) as failed:
        assert_job_states(seen)
    assert "RUNNING RENDER 80% to RUNNING VOICE 20%" in str(failed.value)
    assert "SUCCEEDED RENDER 100%" in str(failed.value)

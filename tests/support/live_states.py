"""What a subscriber of one job is promised, and nothing more (SPEC §5 Live progress).

A subscription sends the current state first, then newer states in commit order; states that
change faster than the subscriber re-reads them merge into the newest. So a test that watches a
job run for real may rely on three things only:

* the final state arrives, and nothing after it;
* the states arrive in order: nothing goes backwards — within one run (an attempt) no earlier
  stage and no smaller progress after a later one, and the attempt never goes back;
* every step between two states it saw is a transition the job queue makes, possibly several
  merged into one.

It may not rely on seeing any state in between (SCRIPT or CAPTIONS take milliseconds, a render's
progress may arrive as one value) unless it holds that state open itself, e.g. with
``STUDIO_PIPELINE_STAGE_DELAY_MS`` or by writing the job one step at a time and waiting for each.

`assert_job_states` is that rule, for ``jobProgress`` results (or NOTIFY payloads, which never
merge). The states need ``status`` and ``progress``; ``stage`` and ``attempt`` are checked when
selected. Without ``attempt`` the states must be of one run, apart from a requeue the subscriber
saw (a QUEUED state): select ``attempt`` when a job may be reclaimed or retried, since the QUEUED
state between two runs can merge away.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

#: The stages of a generation job, in the order the pipeline runs them.
PIPELINE = ("SCRIPT", "VOICE", "CAPTIONS", "RENDER")
ACTIVE = frozenset({"QUEUED", "RUNNING"})
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})

State = Mapping[str, Any]


def assert_job_states(states: Sequence[State], *, ends: str = "SUCCEEDED") -> None:
    """The ``jobProgress`` states a subscriber saw, through to the end: they end with ``ends``
    (SUCCEEDED at 100 %), nothing follows a terminal state, and nothing goes backwards."""
    assert ends in TERMINAL, ends
    assert states, "no state arrived"
    shown = _show(states)
    for state in states:
        assert state["status"] in ACTIVE | TERMINAL, f"unknown status in {shown}"
        stage = state.get("stage")
        assert stage is None or stage in PIPELINE, f"unknown stage in {shown}"
        assert 0 <= state["progress"] <= 100, f"progress out of range in {shown}"
    assert states[-1]["status"] == ends, f"never reached {ends}: {shown}"
    if ends == "SUCCEEDED":
        assert states[-1]["progress"] == 100, f"succeeded below 100 %: {shown}"
    for index, state in enumerate(states[:-1]):
        assert state["status"] in ACTIVE, f"state {index + 1} follows a terminal one: {shown}"

    with_attempt = ["attempt" in state for state in states]
    assert all(with_attempt) or not any(with_attempt), f"attempt only in some states: {shown}"
    attempts = [state["attempt"] for state in states] if all(with_attempt) else _runs(states)
    positions = [_position(state, attempt) for state, attempt in zip(states, attempts, strict=True)]
    for index in range(1, len(states)):
        a, b = states[index - 1], states[index]
        where = f"state {index + 1} goes back from {_one(a)} to {_one(b)}"
        assert positions[index] >= positions[index - 1], f"{where}: {shown}"
        if positions[index] == positions[index - 1]:  # one run: stage and progress only grow
            assert _stage_rank(b) >= _stage_rank(a), f"{where}: {shown}"
            assert b["progress"] >= a["progress"], f"{where}: {shown}"


def _runs(states: Sequence[State]) -> list[int]:
    """Without ``attempt``: a new run after each QUEUED state seen (the states of a claim)."""
    runs = [0]
    for previous, state in pairwise(states):
        claimed = previous["status"] == "QUEUED" and state["status"] != "QUEUED"
        runs.append(runs[-1] + claimed)
    return runs


def _position(state: State, attempt: int) -> tuple[int, int]:
    """Where a state is in the job's life, by attempt: a claim makes attempt N+1 RUNNING; within
    attempt N the job runs, then ends or is queued again (requeued, stage and progress reset)
    and may be cancelled while queued. Later positions never lead to earlier ones."""
    requeued = state["status"] == "QUEUED" or (
        state["status"] == "CANCELLED" and state.get("stage") is None and state["progress"] == 0
    )
    return attempt, 2 if requeued else 1


def _stage_rank(state: State) -> int:
    stage = state.get("stage")
    return 0 if stage is None else 1 + PIPELINE.index(stage)


def _one(state: State) -> str:
    parts = [state["status"], state.get("stage") or "-", f"{state['progress']}%"]
    if "attempt" in state:
        parts.append(f"attempt {state['attempt']}")
    return " ".join(str(part) for part in parts)


def _show(states: Sequence[State]) -> str:
    return "[" + ", ".join(_one(state) for state in states) + "]"

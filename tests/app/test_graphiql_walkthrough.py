"""A person's whole walk through the studio, in a real Chromium with no internet: from GraphiQL
create a video (from a description, or from a page served on 127.0.0.1), start its generation,
watch its progress arrive over the subscription until it has succeeded, and play the finished
MP4 — sound decoded, captions loaded and shown — in a ``<video>`` element
(tests/browser/studio_walkthrough.mjs)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from db.url import DatabaseURL
from tests.support.browser import ROOT, browser_tools, run_browser_script
from tests.support.live_states import assert_job_states
from tests.support.pages import ARTICLE_TITLE
from tests.support.processes import USER_RENDER, clean_env, running_studio

WALKTHROUGH = ROOT / "tests" / "browser" / "studio_walkthrough.mjs"
DESCRIPTION = (
    "Sunlight knocks electrons loose in a thin layer of silicon. The loose electrons flow one "
    "way, and that flow is a current. An inverter turns it into the current a house uses."
)


@pytest.fixture
def studio(migrated_database: DatabaseURL, tmp_path: Path) -> Iterator[str]:
    """A `studio serve` (in-process worker, the default 1280 x 720 render); its GraphiQL URL
    signed in through the fragment, as `studio token` prints it."""
    browser_tools()  # skips (or, in CI, fails) before any server starts when it cannot run
    env = clean_env(
        DATABASE_URL=migrated_database.render(hide_password=False),
        STUDIO_MEDIA_DIR=str(tmp_path / "media"),
        STUDIO_INPROCESS_WORKER="true",
        STUDIO_FETCH_ALLOWED_HOSTS="127.0.0.1",
        **USER_RENDER,
    )
    with running_studio(env, tmp_path, email="walker@example.com") as studio:
        yield f"{studio.url}/graphql#token={studio.token}"


def walk(url: str, video_input: dict[str, Any]) -> dict[str, Any]:
    config = {"url": url, "input": video_input, "timeoutMs": 60_000}
    report, result = run_browser_script(WALKTHROUGH, config, timeout=240)
    assert report["ok"], f"{report['error']}\n{json.dumps(report, indent=1)}\n{result.stderr}"
    assert report["external"] == []
    assert report["pageErrors"] == []
    return report


def check_watched_and_played(report: dict[str, Any]) -> None:
    # What the result pane showed, through to SUCCEEDED and never backwards. Which states in
    # between it showed is up to timing: the subscription starts after `startGeneration`, as a
    # person runs them, and states that change faster than they are read (SCRIPT and CAPTIONS
    # take milliseconds, a render's progress can be one value) merge into the newest.
    assert_job_states(report["states"])

    video, player = report["video"], report["player"]
    assert video["status"] == "READY"
    assert player["duration"] == pytest.approx(video["durationMs"] / 1000, abs=0.1)
    assert (player["width"], player["height"]) == (1280, 720)
    assert player["played"] >= 1.5
    assert player["videoBytes"] > 0
    assert player["audioBytes"] > 0  # the narration's AAC was decoded
    assert player["cues"] >= 2
    assert player["shownCues"]  # a caption was on screen while it played


def test_from_a_description_to_a_video_playing_in_the_browser(studio: str) -> None:
    report = walk(
        studio,
        {"title": "How solar panels work", "description": DESCRIPTION, "inputType": "DESCRIPTION"},
    )
    check_watched_and_played(report)
    assert "How solar panels work" in report["player"]["shownCues"][0]


def test_from_a_local_page_to_a_video_playing_in_the_browser(studio: str, site: str) -> None:
    report = walk(
        studio, {"title": "From the web", "inputType": "URL", "sourceUrl": f"{site}/article"}
    )
    check_watched_and_played(report)
    assert ARTICLE_TITLE in report["player"]["shownCues"][0]

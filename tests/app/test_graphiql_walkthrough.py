"""A person's whole walk through the studio, in a real Chromium with no internet: from GraphiQL
create a video (from a description, or from a page served on 127.0.0.1), start its generation,
watch the stages and progress arrive over the subscription, and play the finished MP4 — sound
decoded, captions loaded and shown — in a ``<video>`` element
(tests/browser/studio_walkthrough.mjs)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from db.url import DatabaseURL
from tests.support.browser import ROOT, browser_tools, serve
from tests.support.pages import ARTICLE_TITLE, site_app
from tests.support.processes import (
    clean_env,
    free_port,
    run_studio,
    start_studio,
    stop,
    wait_until_ready,
)

WALKTHROUGH = ROOT / "tests" / "browser" / "studio_walkthrough.mjs"
DESCRIPTION = (
    "Sunlight knocks electrons loose in a thin layer of silicon. The loose electrons flow one "
    "way, and that flow is a current. An inverter turns it into the current a house uses."
)


@pytest.fixture
def page_site() -> Iterator[str]:
    with serve(site_app()) as url:
        yield url


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
        STUDIO_RENDER_WIDTH="1280",
        STUDIO_RENDER_HEIGHT="720",
        STUDIO_RENDER_FPS="25",
    )
    issued = run_studio("token", "--email", "walker@example.com", env=env)
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip().splitlines()[-1]
    port, log = free_port(), tmp_path / "serve.log"
    server = start_studio("serve", "--port", str(port), env=env, log=log)
    try:
        wait_until_ready(port, server, log)
        yield f"http://127.0.0.1:{port}/graphql#token={token}"
    finally:
        stop(server)


def walk(url: str, video_input: dict[str, Any]) -> dict[str, Any]:
    tools = browser_tools()
    config = {"url": url, "input": video_input, "chromium": tools.chromium, "timeoutMs": 60_000}
    result = subprocess.run(
        [tools.node, str(WALKTHROUGH), json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    try:
        report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise AssertionError(
            f"studio_walkthrough.mjs exited with {result.returncode} without a report:\n"
            f"{result.stdout}\n{result.stderr}"
        ) from None
    assert report["ok"], f"{report['error']}\n{json.dumps(report, indent=1)}\n{result.stderr}"
    assert report["external"] == []
    assert report["pageErrors"] == []
    return report


def check_watched_and_played(report: dict[str, Any]) -> None:
    states = report["states"]
    assert states[-1]["status"] == "SUCCEEDED", states[-1]
    # The subscription starts after `startGeneration` (as a person runs them, one after the
    # other): the first stages may be over by then. What is seen comes in the pipeline's order.
    stages = [s["stage"] for s in states if s["status"] == "RUNNING" and s["stage"]]
    seen = sorted(set(stages), key=stages.index)
    pipeline = ["SCRIPT", "VOICE", "CAPTIONS", "RENDER"]
    assert seen == pipeline[pipeline.index(seen[0]) :], stages
    progress = [s["progress"] for s in states]
    assert progress == sorted(progress)
    rendering = {
        s["progress"] for s in states if s["stage"] == "RENDER" and s["status"] == "RUNNING"
    }
    assert len(rendering) >= 2  # the bar moved during the render, as the person watched

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


def test_from_a_local_page_to_a_video_playing_in_the_browser(studio: str, page_site: str) -> None:
    report = walk(
        studio, {"title": "From the web", "inputType": "URL", "sourceUrl": f"{page_site}/article"}
    )
    check_watched_and_played(report)
    assert ARTICLE_TITLE in report["player"]["shownCues"][0]

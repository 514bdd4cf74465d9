"""SCRIPT for a URL video: the page at the URL, fetched safely, becomes narration segments; a
page that cannot be read ends the stage with a `StageError` a person understands.

The page comes from a site on 127.0.0.1, allowed through ``STUDIO_FETCH_ALLOWED_HOSTS``; the
guards of `tests.support.pages` keep every other address out of reach.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.pipeline import fetch, pace, speech
from app.pipeline.sentences import split_sentences
from app.settings import Settings, load_settings
from app.worker.pipeline import ProgressMeter, StageContext, StageError, VideoInput
from app.worker.stages import MAX_SEGMENT_CHARS, ScriptFromDescription, default_stages
from db.models import JobStage, VideoInputType
from tests.factories import make_user, make_voice_profile
from tests.support.articles import LONG_SECTIONS, LONG_TITLE
from tests.support.pages import (
    ARTICLE_PARAGRAPHS,
    ARTICLE_TITLE,
    ConnectionLog,
    fake_resolver,
)


@pytest.fixture(autouse=True)
def connections(monkeypatch: pytest.MonkeyPatch) -> ConnectionLog:
    log = ConnectionLog()
    original = asyncio.base_events.BaseEventLoop.create_connection
    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "create_connection", log.wrap(original))
    monkeypatch.setattr(
        fetch, "resolve_host", fake_resolver({"intranet.example": ["10.0.0.7"]}, [])
    )
    return log


@pytest.fixture
def page_settings() -> Settings:
    """Fetch limits for the tests' site (named so as not to hide the run's ``settings``)."""
    return load_settings(
        fetch_allowed_hosts="127.0.0.1", fetch_timeout_seconds=0.5, fetch_max_bytes=100_000
    )


def _video(url: str, title: str = "Solar, from the web", **overrides: Any) -> VideoInput:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "title": title,
        "description": None,
        "input_type": VideoInputType.URL,
        "source_url": url,
        "voice_profile_id": None,
        "audio_settings": {"speed": 1.0, "language": "en"},
    } | overrides
    return VideoInput(**values)


def _context(meter: ProgressMeter) -> StageContext:
    return StageContext(
        job_id=uuid.uuid4(), attempt=1, stage_index=0, meter=meter, stopped=lambda: None
    )


async def _script(settings: Settings, url: str, **video: Any) -> list[str]:
    meter = ProgressMeter([1.0])
    results = await ScriptFromDescription(settings).run(_context(meter), _video(url, **video), {})
    assert meter.value == 100
    segments = results["segments"]
    assert [segment["index"] for segment in segments] == list(range(len(segments)))
    return [str(segment["text"]) for segment in segments]


async def test_a_page_becomes_the_script(site: str, page_settings: Settings) -> None:
    segments = await _script(page_settings, f"{site}/article")
    # The page's title, then its paragraphs: each starts a segment, none is too long to read.
    assert segments[0] == ARTICLE_TITLE
    assert all(len(segment) <= MAX_SEGMENT_CHARS for segment in segments)
    assert " ".join(segments[1:]) == " ".join(ARTICLE_PARAGRAPHS)
    assert segments[1].startswith(ARTICLE_PARAGRAPHS[0][:40])
    assert any(segment.startswith(ARTICLE_PARAGRAPHS[2][:40]) for segment in segments)


@pytest.mark.parametrize("target", [30, 60, 120])
async def test_a_long_page_is_summarised_to_the_target_as_spoken(
    site: str, page_settings: Settings, target: int
) -> None:
    """The estimate is checked against eSpeak NG itself: every segment synthesized, with the
    pauses VOICE puts between them, lasts the target within a fifth."""
    results = await ScriptFromDescription(page_settings).run(
        _context(ProgressMeter([1.0])),
        _video(f"{site}/long-article", target_duration_seconds=target),
        {},
    )
    segments = results["segments"]
    assert results["title"] == segments[0]["text"] == LONG_TITLE
    assert results["targetDurationSeconds"] == target
    assert results["wordsPerMinute"] == 216.9
    spoken = [
        speech.synthesize_blocking(segment["text"], voice="en", rate=speech.DEFAULT_RATE)
        for segment in segments
    ]
    seconds = (sum(s.duration_ms for s in spoken) + pace.PAUSE_MS * (len(spoken) - 1)) / 1000
    assert 0.8 * target <= seconds <= 1.2 * target, seconds
    assert 0.8 * target <= results["estimatedDurationMs"] / 1000 <= 1.2 * target
    article = [s for _, ps in LONG_SECTIONS for p in ps for s in split_sentences(p)]
    places = [article.index(s) for seg in segments[1:] for s in split_sentences(seg["text"])]
    assert places == sorted(places)  # the article's own sentences, in its order
    headings = [heading for heading, _ in LONG_SECTIONS]
    assert all(seg["heading"] in headings for seg in segments[1:])


async def test_the_voice_profiles_rate_paces_the_summary(
    site: str, page_settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with sessionmaker() as session:
        owner = await make_user(session)
        slow = await make_voice_profile(session, owner, engine_settings={"rate": 100})
        await session.commit()
    stage = ScriptFromDescription(page_settings, sessionmaker)
    url = f"{site}/long-article"
    default = await stage.run(_context(ProgressMeter([1.0])), _video(url), {})
    slowly = await stage.run(
        _context(ProgressMeter([1.0])), _video(url, voice_profile_id=slow.id), {}
    )
    assert slowly["wordsPerMinute"] == 129.5  # 1.165 x 100 + 13
    words = [sum(len(s["text"].split()) for s in r["segments"]) for r in (default, slowly)]
    assert words[1] < 0.75 * words[0]
    assert 48_000 <= slowly["estimatedDurationMs"] <= 72_000


async def test_a_page_without_a_title_is_titled_by_the_video(
    site: str, page_settings: Settings
) -> None:
    segments = await _script(page_settings, f"{site}/plain", title="The tides")
    assert segments == [
        "The tides",
        "Tides.",
        "The moon pulls the sea towards it. The sea rises and falls twice a day.",
    ]


async def test_the_workers_stages_read_pages_with_the_workers_settings(
    site: str, page_settings: Settings
) -> None:
    script = default_stages(page_settings)[0]
    assert script.name is JobStage.SCRIPT
    results = await script.run(_context(ProgressMeter([1.0])), _video(f"{site}/article"), {})
    assert results["segments"][0]["text"] == ARTICLE_TITLE


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("http://10.0.0.1/", "The address 10.0.0.1 is not allowed (private network)."),
        (
            "http://intranet.example/",
            "The address intranet.example (10.0.0.7) is not allowed (private network).",
        ),
        (
            "/to?location=http://169.254.169.254/latest/meta-data/",
            "The address 169.254.169.254 is not allowed (link-local).",
        ),
        ("file:///etc/passwd", "Only http:// and https:// web pages can be fetched, not file://"),
        ("/no-text", "The page has no readable text."),
        ("/image.png", "is not a web page (image/png)."),
        ("/missing", "The page could not be fetched: 127.0.0.1 answered 404 Not Found."),
        ("/huge-streamed", "The page is larger than 0.1 MB."),
        ("/slow", "The page took too long to answer (more than 0.5 seconds)."),
        ("/redirect/6", "Too many redirects (more than 5)"),
    ],
)
async def test_an_unreadable_page_fails_the_stage_readably(
    site: str, page_settings: Settings, path: str, message: str, connections: ConnectionLog
) -> None:
    url = f"{site}{path}" if path.startswith("/") else path
    with pytest.raises(StageError) as failed:
        await ScriptFromDescription(page_settings).run(
            _context(ProgressMeter([1.0])), _video(url), {}
        )
    assert message in failed.value.user_message
    assert all(host == "127.0.0.1" for host, _ in connections.attempts)


async def test_a_url_video_without_an_address_fails_readably(page_settings: Settings) -> None:
    with pytest.raises(StageError, match="no web address"):
        await ScriptFromDescription(page_settings).run(
            _context(ProgressMeter([1.0])), _video("  "), {}
        )

"""The stages a job runs today: a real script from the description, and placeholders that
produce the shape of their artefacts (timings estimated from text, captions timed to them)."""

from __future__ import annotations

import base64
import re
import uuid
from itertools import pairwise
from typing import Any

import pytest

from app.worker.pipeline import ProgressMeter, StageContext, StageError, VideoInput
from app.worker.stages import (
    MAX_SEGMENT_CHARS,
    EstimatedVoice,
    NoRender,
    ScriptFromDescription,
    WebVTTCaptions,
    caption_cues,
    split_script,
    video_artefacts,
)
from db.models import JobStage, VideoInputType

LONG_SENTENCE = (
    "Panels on a roof, facing south and tilted at the latitude's angle, collect the most light "
    "over a year; panels facing east or west collect less, though they spread the output more "
    "evenly across the day, which suits households that use power in the morning and evening."
)


def _video(**overrides: Any) -> VideoInput:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "title": "How solar panels work",
        "description": "Sunlight knocks electrons loose. They flow as a current.",
        "input_type": VideoInputType.DESCRIPTION,
        "source_url": None,
        "voice_profile_id": None,
        "audio_settings": {"speed": 1.0, "language": "en"},
    } | overrides
    return VideoInput(**values)


def _context() -> StageContext:
    return StageContext(
        job_id=uuid.uuid4(),
        attempt=1,
        stage_index=0,
        meter=ProgressMeter([1.0]),
        stopped=lambda: None,
    )


async def _run_all(video: VideoInput) -> dict[JobStage, dict[str, Any]]:
    results: dict[JobStage, dict[str, Any]] = {}
    for stage in (ScriptFromDescription(), EstimatedVoice(), WebVTTCaptions(), NoRender()):
        results[stage.name] = await stage.run(_context(), video, results)
    return results


# --- SCRIPT -------------------------------------------------------------------------------


def test_the_title_comes_first_then_whole_sentences() -> None:
    segments = split_script("  Solar   power ", "First sentence. Second one!\nStill second para?")
    assert segments == ["Solar power", "First sentence. Second one! Still second para?"]


def test_a_paragraph_break_starts_a_new_segment() -> None:
    segments = split_script("T", "One. Two.\n\n  \nThree.")
    assert segments == ["T", "One. Two.", "Three."]


def test_segments_stay_readable_and_lose_no_words() -> None:
    description = " ".join([LONG_SENTENCE] * 3 + ["Short one."] * 30 + ["x" * 500])
    segments = split_script("Title", description)
    assert all(len(segment) <= MAX_SEGMENT_CHARS for segment in segments)
    assert "".join("".join(segments[1:]).split()) == "".join(description.split())
    # A long sentence is cut at its clause breaks, not in the middle of a phrase.
    assert all(segment.endswith((",", ";", ".")) for segment in segments[1:-3])


def test_sentences_keep_their_closing_quotes() -> None:
    assert split_script("T", 'She said "stop." Then left.') == ["T", 'She said "stop." Then left.']


async def test_a_url_video_that_cannot_be_fetched_is_refused_readably() -> None:
    # Refused before any lookup or connection; tests/app/test_url_script_stage.py fetches pages.
    video = _video(input_type=VideoInputType.URL, source_url="http://169.254.169.254/latest/")
    with pytest.raises(StageError, match=r"169\.254\.169\.254 is not allowed \(link-local\)"):
        await ScriptFromDescription().run(_context(), video, {})


async def test_a_blank_description_is_refused_readably() -> None:
    with pytest.raises(StageError, match="no description"):
        await ScriptFromDescription().run(_context(), _video(description="  \n "), {})


# --- VOICE, CAPTIONS, RENDER (placeholders) -------------------------------------------------


async def test_estimated_timings_follow_the_text_and_the_speed() -> None:
    normal = await _run_all(_video(description=LONG_SENTENCE))
    fast = await _run_all(_video(description=LONG_SENTENCE, audio_settings={"speed": 2.0}))
    timings = normal[JobStage.VOICE]["timings"]
    assert [t["index"] for t in timings] == [0, 1, 2]  # the title, then two clause groups
    assert timings[0]["startMs"] == 0
    assert all(t["endMs"] > t["startMs"] for t in timings)
    assert timings[1]["startMs"] > timings[0]["endMs"]  # a pause between segments
    assert normal[JobStage.VOICE]["durationMs"] == timings[-1]["endMs"]
    assert normal[JobStage.VOICE]["audioPath"] is None
    assert fast[JobStage.VOICE]["durationMs"] < normal[JobStage.VOICE]["durationMs"]


async def test_captions_are_webvtt_and_srt_timed_to_the_voice() -> None:
    results = await _run_all(_video(description=LONG_SENTENCE))
    tracks = results[JobStage.CAPTIONS]["tracks"]
    assert [(t["language"], t["format"]) for t in tracks] == [("en", "vtt"), ("en", "srt")]
    vtt = _decode(tracks[0]["url"])
    srt = _decode(tracks[1]["url"])
    assert vtt.startswith("WEBVTT\n\n")
    stamps = re.findall(r"(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})", vtt)
    assert stamps[0][0] == "00:00:00.000"
    end_ms = results[JobStage.VOICE]["timings"][-1]["endMs"]
    assert _ms(stamps[-1][1]) == end_ms
    assert [_ms(a) < _ms(b) for a, b in stamps] == [True] * len(stamps)
    assert srt.startswith("1\n00:00:00,000 --> ")
    assert srt.count(" --> ") == len(stamps)
    assert results[JobStage.RENDER] == {"mediaPath": None}


def test_a_long_segment_becomes_several_short_cues() -> None:
    cues = caption_cues(LONG_SENTENCE, 1000, 21000)
    assert len(cues) > 1
    assert cues[0][0] == 1000
    assert cues[-1][1] == 21000
    assert all(a[1] == b[0] for a, b in pairwise(cues))
    assert all(len(line) <= 42 for _, _, text in cues for line in text.split("\n"))


async def test_artefacts_are_the_script_with_timings_and_the_tracks() -> None:
    results = await _run_all(_video())
    script, tracks = video_artefacts(results)
    assert [s["text"] for s in script["segments"]] == [
        "How solar panels work",
        "Sunlight knocks electrons loose. They flow as a current.",
    ]
    assert script["segments"][1]["startMs"] == results[JobStage.VOICE]["timings"][1]["startMs"]
    assert tracks == results[JobStage.CAPTIONS]["tracks"]


def _decode(url: str) -> str:
    prefix, _, data = url.partition("base64,")
    assert prefix.startswith("data:")
    return base64.b64decode(data).decode()


def _ms(stamp: str) -> int:
    hours, minutes, rest = stamp.replace(",", ".").split(":")
    seconds, millis = rest.split(".")
    return ((int(hours) * 60 + int(minutes)) * 60 + int(seconds)) * 1000 + int(millis)

"""SCRIPT from a description, and how stage results become the video's script, caption tracks
and media. (VOICE, CAPTIONS and RENDER have tests of their own: test_speech, test_captions,
test_render, test_voice_captions_stages.)"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from app.pipeline import pace
from app.pipeline.sentences import split_sentences
from app.worker.pipeline import ProgressMeter, StageContext, StageError, VideoInput
from app.worker.stages import (
    MAX_SEGMENT_CHARS,
    ScriptFromDescription,
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


# --- SCRIPT -------------------------------------------------------------------------------


def test_the_title_comes_first_then_scenes_of_two_sentences() -> None:
    segments = split_script("  Solar   power ", "First sentence. Second one!\nStill second para?")
    assert segments == ["Solar power", "First sentence. Second one!", "Still second para?"]


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


async def test_a_description_becomes_its_title_and_scenes_of_one_or_two_sentences() -> None:
    first = "Reefs grow slowly. Corals are animals. They host algae! Algae feed them? Yes."
    second = "Warm water bleaches them. Some recover."
    video = _video(title="  Coral   reefs ", description=f"{first}\n\n{second}")
    result = await ScriptFromDescription().run(_context(), video, {})
    assert result["title"] == "Coral reefs"
    assert result["writer"] == "description"
    segments = result["segments"]
    assert segments[0] == {"index": 0, "text": "Coral reefs", "kind": "title"}
    assert [s["text"] for s in segments[1:]] == [
        "Reefs grow slowly. Corals are animals.",
        "They host algae! Algae feed them?",
        "Yes.",  # the paragraph ends: its last sentence is a scene alone
        "Warm water bleaches them. Some recover.",
    ]
    assert all(s["kind"] == "scene" and s["heading"] is None for s in segments[1:])
    assert [s["index"] for s in segments] == list(range(5))
    # A description is the user's narration: all of it, whatever the target.
    assert result["targetDurationSeconds"] == 60
    assert result["estimatedDurationMs"] == pace.estimate_ms(
        [s["text"] for s in segments], result["wordsPerMinute"]
    )


def test_every_description_scene_is_one_or_two_whole_sentences() -> None:
    description = " ".join(f"Sentence number {n} is here." for n in range(25))
    segments = split_script("T", description)
    assert all(1 <= len(split_sentences(segment)) <= 2 for segment in segments[1:])
    assert " ".join(segments[1:]) == description


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


# --- the artefacts ------------------------------------------------------------------------


async def test_artefacts_are_the_script_with_timings_and_the_tracks() -> None:
    script_result = await ScriptFromDescription().run(_context(), _video(), {})
    tracks = [{"language": "en", "format": "vtt", "path": "videos/x/captions/en.vtt"}]
    results = {
        JobStage.SCRIPT: script_result,
        JobStage.VOICE: {
            "timings": [
                {"index": 0, "startMs": 0, "endMs": 1200},
                {"index": 1, "startMs": 1500, "endMs": 4800},
            ]
        },
        JobStage.CAPTIONS: {"tracks": tracks},
        JobStage.RENDER: {
            "mediaPath": "videos/x/video.mp4",
            "posterPath": "videos/x/poster.png",
            "durationMs": 4800,
        },
    }
    artefacts = video_artefacts(results)
    assert artefacts["script"]["segments"] == [
        {"index": 0, "text": "How solar panels work", "startMs": 0, "endMs": 1200},
        {
            "index": 1,
            "text": "Sunlight knocks electrons loose. They flow as a current.",
            "startMs": 1500,
            "endMs": 4800,
        },
    ]
    assert artefacts["caption_tracks"] == tracks
    assert (artefacts["media_path"], artefacts["poster_path"], artefacts["duration_ms"]) == (
        "videos/x/video.mp4",
        "videos/x/poster.png",
        4800,
    )


async def test_without_a_render_there_is_no_media() -> None:
    script_result = await ScriptFromDescription().run(_context(), _video(), {})
    artefacts = video_artefacts({JobStage.SCRIPT: script_result})
    assert (artefacts["media_path"], artefacts["poster_path"], artefacts["duration_ms"]) == (
        None,
        None,
        None,
    )

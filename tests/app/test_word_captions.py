"""Captions timed by the synthesizer's own word positions: cues of readable length that change
where the narration really pauses (silence measured in the WAV), and the word-highlight track."""

from __future__ import annotations

import re
import wave
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from app.pipeline.alignment import silences
from app.pipeline.captions import LINE_CHARS, MAX_LINES, TimedCaptions, timed_cues
from app.pipeline.voice import SynthesizedVoice
from app.settings import Settings, load_settings
from app.worker.stages import ScriptFromDescription
from db.models import JobStage
from tests.support.stages import described_video, stage_context

#: Two segments, each too long for one cue, with clause pauses the cues should change at.
DESCRIPTION = (
    "Coral reefs cover less than one percent of the ocean floor, yet they shelter about a "
    "quarter of all the species that live in the sea.\n\n"
    "When the water warms, the corals push out the algae that feed them, and they turn white."
)
#: How far from a measured pause a cue boundary may be (ms): eSpeak NG's pause starts a few
#: milliseconds from where its last word's sound fades.
TOLERANCE_MS = 15
_TAG = re.compile(r"<(\d\d):(\d\d):(\d\d)\.(\d{3})>")


Narrated = tuple[Settings, dict[JobStage, dict[str, Any]]]


@pytest.fixture(scope="module", params=["espeak", "piper"])
async def narrated(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Narrated:
    """The description narrated and captioned once per engine, for the tests that read it."""
    neural = "en_US-joe-medium" if request.param == "piper" else None
    media_dir = tmp_path_factory.mktemp("media")
    settings = load_settings(media_dir=media_dir, neural_voice=neural, word_captions=True)
    return settings, await _narrate(settings)


async def test_cue_boundaries_fall_in_the_pauses_of_the_narration(narrated: Narrated) -> None:
    voice_settings, results = narrated
    voice = results[JobStage.VOICE]
    texts = {s["index"]: str(s["text"]) for s in results[JobStage.SCRIPT]["segments"]}
    cues = timed_cues(voice["timings"], texts)
    narration = voice_settings.resolved_media_dir / voice["audioPath"]
    quiet = _silent_ms(narration)

    # Readable: every cue within two lines of 42 characters, and the segments split.
    assert all(len(cue.lines) <= MAX_LINES for cue in cues)
    assert all(len(line) <= LINE_CHARS for cue in cues for line in cue.lines)
    assert len(cues) > len(voice["timings"])
    within = [b.start_ms for a, b in pairwise(cues) if a.end_ms == b.start_ms]
    assert within, "no cue changed inside a segment"
    for boundary in [cue.end_ms for cue in cues[:-1]] + [cue.start_ms for cue in cues[1:]]:
        assert _in_pause(boundary, quiet), f"cue boundary at {boundary} ms is not in a pause"
    # And what a cue says is what is spoken meanwhile: its words start within it.
    for timing in voice["timings"]:
        for word in timing["words"]:
            cue = next(c for c in cues if c.start_ms <= word["startMs"] < c.end_ms)
            assert word["text"] in cue.text.split()


async def test_the_word_highlight_track_tags_each_word_when_it_is_spoken(
    narrated: Narrated,
) -> None:
    voice_settings, results = narrated
    tracks = results[JobStage.CAPTIONS]["tracks"]
    assert [(t["format"], t.get("kind")) for t in tracks] == [
        ("vtt", None),
        ("srt", None),
        ("vtt", "words"),
    ]
    highlighted = (voice_settings.resolved_media_dir / tracks[2]["path"]).read_text()
    words = [w for t in results[JobStage.VOICE]["timings"] for w in t["words"]]
    tags = [_ms(m) for m in _TAG.finditer(highlighted)]
    # Every word but each cue's first carries the moment it is spoken, in order.
    cue_count = highlighted.count(" --> ")
    assert len(tags) == len(words) - cue_count
    assert tags == sorted(tags)
    assert set(tags) <= {w["startMs"] for w in words}
    plain = _TAG.sub("", highlighted)
    normal = (voice_settings.resolved_media_dir / tracks[0]["path"]).read_text()
    assert plain == normal


async def test_without_the_setting_the_word_track_is_written_but_not_listed(
    tmp_path: Path,
) -> None:
    settings = load_settings(media_dir=tmp_path / "media")
    results = await _narrate(settings)
    tracks = results[JobStage.CAPTIONS]["tracks"]
    assert [t["format"] for t in tracks] == ["vtt", "srt"]
    words = str(settings.resolved_media_dir / tracks[0]["path"]).replace(".vtt", ".words.vtt")
    assert _TAG.search(_read(words))


def test_a_full_cue_ends_halfway_through_the_longest_pause() -> None:
    """Seventeen words of 300 ms, too many for one cue, with 400 ms of silence after the 7th."""
    texts = "one two three four five six seven, eight nine ten eleven twelve thirteen fourteen"
    texts += " fifteen sixteen seventeen"
    words, at = [], 0
    for number, text in enumerate(texts.split()):
        words.append({"text": text, "startMs": at, "endMs": at + 300})
        at += 300 + (400 if number == 6 else 0)
    cues = timed_cues([{"index": 0, "startMs": 0, "endMs": at, "words": words}], {0: texts})
    assert [cue.text.replace("\n", " ") for cue in cues] == [
        "one two three four five six seven,",
        texts.split(", ")[1],
    ]
    assert (cues[0].start_ms, cues[0].end_ms, cues[1].start_ms, cues[1].end_ms) == (
        0,
        2300,  # between "seven," ending at 2100 and "eight" starting at 2500
        2300,
        at,
    )
    assert cues[1].word_starts[:2] == (2800, 3100)


def _read(path: str) -> str:
    return Path(path).read_text()


def _silent_ms(path: Path) -> list[tuple[float, float]]:
    with wave.open(str(path), "rb") as file:
        rate = file.getframerate()
        pcm = file.readframes(file.getnframes())
    return [(a * 1000 / rate, b * 1000 / rate) for a, b in silences(pcm, rate, min_ms=60)]


def _in_pause(ms: int, quiet: list[tuple[float, float]]) -> bool:
    return any(start - TOLERANCE_MS <= ms <= stop + TOLERANCE_MS for start, stop in quiet)


def _ms(match: re.Match[str]) -> int:
    hours, minutes, seconds, millis = (int(g) for g in match.groups())
    return ((hours * 60 + minutes) * 60 + seconds) * 1000 + millis


async def _narrate(settings: Settings) -> dict[JobStage, dict[str, Any]]:
    video = described_video(DESCRIPTION)
    context = stage_context()
    results: dict[JobStage, dict[str, Any]] = {}
    for stage in (ScriptFromDescription(), SynthesizedVoice(settings), TimedCaptions(settings)):
        results[stage.name] = await stage.run(context, video, results)
    return results

"""The Piper neural voice through the project's own ONNX runner: real synthesis from the voice
package, phonemes from the same eSpeak NG library, settings that change what is heard, and the
engine choice with eSpeak NG as the default and the fallback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.pipeline import alignment, narrator, piper, speech
from app.pipeline.voice import SynthesizedVoice
from app.settings import Settings, load_settings
from db.models import JobStage
from tests.support.stages import described_video, stage_context

JOE = "en_US-joe-medium"
SENTENCE = "Coral reefs are alive, and they grow."


@pytest.fixture(scope="module")
def joe() -> piper.PiperVoice:
    return piper.installed()[JOE]


def test_the_phonemes_are_espeaks_ipa_clause_by_clause() -> None:
    clauses = speech.phonemize_blocking("Hello world, said the sea. Why?", voice="en-us")
    assert [text for text, _ in clauses] == ["Hello world,", "said the sea.", "Why?"]
    assert clauses[0][1] == "h\u0259l\u02c8o\u028a w\u02c8\u025c\u02d0ld"  # IPA
    assert all(phonemes for _, phonemes in clauses)


def test_the_neural_voice_speaks_each_word_where_the_model_put_it(
    joe: piper.PiperVoice,
) -> None:
    said = piper.synthesize_blocking(SENTENCE, joe)
    assert said.sample_rate == 22050
    assert 1500 < said.duration_ms < 5000
    assert speech.rms(said.pcm) > 500
    assert [w.text for w in said.words] == SENTENCE.split()
    for before, after in zip(said.words, said.words[1:], strict=False):
        assert before.start < before.end <= after.start
    assert said.words[-1].end <= said.samples
    # The comma is a pause in the audio, between the words the model put around it.
    comma_end, next_start = said.words[3].end, said.words[4].start
    quiet = alignment.silences(said.pcm, said.sample_rate, min_ms=40)
    assert any(start <= comma_end + 400 and next_start - 400 <= stop for start, stop in quiet)
    assert next_start - comma_end > 0.05 * said.sample_rate


def test_rate_and_volume_change_the_neural_voice(joe: piper.PiperVoice) -> None:
    slow = piper.synthesize_blocking("Hello there.", joe, rate=100)
    fast = piper.synthesize_blocking("Hello there.", joe, rate=350)
    assert slow.duration_ms > 2 * fast.duration_ms
    loud = piper.synthesize_blocking("Hello there.", joe, volume=200)
    quiet = piper.synthesize_blocking("Hello there.", joe, volume=50)
    assert speech.rms(loud.pcm) > 2.5 * speech.rms(quiet.pcm)


def test_a_profile_naming_the_neural_voice_is_spoken_by_it() -> None:
    voice = narrator.voice_for(engine_settings={"voice": JOE, "rate": 200, "volume": 80})
    assert (voice.engine, voice.name, voice.rate, voice.volume) == ("piper", JOE, 200, 80)


def test_espeak_is_the_default_and_speaks_what_the_neural_voice_lacks() -> None:
    assert narrator.voice_for(audio_settings={"language": "en"}).engine == "espeak"
    chosen = narrator.voice_for(audio_settings={"language": "en-US"}, neural_voice=JOE)
    assert (chosen.engine, chosen.name) == ("piper", JOE)
    german = narrator.voice_for(audio_settings={"language": "de"}, neural_voice=JOE)
    assert (german.engine, german.name) == ("espeak", "de")
    # A variant is eSpeak NG's alone: asking for one asks for eSpeak NG.
    variant = narrator.voice_for(engine_settings={"variant": "f3"}, neural_voice=JOE)
    assert variant.engine == "espeak"


def test_the_catalog_lists_both_engines() -> None:
    espeak, neural = narrator.catalog()
    assert (espeak.name, espeak.pitch) == ("espeak", True)
    assert "en-us" in espeak.voices
    assert (neural.name, neural.voices, neural.languages, neural.pitch) == (
        "piper",
        (JOE,),
        ("en-us",),
        False,
    )
    assert JOE in narrator.voice_names()


@pytest.mark.parametrize(("language", "engine"), [("en", "piper"), ("de", "espeak")])
async def test_the_voice_stage_narrates_with_the_operators_neural_voice(
    tmp_path: Path, language: str, engine: str
) -> None:
    settings = load_settings(media_dir=tmp_path / "media", neural_voice=JOE)
    results = await _voice(settings, "Guten Tag." if language == "de" else "Good day.", language)
    assert (results["engine"], results["language"]) == (engine, language)
    [timing] = results["timings"]
    assert timing["words"][0]["text"] == ("Guten" if language == "de" else "Good")
    assert 0 <= timing["words"][0]["startMs"] < timing["words"][-1]["endMs"] <= timing["endMs"]


async def _voice(settings: Settings, text: str, language: str) -> dict[str, Any]:
    video = described_video(text, language=language, title="t")
    context = stage_context()
    script = {"segments": [{"index": 0, "text": text}]}
    results: dict[JobStage, dict[str, Any]] = {JobStage.SCRIPT: script}
    return await SynthesizedVoice(settings).run(context, video, results)

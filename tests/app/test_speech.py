"""Real speech from eSpeak NG: audible, timed to the sample, and shaped by the voice settings."""

from __future__ import annotations

import array
import asyncio
import itertools
import statistics
import wave
from pathlib import Path

import pytest

from app.pipeline import speech
from app.pipeline.speech import Speech, Voice, VoiceNotFound, synthesize, voice_for, wav_bytes

SHORT = "Solar panels turn sunlight into electricity."
LONG = (
    "Solar panels turn sunlight into electricity. Each cell is a thin wafer of silicon, and "
    "when light strikes it, electrons are knocked loose and flow as a current through the wires."
)
#: Speech is far above this; silence and faint noise are far below it.
AUDIBLE_RMS = 500


async def test_speech_is_audible_pcm_of_the_stated_length() -> None:
    said = await synthesize(SHORT)
    assert said.sample_rate == 22050
    assert len(said.pcm) % 2 == 0
    assert said.samples > said.sample_rate // 2  # over half a second of audio
    assert said.duration_ms == round(said.samples * 1000 / said.sample_rate)
    assert speech.rms(said.pcm) > AUDIBLE_RMS


async def test_a_longer_text_takes_longer_to_say() -> None:
    short, long = await synthesize(SHORT), await synthesize(LONG)
    assert long.duration_ms > 2 * short.duration_ms


async def test_a_faster_rate_is_shorter() -> None:
    normal = await synthesize(LONG, rate=175)
    fast = await synthesize(LONG, rate=350)
    assert fast.duration_ms < 0.65 * normal.duration_ms
    assert speech.rms(fast.pcm) > AUDIBLE_RMS


async def test_the_video_speed_makes_the_narration_shorter() -> None:
    normal = voice_for(audio_settings={"speed": 1.0})
    double = voice_for(audio_settings={"speed": 2.0})
    said = [await synthesize(LONG, voice=v.name, rate=v.rate) for v in (normal, double)]
    assert said[1].duration_ms < 0.65 * said[0].duration_ms


async def test_volume_scales_the_amplitude() -> None:
    quiet = speech.rms((await synthesize(SHORT, volume=50)).pcm)
    normal = speech.rms((await synthesize(SHORT, volume=100)).pcm)
    loud = speech.rms((await synthesize(SHORT, volume=200)).pcm)
    assert quiet < 0.7 * normal
    assert loud > 1.4 * normal
    assert speech.rms((await synthesize(SHORT, volume=0)).pcm) == 0


async def test_pitch_raises_the_voice_not_the_length() -> None:
    low, high = await synthesize(SHORT, pitch=10), await synthesize(SHORT, pitch=90)
    assert _fundamental_hz(high) > 1.5 * _fundamental_hz(low)
    assert abs(low.duration_ms - high.duration_ms) < 0.1 * low.duration_ms


async def test_the_wav_file_is_readable_and_holds_the_samples(tmp_path: Path) -> None:
    said = await synthesize(SHORT)
    path = tmp_path / "0.wav"
    path.write_bytes(wav_bytes(said))
    with wave.open(str(path), "rb") as file:
        assert file.getnchannels() == 1
        assert file.getsampwidth() == 2
        assert file.getframerate() == said.sample_rate
        assert file.getnframes() == said.samples
        assert file.readframes(file.getnframes()) == said.pcm
    assert [p.name for p in path.parent.iterdir()] == ["0.wav"]  # no temporary file left


async def test_concurrent_calls_are_serialized_and_each_gets_its_own_audio() -> None:
    texts = [SHORT, LONG, "One.", "Two words.", SHORT + " " + LONG]
    alone = [await synthesize(text) for text in texts]
    together = await asyncio.gather(*(synthesize(text) for text in texts))
    # Two runs of one text differ a little (eSpeak's state carries over from earlier calls: a
    # 9.4 s text came out 24 ms longer after its first run), never by more than 1 %; audio of
    # two texts mixed up would be seconds off.
    for one, other in zip(alone, together, strict=True):
        assert abs(one.duration_ms - other.duration_ms) <= max(20, one.duration_ms // 100)


async def test_synthesis_leaves_the_event_loop_free() -> None:
    synthesis = asyncio.create_task(synthesize(" ".join([LONG] * 8)))
    turns = 0
    while not synthesis.done():
        turns += 1
        await asyncio.sleep(0)
    assert (await synthesis).duration_ms > 60_000
    assert turns > 10  # other tasks ran meanwhile


async def test_languages_and_variants_pick_voices() -> None:
    english = _crossings_per_second(await synthesize(SHORT, voice="en-us"))
    portuguese = _crossings_per_second(await synthesize(SHORT, voice="pt-BR"))
    assert abs(portuguese - english) > 0.05 * english  # other sounds
    female = _fundamental_hz(await synthesize(SHORT, voice="en-us+f3"))
    assert female > 1.5 * _fundamental_hz(await synthesize(SHORT, voice="en-us"))
    fallback = await synthesize(SHORT, voice="en-NZ")  # an unknown region: its language
    assert speech.rms(fallback.pcm) > AUDIBLE_RMS


@pytest.mark.parametrize("name", ["xx", "../../etc/passwd", "", "en\x00"])
async def test_an_unknown_voice_is_a_readable_error(name: str) -> None:
    with pytest.raises(VoiceNotFound, match="is not available: use a language such as"):
        await synthesize(SHORT, voice=name)


async def test_nothing_to_say_is_empty_speech() -> None:
    assert (await synthesize("  \n\t ")).pcm == b""


def test_the_voice_settings_map_onto_espeak_parameters() -> None:
    assert voice_for() == Voice("en", 175, 50, 100)
    profile = {"voice": "en-gb", "variant": "f3", "rate": 200, "pitch": 60}
    audio = {"speed": 1.5, "pitch": 0.5, "volume": 1.5, "language": "fr"}
    assert voice_for(engine_settings=profile, audio_settings=audio) == Voice(
        "en-gb+f3", 300, 30, 150
    )
    # The profile's language, then the video's, choose the voice when no voice is named.
    assert voice_for(profile_language="pt-BR", audio_settings=audio).name == "pt-BR"
    assert voice_for(audio_settings=audio).name == "fr"
    # Out of range or malformed values are clamped or ignored.
    extreme = voice_for(
        engine_settings={"rate": 1000, "pitch": "high", "volume": True},
        audio_settings={"speed": 2.0, "pitch": 2.0, "volume": 2.0},
    )
    assert extreme == Voice("en", 450, 100, 200)
    assert voice_for(audio_settings={"speed": 0.1, "volume": 0}).rate == 80


def test_silence_and_joining_keep_exact_lengths() -> None:
    rate = speech.sample_rate()
    pause = speech.silence(300, rate)
    assert pause.duration_ms == 300
    joined = speech.concatenate([pause, Speech(b"\x01\x00" * 441, rate), pause], rate)
    assert joined.samples == 2 * pause.samples + 441
    assert speech.rms(pause.pcm) == 0


def _crossings_per_second(said: Speech) -> float:
    """How often the waveform crosses zero: higher for a higher voice."""
    samples = array.array("h", said.pcm)
    crossings = sum(1 for a, b in itertools.pairwise(samples) if (a < 0) != (b < 0))
    return crossings * said.sample_rate / len(samples)


def _fundamental_hz(said: Speech) -> float:
    """The voice's pitch: the autocorrelation peak (60-400 Hz) of the loudest frames, median."""
    samples = array.array("h", said.pcm)[::2]
    rate = said.sample_rate / 2
    size, shortest, longest = 512, int(rate / 400), int(rate / 60)
    frames = [samples[i : i + size] for i in range(0, len(samples) - size, size)]
    loudest = sorted(frames, key=lambda frame: sum(v * v for v in frame), reverse=True)[:8]
    estimates = [
        rate
        / max(
            range(shortest, longest),
            key=lambda lag: sum(frame[i] * frame[i + lag] for i in range(size - longest)),
        )
        for frame in loudest
    ]
    return statistics.median(estimates)

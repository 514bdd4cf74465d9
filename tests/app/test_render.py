"""Rendering (app/pipeline/render.py): the MP4 is decoded with the same ffmpeg and checked for its
streams (H.264, AAC, mov_text), its duration (the sum of the segments' and the end card), audible
narration where the segments are and silence between them, the title on screen from the first
frame and each caption while its segment is spoken, and a PNG poster. A render that fails, is
cancelled or is stopped by its progress callback kills ffmpeg and leaves nothing in the output
folder. Videos are small (320 x 180, 10 fps) to keep this fast."""

from __future__ import annotations

import array
import asyncio
import math
import re
import subprocess
import sys
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.pipeline import render, render_process, scene_text, speech
from app.pipeline.render import RenderError, RenderResult, RenderSegment, render_video
from app.pipeline.storyboard import END_CARD_MS
from tests.support.video import FFMPEG, RATE, decoded_audio, rgb_frames, rms, streams

SMALL: dict[str, Any] = {"width": 320, "height": 180, "fps": 10}
LOUD, QUIET = 1000.0, 50.0  # RMS thresholds; the tones are ~5,600 RMS, silence is ~0
END_CARD = END_CARD_MS / 1000
#: Fractions of the frame (left, top, right, bottom): where the title card's title and the
#: captions are drawn.
MIDDLE = (0.05, 0.25, 0.95, 0.75)
CAPTIONS = (0.0, 0.6, 1.0, 0.92)
ABOVE_THE_PROGRESS_BAR = (0.0, 0.0, 1.0, 0.95)

VTT = """WEBVTT

00:00:00.000 --> 00:00:01.000
A title

00:00:01.000 --> 00:00:02.500
The first sentence: with 'quotes', [brackets]; and commas.

00:00:02.500 --> 00:00:04.500
The last one, 100% done.
"""

# --- inputs and decoding ------------------------------------------------------------------


def write_tone(
    path: Path,
    seconds: float,
    frequency: float = 440.0,
    rate: int = 22050,
    *,
    amplitude: int = 8000,
) -> Path:
    """A mono 16-bit sine tone, as eSpeak's WAVs are (mono, 16-bit; any rate works)."""
    count = round(seconds * rate)
    samples = array.array(
        "h",
        (round(amplitude * math.sin(2 * math.pi * frequency * i / rate)) for i in range(count)),
    )
    if sys.byteorder == "big":
        samples.byteswap()
    with wave.open(str(path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(rate)
        file.writeframes(samples.tobytes())
    return path


def write_silence(path: Path, seconds: float, rate: int = 8000) -> Path:
    with wave.open(str(path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(rate)
        file.writeframes(b"\0\0" * round(seconds * rate))
    return path


def text_pixels(video: Path, at: float, region: tuple[float, float, float, float]) -> int:
    """How many pixels of ``region`` in the frame shown at ``at`` seconds are on a sharp edge
    (a step of more than 60 in brightness to the next pixel across or down): the outline of
    text. The generated backgrounds and the slow motion over them have no such edges."""
    width, height = SMALL["width"], SMALL["height"]
    [raw] = rgb_frames(video, (width, height), at=at)
    gray = np.frombuffer(raw, np.uint8).reshape(height, width, 3).astype(int).sum(axis=2) / 3
    left, top, right, bottom = region
    part = gray[
        round(top * height) : round(bottom * height), round(left * width) : round(right * width)
    ]
    across = np.abs(np.diff(part, axis=1))[:-1, :] > 60
    down = np.abs(np.diff(part, axis=0))[:, :-1] > 60
    return int((across | down).sum())


def folder_listing(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- one video with captions, three segments back to back ---------------------------------


@dataclass
class Rendered:
    result: RenderResult
    video: Path
    poster: Path
    progress: list[float]


@pytest.fixture(scope="module")
async def rendered(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    inputs = tmp_path_factory.mktemp("inputs")
    wavs = [
        write_tone(inputs / f"{index}.wav", seconds, frequency)
        for index, (seconds, frequency) in enumerate([(1.0, 330), (1.5, 440), (2.0, 550)])
    ]
    captions = inputs / "captions.vtt"
    captions.write_text(VTT, encoding="utf-8")
    output = tmp_path_factory.mktemp("output")
    progress: list[float] = []

    async def on_progress(fraction: float) -> None:
        progress.append(fraction)

    result = await render_video(
        segments=[
            RenderSegment("A title", 0, 1000),
            RenderSegment("The first sentence: with 'quotes', [brackets]; and commas.", 1000, 2500),
            RenderSegment("The last one, 100% done. %{pts} \\n {x}", 2500, 4500),
        ],
        narration_wavs=wavs,
        captions_vtt=captions,
        output_mp4=output / "video.mp4",
        poster_png=output / "poster.png",
        on_progress=on_progress,
        **SMALL,
    )
    return Rendered(result, output / "video.mp4", output / "poster.png", progress)


def test_the_video_has_h264_video_aac_audio_and_a_soft_subtitle_track(rendered: Rendered) -> None:
    kinds, _ = streams(rendered.video)
    assert kinds == {"Video": "h264", "Audio": "aac", "Subtitle": "mov_text"}


def test_the_duration_is_the_sum_of_the_segments_and_the_end_card(rendered: Rendered) -> None:
    _, duration = streams(rendered.video)
    assert duration == pytest.approx(4.5 + END_CARD, abs=0.5)
    assert len(decoded_audio(rendered.video)) / RATE == pytest.approx(4.5 + END_CARD, abs=0.5)
    assert rendered.result.duration_ms == 4500 + END_CARD_MS
    assert rendered.result.scenes == 4  # the title card, two scenes, the end card


def test_the_narration_is_audible_throughout(rendered: Rendered) -> None:
    samples = decoded_audio(rendered.video)
    for start in (0.1, 1.1, 2.6, 3.9):
        assert rms(samples, start, start + 0.4) > LOUD


def test_the_poster_is_a_png_and_the_output_folder_holds_only_the_two_files(
    rendered: Rendered,
) -> None:
    assert is_png(rendered.poster)
    assert folder_listing(rendered.video.parent) == ["poster.png", "video.mp4"]
    assert rendered.result.size_bytes == rendered.video.stat().st_size
    assert rendered.result.text_on_screen


def test_progress_grows_and_ends_at_one(rendered: Rendered) -> None:
    assert rendered.progress
    assert rendered.progress == sorted(rendered.progress)
    assert all(0 <= fraction <= 1 for fraction in rendered.progress)
    assert rendered.progress[-1] == 1.0


# --- the timeline: pauses between segments, text in sync -----------------------------------


async def test_pauses_are_silent_and_captions_show_only_while_their_segment_plays(
    tmp_path: Path,
) -> None:
    wavs = [write_tone(tmp_path / f"{index}.wav", 1.0, rate=16000) for index in range(2)]
    wavs.append(write_tone(tmp_path / "2.wav", 1.5))  # longer than its segment: cut at its end
    segments = [
        RenderSegment("One", 200, 1200),
        RenderSegment("Two", 1500, 2500),
        RenderSegment("Three", 2800, 3800),
    ]
    video = tmp_path / "out" / "video.mp4"
    result = await render_video(
        segments=segments,
        narration_wavs=wavs,
        captions_vtt=None,
        output_mp4=video,
        poster_png=tmp_path / "out" / "poster.png",
        **SMALL,
    )
    assert result.duration_ms == 3800 + END_CARD_MS
    check_timeline(video)


def check_timeline(video: Path) -> None:
    kinds, duration = streams(video)
    assert kinds == {"Video": "h264", "Audio": "aac"}  # no captions given, no subtitle track
    assert duration == pytest.approx(3.8 + END_CARD, abs=0.1)
    samples = decoded_audio(video)
    for start, end in [(0.0, 0.15), (1.25, 1.45), (2.55, 2.75), (3.85, 3.8 + END_CARD)]:
        assert rms(samples, start, end) < QUIET
    for start, end in [(0.3, 1.1), (1.6, 2.4), (2.9, 3.7)]:
        assert rms(samples, start, end) > LOUD
    # The first segment is the title card: its title is there from the first frame on, through
    # the pause after it. The others' captions show while they are spoken, not in the pause
    # after them, when only their scene's picture holds.
    for title in (0.05, 0.7, 1.35):
        assert text_pixels(video, title, MIDDLE) > 20
    for during in (2.0, 3.3):
        assert text_pixels(video, during, CAPTIONS) > 20
    assert text_pixels(video, 2.7, CAPTIONS) == 0


# --- fonts ----------------------------------------------------------------------------------


async def test_a_given_font_file_is_used_whatever_its_path(tmp_path: Path) -> None:
    # Every character that filter graph syntax cares about, in the font's path.
    odd = copy_a_system_font(tmp_path / "fonts: it's [a], b; c\\d.ttf")
    result = await render_one(tmp_path, font_file=odd)
    assert result.text_on_screen
    assert text_pixels(tmp_path / "out" / "video.mp4", 0.5, MIDDLE) > 20


async def test_without_any_font_the_video_is_rendered_without_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "fonts.conf"
    config.write_text(
        f"<fontconfig><dir>{tmp_path / 'no-fonts'}</dir>"
        f"<cachedir>{tmp_path / 'cache'}</cachedir></fontconfig>"
    )
    monkeypatch.setenv("FONTCONFIG_FILE", str(config))
    monkeypatch.setattr(render, "_fonts_found", set())
    result = await render_one(tmp_path)
    assert not result.text_on_screen
    video = tmp_path / "out" / "video.mp4"
    assert streams(video)[0] == {"Video": "h264", "Audio": "aac"}
    assert text_pixels(video, 0.5, ABOVE_THE_PROGRESS_BAR) == 0


async def test_a_missing_font_file_is_a_render_error(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="font"):
        await render_one(tmp_path, font_file=tmp_path / "missing.ttf")
    assert folder_listing(tmp_path / "out") == []


def copy_a_system_font(target: Path) -> Path:
    fonts = Path("/usr/share/fonts")
    found = sorted(fonts.rglob("*.ttf")) if fonts.is_dir() else []
    if not found:
        pytest.skip("no TrueType font on this machine to copy")
    target.write_bytes(found[0].read_bytes())
    return target


async def render_one(tmp_path: Path, **options: Any) -> RenderResult:
    return await render_video(
        segments=[RenderSegment("Hello", 0, 1000)],
        narration_wavs=[write_tone(tmp_path / "hello.wav", 1.0)],
        captions_vtt=None,
        output_mp4=tmp_path / "out" / "video.mp4",
        poster_png=tmp_path / "out" / "poster.png",
        **SMALL,
        **options,
    )


# --- failures leave nothing ------------------------------------------------------------------


async def test_a_video_whose_filter_graph_is_longer_than_an_argument_may_be_renders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every spoken word adds a few hundred bytes of filters (its highlight); a two-minute
    video's graph passes Linux's 128 KiB limit on one argument, so it goes to ffmpeg in a file."""
    graphs: list[int] = []
    original = render_process.run_ffmpeg

    async def spy(exe: str, args: list[str], **kwargs: Any) -> None:
        if "-/filter_complex" in args:
            graphs.append((kwargs["cwd"] / args[args.index("-/filter_complex") + 1]).stat().st_size)
        await original(exe, args, **kwargs)

    monkeypatch.setattr(render, "run_ffmpeg", spy)
    words = " ".join(f"word{n}" for n in range(24))
    segments, wavs = [], []
    for index in range(40):
        start = index * 600
        spoken = tuple(
            (w, start + 20 * i, start + 20 * (i + 1)) for i, w in enumerate(words.split())
        )
        segments.append(RenderSegment(words, start, start + 500, spoken))
        wavs.append(write_tone(tmp_path / f"{index}.wav", 0.5, rate=8000))
    result = await render_video(
        segments=segments,
        narration_wavs=wavs,
        captions_vtt=None,
        output_mp4=tmp_path / "out" / "video.mp4",
        poster_png=tmp_path / "out" / "poster.png",
        **SMALL,
    )
    assert graphs
    assert graphs[0] > 128 * 1024
    assert result.duration_ms == 39 * 600 + 500 + END_CARD_MS
    assert streams(tmp_path / "out" / "video.mp4")[1] == pytest.approx(
        result.duration_ms / 1000, abs=0.2
    )


async def test_a_missing_narration_file_is_a_readable_error(tmp_path: Path) -> None:
    wavs = [write_tone(tmp_path / "0.wav", 1.0), tmp_path / "missing.wav"]
    with pytest.raises(RenderError) as raised:
        await render_video(
            segments=[RenderSegment("One", 0, 1000), RenderSegment("Two", 1000, 2000)],
            narration_wavs=wavs,
            captions_vtt=None,
            output_mp4=tmp_path / "out" / "video.mp4",
            poster_png=tmp_path / "out" / "poster.png",
            **SMALL,
        )
    assert raised.value.user_message == "The narration audio of part 2 is missing."
    assert folder_listing(tmp_path / "out") == []


async def test_an_ffmpeg_failure_is_a_render_error_with_its_stderr(tmp_path: Path) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x10\x00\x00\x00WAVEnot really a wave file")
    (tmp_path / "out").mkdir()
    with pytest.raises(RenderError) as raised:
        await render_video(
            segments=[RenderSegment("One", 0, 1000)],
            narration_wavs=[broken],
            captions_vtt=None,
            output_mp4=tmp_path / "out" / "video.mp4",
            poster_png=tmp_path / "out" / "poster.png",
            **SMALL,
        )
    assert raised.value.user_message == "The video could not be rendered."
    assert "broken.wav" in raised.value.detail
    assert folder_listing(tmp_path / "out") == []


class Stop(Exception):
    """What a stage's progress callback raises once its job must stop."""


@pytest.mark.parametrize("how", ["cancelled", "callback raises"])
async def test_a_stopped_render_kills_ffmpeg_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    processes: list[asyncio.subprocess.Process] = []
    spawn: Callable[..., Any] = asyncio.create_subprocess_exec

    async def spy(*args: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        process: asyncio.subprocess.Process = await spawn(*args, **kwargs)
        processes.append(process)
        return process

    monkeypatch.setattr(asyncio, "create_subprocess_exec", spy)
    started = asyncio.Event()
    reported: list[float] = []

    async def on_progress(fraction: float) -> None:
        reported.append(fraction)
        started.set()
        if how == "callback raises":
            raise Stop

    rendering = asyncio.ensure_future(
        render_video(
            segments=[RenderSegment("A long one", 0, 600_000)],
            narration_wavs=[write_silence(tmp_path / "long.wav", 600)],
            captions_vtt=None,
            output_mp4=tmp_path / "out" / "video.mp4",
            poster_png=tmp_path / "out" / "poster.png",
            on_progress=on_progress,
            **SMALL,
        )
    )
    async with asyncio.timeout(20):
        await started.wait()
        if how == "cancelled":
            rendering.cancel()
        with pytest.raises(asyncio.CancelledError if how == "cancelled" else Stop):
            await rendering
    assert 0 < reported[0] < 1  # ffmpeg's own progress, mid-render
    encoder = processes[-1]
    assert encoder.returncode is not None
    assert encoder.returncode < 0  # killed by a signal, not finished
    assert folder_listing(tmp_path / "out") == []


def test_segments_must_not_overlap() -> None:
    with pytest.raises(ValueError, match="overlaps"):
        render._timeline(
            [RenderSegment("a", 0, 1000), RenderSegment("b", 900, 2000)],
            [Path("a.wav"), Path("b.wav")],
            320,
            180,
            10,
        )


def test_long_text_is_wrapped_and_made_smaller_to_fit() -> None:
    lines, size = scene_text.layout("word " * 20, 1280, 720)
    assert size == 45
    assert 2 <= len(lines) <= 3
    many, smaller = scene_text.layout("word " * 400, 1280, 720)
    assert smaller < size
    assert len(many) * smaller * 1.25 <= 720 * 0.8 or smaller == 8


async def test_the_narration_is_normalised_to_minus_16_lufs_under_minus_1_dbtp(
    tmp_path: Path,
) -> None:
    """Speech (eSpeak NG's, peaking near full scale), a quiet tone and a hot one all come out
    at -16 LUFS with true peaks at or under -1 dBTP, measured by ffmpeg's EBU R128 meter on the
    MP4's AAC track."""
    said = speech.synthesize_blocking(
        "Coral reefs cover less than one percent of the ocean floor, yet they shelter about a "
        "quarter of all the species that live in the sea."
    )
    (tmp_path / "speech.wav").write_bytes(speech.wav_bytes(said))
    inputs = {
        "speech": (tmp_path / "speech.wav", said.duration_ms),
        "quiet": (write_tone(tmp_path / "quiet.wav", 3.0, amplitude=1500), 3000),
        "hot": (write_tone(tmp_path / "hot.wav", 3.0, amplitude=32000), 3000),
    }
    for name, (wav, length) in inputs.items():
        await render_video(
            segments=[RenderSegment("Narration", 0, length)],
            narration_wavs=[wav],
            captions_vtt=None,
            output_mp4=tmp_path / f"{name}.mp4",
            poster_png=tmp_path / f"{name}.png",
            **SMALL,
        )
        integrated, true_peak = _loudness(tmp_path / f"{name}.mp4")
        assert abs(integrated - (-16.0)) <= 1.0, name
        assert true_peak <= -1.0, name


def _loudness(video: Path) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) from ffmpeg's ebur128 summary."""
    process = subprocess.run(
        [FFMPEG, "-hide_banner", "-nostats", "-i", str(video), "-vn",
         "-af", "ebur128=peak=true", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    summary = process.stderr[process.stderr.rfind("Summary:") :]
    integrated = re.search(r"I:\s+(-?[\d.]+) LUFS", summary)
    peak = re.search(r"Peak:\s+(-?[\d.]+) dBFS", summary)
    assert integrated is not None, summary
    assert peak is not None, summary
    return float(integrated.group(1)), float(peak.group(1))

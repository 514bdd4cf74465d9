"""How long the RENDER stage takes for a 30-second and a 2-minute narration (issue 6, item 8).

    .venv/bin/python bench/bench_render.py [--lengths 30 120] [--repeat 3]
        [--width 1280 --height 720 --fps 25] [--segment-seconds 5]

For each length, writes a synthetic narration into a temporary folder: one 22 050 Hz mono 16-bit
WAV per segment (``--segment-seconds`` each, a sine tone whose pitch changes per segment, as
eSpeak's WAVs are mono 16-bit), back-to-back segments with a sentence of text each, and a WebVTT
file with one cue per segment. Then times `app.pipeline.render.render_video` end to end (H.264 +
AAC encode with the text drawn on screen and the captions as a soft track, the poster frame,
the renames) ``--repeat`` times and reports the median. The first render of the process also
probes the font (one tiny frame), so a warm-up render runs first and is not counted.

The realtime factor is narration seconds per wall-clock second (above 1: faster than realtime).
Prints a Markdown table to paste into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import statistics
import sys
import tempfile
import time
import wave
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.pipeline.render import RenderResult, RenderSegment, render_video

RATE = 22050
SENTENCE = "This is sentence {n} of the narration, long enough to wrap onto a second line."


def write_tone(path: Path, seconds: float, frequency: float) -> None:
    count = round(seconds * RATE)
    period = [round(6000 * math.sin(2 * math.pi * frequency * i / RATE)) for i in range(RATE)]
    samples = b"".join(value.to_bytes(2, "little", signed=True) for value in period)
    with wave.open(str(path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(RATE)
        whole, rest = divmod(count, RATE)  # the tone repeats every second (whole frequencies)
        for _ in range(whole):
            file.writeframes(samples)
        file.writeframes(samples[: rest * 2])


def narration(
    folder: Path, seconds: int, segment_seconds: float
) -> tuple[list[RenderSegment], list[Path], Path]:
    """Back-to-back segments filling ``seconds``, their WAVs and a VTT file."""
    segments: list[RenderSegment] = []
    wavs: list[Path] = []
    cues = ["WEBVTT", ""]
    start = 0
    while start < seconds * 1000:
        end = min(seconds * 1000, start + round(segment_seconds * 1000))
        n = len(segments)
        segments.append(RenderSegment(SENTENCE.format(n=n + 1), start, end))
        wavs.append(folder / f"{n}.wav")
        write_tone(wavs[-1], (end - start) / 1000, 220 + 40 * (n % 8))
        cues += [f"{_vtt_time(start)} --> {_vtt_time(end)}", SENTENCE.format(n=n + 1), ""]
        start = end
    captions = folder / "captions.vtt"
    captions.write_text("\n".join(cues), encoding="utf-8")
    return segments, wavs, captions


def _vtt_time(milliseconds: int) -> str:
    minutes, rest = divmod(milliseconds, 60_000)
    return f"00:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


async def render_once(
    folder: Path, seconds: int, args: argparse.Namespace
) -> tuple[float, RenderResult]:
    segments, wavs, captions = narration(folder, seconds, args.segment_seconds)
    started = time.perf_counter()
    result = await render_video(
        segments=segments,
        narration_wavs=wavs,
        captions_vtt=captions,
        output_mp4=folder / "out" / "video.mp4",
        poster_png=folder / "out" / "poster.png",
        width=args.width,
        height=args.height,
        fps=args.fps,
    )
    return time.perf_counter() - started, result


async def measure(args: argparse.Namespace) -> list[tuple[int, int, float, RenderResult]]:
    rows = []
    with tempfile.TemporaryDirectory() as root:
        await render_once(_folder(Path(root) / "warm-up"), 2, args)
        for seconds in args.lengths:
            timings = []
            for attempt in range(args.repeat):
                folder = _folder(Path(root) / f"{seconds}-{attempt}")
                elapsed, result = await render_once(folder, seconds, args)
                timings.append(elapsed)
            segments = math.ceil(seconds / args.segment_seconds)
            rows.append((seconds, segments, statistics.median(timings), result))
    return rows


def _folder(folder: Path) -> Path:
    folder.mkdir(parents=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[30, 120], help="seconds")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--segment-seconds", type=float, default=5.0)
    args = parser.parse_args()
    rows = asyncio.run(measure(args))
    print(
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
        f"{args.width}x{args.height} at {args.fps} fps, median of {args.repeat}"
    )
    print()
    print("| stage | narration | segments | seconds | realtime factor | MP4 size |")
    print("| --- | --- | --- | --- | --- | --- |")
    for seconds, segments, elapsed, result in rows:
        size = f"{result.size_bytes / 1_000_000:.1f} MB"
        factor = f"{seconds / elapsed:.1f}x"
        print(f"| RENDER | {seconds} s | {segments} | {elapsed:.2f} | {factor} | {size} |")


if __name__ == "__main__":
    main()

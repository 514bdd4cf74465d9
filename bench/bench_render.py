"""How long the RENDER stage takes for narrations of 30 s, 1 min and 2 min, today's renderer
against an earlier one in the same run.

    .venv/bin/python bench/bench_render.py [--lengths 30 60 120] [--repeat 3]
        [--width 1280 --height 720 --fps 25] [--segment-seconds 5]
        [--before REV] [--music] [--preset veryfast]

For each length, writes a synthetic narration into a temporary folder: one 22 050 Hz mono 16-bit
WAV per segment (``--segment-seconds`` each, a sine tone whose pitch changes per segment, as
eSpeak's WAVs are mono 16-bit), segments 300 ms apart (VOICE's pause) with a sentence of text
each and its words evenly timed, and a WebVTT file with one cue per segment. Then times
`app.pipeline.render.render_video` end to end (every audio pass and the encode, the poster
frame, the renames) ``--repeat`` times and reports the median. The first render of the process
also probes the font (one tiny frame), so a warm-up render runs first and is not counted.

``--before REV`` also times ``app/pipeline/render.py`` as it was at git revision ``REV`` (read
with ``git show``, imported as a module of its own: the slides renderer before scenes), on the
same inputs, interleaved with today's so that both see the same machine load. ``--music`` adds a
row for today's renderer with the music bed.

The realtime factor is narration seconds per wall-clock second (above 1: faster than realtime);
the budget for scenes is 2x (a 60 s video in at most 30 s). Prints a Markdown table to paste
into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.pipeline.render import RenderSegment, render_video

ROOT = Path(__file__).resolve().parents[1]
RATE = 22050
PAUSE_MS = 300
SENTENCE = "This is sentence {n} of the narration, long enough to wrap onto a second line."
Renderer = Callable[..., Awaitable[Any]]


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
    """Segments filling ``seconds`` with `PAUSE_MS` between them (each spoken to the end of
    its slot but the pause), with evenly timed words, their WAVs and a VTT file."""
    segments: list[RenderSegment] = []
    wavs: list[Path] = []
    cues = ["WEBVTT", ""]
    start = 0
    while start < seconds * 1000:
        slot_end = min(seconds * 1000, start + round(segment_seconds * 1000))
        end = max(start + 200, slot_end - PAUSE_MS)
        n = len(segments)
        text = SENTENCE.format(n=n + 1)
        words = text.split()
        step = (end - start) // len(words)
        timed = tuple((w, start + i * step, start + (i + 1) * step) for i, w in enumerate(words))
        segments.append(RenderSegment(text, start, end, timed))
        wavs.append(folder / f"{n}.wav")
        write_tone(wavs[-1], (end - start) / 1000, 220 + 40 * (n % 8))
        cues += [f"{_vtt_time(start)} --> {_vtt_time(end)}", text, ""]
        start = slot_end
    captions = folder / "captions.vtt"
    captions.write_text("\n".join(cues), encoding="utf-8")
    return segments, wavs, captions


def _vtt_time(milliseconds: int) -> str:
    minutes, rest = divmod(milliseconds, 60_000)
    return f"00:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


async def render_once(
    render: Renderer, folder: Path, seconds: int, args: argparse.Namespace, options: dict[str, Any]
) -> tuple[float, Any]:
    segments, wavs, captions = narration(folder, seconds, args.segment_seconds)
    if "words" not in options:  # an earlier renderer: its own segment type, no words
        module = sys.modules[render.__module__]
        segments = [module.RenderSegment(s.text, s.start_ms, s.end_ms) for s in segments]
    started = time.perf_counter()
    result = await render(
        segments=segments,
        narration_wavs=wavs,
        captions_vtt=captions,
        output_mp4=folder / "out" / "video.mp4",
        poster_png=folder / "out" / "poster.png",
        width=args.width,
        height=args.height,
        fps=args.fps,
        preset=args.preset,
        **{key: value for key, value in options.items() if key != "words"},
    )
    return time.perf_counter() - started, result


def renderers(args: argparse.Namespace) -> list[tuple[str, Renderer, dict[str, Any]]]:
    """What to time: (name, render function, its extra options)."""
    found: list[tuple[str, Renderer, dict[str, Any]]] = []
    if args.before:
        found.append((f"slides ({args.before})", _earlier(args.before).render_video, {}))
    found.append(("scenes", render_video, {"words": True, "seed": "bench"}))
    if args.music:
        found.append(
            ("scenes + music", render_video, {"words": True, "seed": "bench", "music": True})
        )
    return found


def _earlier(revision: str) -> ModuleType:
    """``app/pipeline/render.py`` at ``revision``, as a module of its own."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{revision}:app/pipeline/render.py"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    folder = Path(tempfile.mkdtemp(prefix="render-before-"))
    (folder / "render_before.py").write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("render_before", folder / "render_before.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["render_before"] = module
    spec.loader.exec_module(module)
    return module


async def measure(args: argparse.Namespace) -> list[tuple[str, int, int, float, Any]]:
    rows = []
    chosen = renderers(args)
    with tempfile.TemporaryDirectory() as root:
        for name, render, options in chosen:
            await render_once(render, _folder(Path(root) / f"warm-up-{name}"), 2, args, options)
        for seconds in args.lengths:
            timings: dict[str, list[float]] = {name: [] for name, _, _ in chosen}
            results: dict[str, Any] = {}
            for attempt in range(args.repeat):
                for name, render, options in chosen:  # interleaved: the same load for each
                    folder = _folder(Path(root) / f"{name}-{seconds}-{attempt}")
                    elapsed, results[name] = await render_once(
                        render, folder, seconds, args, options
                    )
                    timings[name].append(elapsed)
            segments = math.ceil(seconds / args.segment_seconds)
            for name, _, _ in chosen:
                median = statistics.median(timings[name])
                rows.append((name, seconds, segments, median, results[name]))
    return rows


def _folder(folder: Path) -> Path:
    folder.mkdir(parents=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[30, 60, 120], help="seconds")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--segment-seconds", type=float, default=5.0)
    parser.add_argument("--before", help="also time render.py at this git revision")
    parser.add_argument("--music", action="store_true", help="also time scenes with music")
    parser.add_argument("--preset", default="veryfast", help="x264 preset")
    args = parser.parse_args()
    rows = asyncio.run(measure(args))
    print(
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
        f"{args.width}x{args.height} at {args.fps} fps, x264 {args.preset}, "
        f"median of {args.repeat}; load average before: {os.getloadavg()[0]:.1f}"
    )
    print()
    print("| renderer | narration | segments | seconds | x realtime | share of realtime | MP4 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, seconds, segments, elapsed, result in rows:
        size = f"{result.size_bytes / 1_000_000:.1f} MB"
        print(
            f"| {name} | {seconds} s | {segments} | {elapsed:.2f} | {seconds / elapsed:.1f}x "
            f"| {elapsed / seconds:.2f} | {size} |"
        )


if __name__ == "__main__":
    main()

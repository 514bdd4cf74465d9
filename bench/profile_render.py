"""What each part of the scenes' filter graph costs: the same 60 s timeline rendered with one
part added at a time, and with other ways of doing the motion.

    .venv/bin/python bench/profile_render.py [--seconds 60] [--segment-seconds 5] [--repeat 2]
        [--width 1280 --height 720 --fps 25]

The graph is the renderer's own (`app.pipeline.scene_graph.video_graph`, the storyboard of
`app.pipeline.storyboard`, generated backdrops, captions with the spoken word highlighted from
`app.pipeline.scene_text`), video only: no audio, no loudness passes. Variants:

* ``stills`` — each scene's still repeated, cropped to size, no motion;
* ``pan`` — a moving crop only (no per-frame scaling);
* ``zoom + pan`` — the renderer's motion: per-frame ``scale`` then a moving ``crop``;
* ``zoompan`` — ffmpeg's ``zoompan`` filter for the same zoom;
* ``+ captions`` / ``+ cross-fades`` — the renderer's motion with the text, then with fades.

Each is timed to ``-f null`` (the filters alone) and through libx264 at several presets. Prints
a Markdown table (median seconds of ``--repeat`` runs) to paste into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.ffmpeg import bundled_ffmpeg
from app.pipeline import scene_graph, scene_text
from app.pipeline.captions import Cue, word_cues
from app.pipeline.storyboard import Scene, SceneKind, plan_scenes
from app.pipeline.theme import Theme, theme_for

Motion = Callable[[Scene, Theme, tuple[int, int], int], str]
PRESETS = ("ultrafast", "superfast", "veryfast", "faster")


def still(scene: Scene, theme: Theme, size: tuple[int, int], fps: int) -> str:
    width, height = size
    return (
        f"loop=loop={scene.length - 1}:size=1,setpts=N/({fps}*TB),fps={fps},"
        f"crop={width}:{height},setsar=1,format=yuv420p"
    )


def pan(scene: Scene, theme: Theme, size: tuple[int, int], fps: int) -> str:
    width, height = size
    last = max(1, scene.length - 1)
    return (
        f"loop=loop={scene.length - 1}:size=1,setpts=N/({fps}*TB),fps={fps},"
        f"crop={width}:{height}:x='(iw-ow)*n/{last}':y='(ih-oh)*(1-n/{last})',"
        "setsar=1,format=yuv420p"
    )


def zoompan(scene: Scene, theme: Theme, size: tuple[int, int], fps: int) -> str:
    width, height = size
    zoom = scene_graph.OVERSCAN - 1
    return (
        f"zoompan=z='1+{zoom:.3f}*on/{scene.length}':d={scene.length}:s={width}x{height}"
        f":fps={fps}:x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)',setsar=1,format=yuv420p"
    )


def timeline(
    seconds: int, segment_seconds: float, fps: int
) -> tuple[list[str], list[int], list[list[Cue]]]:
    texts, bounds = ["A title for the profile"], [0]
    cues: list[list[Cue]] = [[]]
    start = round(segment_seconds * 1000)
    sentence = "This is sentence {n} of the narration, long enough to wrap onto a second line."
    while start < seconds * 1000:
        end = min(seconds * 1000, start + round(segment_seconds * 1000)) - 300
        text = sentence.format(n=len(texts))
        words = text.split()
        step = (end - start) // len(words)
        spoken = [(w, start + i * step, start + (i + 1) * step) for i, w in enumerate(words)]
        texts.append(text)
        bounds.append(start)
        cues.append(word_cues(spoken, start, end))
        start = end + 300
    bounds.append(seconds * 1000 - 300)
    return texts, bounds, cues


def graph(args: argparse.Namespace, work: Path, motion: Motion, *, text: bool, fades: bool) -> str:
    texts, bounds, cues = timeline(args.seconds, args.segment_seconds, args.fps)
    scenes = plan_scenes(texts, bounds, cues, [None] * len(texts), fps=args.fps)
    if not fades:  # cuts instead: the same scenes, the same length
        scenes = [dataclasses.replace(s, fade=0) for s in scenes]
    theme, size, files = theme_for("profile"), (args.width, args.height), scene_text.TextFiles(work)

    def texts_of(scene: Scene) -> list[str]:
        if not text or scene.kind is not SceneKind.NARRATION:
            return []
        offset = scene.start * 1000 / args.fps
        return scene_text.captions(scene.cues, offset, files, "font=Sans", size, theme)

    original = scene_graph._motion
    setattr(scene_graph, "_motion", motion)  # noqa: B010 (mypy: a module's function, replaced)
    try:
        return scene_graph.video_graph(
            scenes, theme=theme, size=size, fps=args.fps, picture_input=lambda s: None,
            text=texts_of,
        )  # fmt: skip
    finally:
        setattr(scene_graph, "_motion", original)  # noqa: B010


def run(exe: str, work: Path, filters: str, output: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        [exe, "-v", "error", "-y", "-filter_complex", filters, "-map", "[v]", *output],
        cwd=work, check=True,
    )  # fmt: skip
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--segment-seconds", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=int, default=25)
    args = parser.parse_args()
    exe = asyncio.run(bundled_ffmpeg())
    renderer = scene_graph._motion
    variants: list[tuple[str, Motion, bool, bool]] = [
        ("stills", still, False, False),
        ("pan", pan, False, False),
        ("zoom + pan (the renderer's)", renderer, False, False),
        ("zoompan", zoompan, False, False),
        ("zoom + pan + captions", renderer, True, False),
        ("zoom + pan + captions + cross-fades (the renderer)", renderer, True, True),
    ]
    outputs = [("filters only", ["-f", "null", "-"])]
    outputs += [
        (f"x264 {preset}", ["-c:v", "libx264", "-preset", preset, "-crf", "23",
                            "-pix_fmt", "yuv420p", "-g", str(2 * args.fps), "out.mp4"])
        for preset in PRESETS
    ]  # fmt: skip
    print(
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
        f"{args.seconds} s at {args.width}x{args.height}, {args.fps} fps, scenes of "
        f"{args.segment_seconds:g} s; median of {args.repeat}; load average before: "
        f"{os.getloadavg()[0]:.1f}"
    )
    print()
    print("| graph | " + " | ".join(name for name, _ in outputs) + " |")
    print("| --- |" + " --- |" * len(outputs))
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for name, motion, text, fades in variants:
            filters = graph(args, work, motion, text=text, fades=fades)
            cells = []
            for label, output in outputs:
                if label != "filters only" and not text and motion is not renderer:
                    cells.append("")  # the encoder's cost is measured on the real graph
                    continue
                times = [run(exe, work, filters, output) for _ in range(args.repeat)]
                cells.append(f"{statistics.median(times):.2f} s")
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()

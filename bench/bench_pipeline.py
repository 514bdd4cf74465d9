"""How long each stage of a real generation run takes, for a ~30-second and a ~2-minute narration.

    .venv/bin/python bench/bench_pipeline.py [--words 80 370] [--repeat 3]

Runs the stages a worker runs — SCRIPT (from a description), VOICE (eSpeak NG), CAPTIONS
(WebVTT + SRT) and RENDER (ffmpeg: scenes with captions, H.264 + AAC, soft subtitles, poster) — one
after the other on a description of about ``--words`` words, with the default settings (1280 x
720, 25 fps), into a temporary media folder, and reports each stage's median wall-clock time
over ``--repeat`` runs after one warm-up run (the first render probes the font; the first
synthesis loads eSpeak's data). No database: VOICE uses the video's own language.

Prints a Markdown table to paste into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.pipeline.captions import TimedCaptions
from app.pipeline.render_stage import FfmpegRender
from app.pipeline.voice import EspeakVoice
from app.settings import load_settings
from app.worker.pipeline import ProgressMeter, Stage, StageContext, VideoInput
from app.worker.stages import ScriptFromDescription
from db.models import JobStage, VideoInputType

SENTENCES = [
    "Sunlight knocks electrons loose in a thin layer of silicon.",
    "Because the layer is doped on both sides, the loose electrons can only flow one way.",
    "That flow is a current, and a panel is many such cells wired together.",
    "An inverter turns the panel's direct current into the alternating current a house uses.",
    "Most inverters also track the point at which the panel gives the most power.",
    "Panels facing south collect the most light over a year.",
]


def description(words: int) -> str:
    text: list[str] = []
    while sum(len(sentence.split()) for sentence in text) < words:
        text.append(SENTENCES[len(text) % len(SENTENCES)])
        if len(text) % 4 == 0:
            text.append("\n\n")
    return " ".join(text)


async def run_once(words: int, media_dir: Path) -> tuple[dict[JobStage, float], dict[str, Any]]:
    settings = load_settings(
        media_dir=media_dir, render_width=1280, render_height=720, render_fps=25
    )
    stages: list[Stage] = [
        ScriptFromDescription(settings),
        EspeakVoice(settings),
        TimedCaptions(settings),
        FfmpegRender(settings),
    ]
    video = VideoInput(
        id=uuid.uuid4(),
        title="How solar panels work",
        description=description(words),
        input_type=VideoInputType.DESCRIPTION,
        source_url=None,
        voice_profile_id=None,
        audio_settings={"speed": 1.0, "pitch": 1.0, "volume": 1.0, "language": "en"},
    )
    job_id = uuid.uuid4()
    results: dict[JobStage, dict[str, Any]] = {}
    times: dict[JobStage, float] = {}
    for index, stage in enumerate(stages):
        context = StageContext(
            job_id=job_id,
            attempt=1,
            stage_index=index,
            meter=ProgressMeter([1.0] * len(stages)),
            stopped=lambda: None,
        )
        started = time.perf_counter()
        results[stage.name] = await stage.run(context, video, results)
        times[stage.name] = time.perf_counter() - started
    facts = {
        "segments": len(results[JobStage.SCRIPT]["segments"]),
        "narration_s": results[JobStage.VOICE]["durationMs"] / 1000,
        "mp4_mb": results[JobStage.RENDER]["sizeBytes"] / 1_000_000,
    }
    return times, facts


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, nargs="+", default=[80, 370])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="studio-bench-") as folder:
        await run_once(20, Path(folder))  # warm-up: eSpeak's data, the font probe
        for words in args.words:
            runs = [await run_once(words, Path(folder)) for _ in range(args.repeat)]
            facts = runs[-1][1]
            medians = {
                stage: statistics.median(times[stage] for times, _ in runs) for stage in JobStage
            }
            rows.append((words, facts, medians))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.machine()}, Python "
        f"{platform.python_version()}, load average {load:.1f}; median of {args.repeat}"
    )
    print()
    print("| narration | segments | SCRIPT | VOICE | CAPTIONS | RENDER | whole run | MP4 |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for _, facts, medians in rows:
        total = sum(medians.values())
        print(
            f"| {facts['narration_s']:.1f} s | {facts['segments']} "
            + "".join(f"| {medians[stage]:.3f} s " for stage in JobStage)
            + f"| {total:.2f} s ({facts['narration_s'] / total:.1f}x realtime) "
            f"| {facts['mp4_mb']:.1f} MB |"
        )


if __name__ == "__main__":
    asyncio.run(main())

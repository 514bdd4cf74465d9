"""Frames of two rendered videos, for a person to look at: bench/frames/*.jpg.

    .venv/bin/python bench/render_frames.py [--out bench/frames]

Runs the worker's own stages (SCRIPT, VOICE with the neural voice ``--neural-voice``, by default
``en_US-joe-medium`` from the ``neural`` extra, or eSpeak NG with ``--neural-voice ""``,
CAPTIONS, RENDER at the default 1280 x 720, 25 fps) for a described video and for a URL video
of a page served on 127.0.0.1 whose ``og:image`` and article ``<img>`` are pictures made with
ffmpeg (two views of the Mandelbrot set). From each MP4 it writes four JPEG frames (quality 5):
the middle of the title card and of the first two scenes, and the end card.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.ffmpeg import bundled_ffmpeg
from app.pipeline.captions import TimedCaptions
from app.pipeline.render_stage import FfmpegRender
from app.pipeline.voice import SynthesizedVoice
from app.settings import Settings, load_settings
from app.worker.pipeline import ProgressMeter, StageContext, VideoInput
from app.worker.stages import ScriptFromDescription
from db.models import JobStage, VideoInputType
from tests.support.browser import serve

DESCRIPTION = (
    "Coral reefs cover less than one percent of the ocean floor. Yet they shelter about a "
    "quarter of all the species that live in the sea.\n\n"
    "When the water grows too warm, corals push out the algae that feed them and turn white. "
    "A bleached reef can recover, if the heat does not last.\n\n"
    "Divers and scientists now grow young corals in nurseries and plant them back on the reef."
)
PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Fractals in nature</title>
<meta property="og:image" content="/pictures/seahorse.png"></head><body><article>
<h1>Fractals in nature</h1>
<p>A fractal repeats its shape at every scale. Zoom into the edge of the Mandelbrot set and the
same spirals appear again and again.</p>
<img src="/pictures/spiral.png" width="1280" height="720" alt="">
<p>Ferns, coastlines and river deltas are fractal too. Each branch looks like a smaller copy of
the whole plant.</p>
</article></body></html>"""
#: (file name, the Mandelbrot set's centre and radius): two views of it.
PICTURES = {
    "seahorse.png": (-0.745, 0.105, 0.02),
    "spiral.png": (-0.7436, 0.1318, 0.002),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "frames")
    parser.add_argument("--neural-voice", default="en_US-joe-medium")
    args = parser.parse_args()
    exe = asyncio.run(bundled_ffmpeg())
    args.out.mkdir(parents=True, exist_ok=True)
    pictures = {name: mandelbrot(exe, *view) for name, view in PICTURES.items()}
    with tempfile.TemporaryDirectory() as folder, serve(site(pictures)) as base:
        settings = load_settings(
            media_dir=Path(folder),
            fetch_allowed_hosts="127.0.0.1",
            neural_voice=args.neural_voice or None,
        )
        described = video(VideoInputType.DESCRIPTION, title="Coral reefs", description=DESCRIPTION)
        from_page = video(VideoInputType.URL, title="From the web", source_url=f"{base}/page")
        for name, made in (("description", described), ("page", from_page)):
            results = asyncio.run(run_stages(settings, made))
            mp4 = settings.resolved_media_dir / results[JobStage.RENDER]["mediaPath"]
            voice, render = results[JobStage.VOICE], results[JobStage.RENDER]
            seconds, share = render["_seconds"], render["_seconds"] * 1000 / render["durationMs"]
            print(
                f"{name}: {render['durationMs'] / 1000:.1f} s of video, voice "
                f"{voice.get('engine', '?')}/{voice.get('voice', '?')}, rendered in "
                f"{seconds:.1f} s ({share:.2f} x real time)"
            )
            timings = results[JobStage.VOICE]["timings"]
            moments = {
                "1-title": (timings[0]["startMs"] + timings[0]["endMs"]) / 2000,
                "2-scene": (timings[1]["startMs"] + timings[1]["endMs"]) / 2000,
                "3-scene": (timings[2]["startMs"] + timings[2]["endMs"]) / 2000,
                "4-end": results[JobStage.RENDER]["durationMs"] / 1000 - 0.5,
            }
            for label, seconds in moments.items():
                target = args.out / f"{name}-{label}.jpg"
                subprocess.run(
                    [exe, "-v", "error", "-y", "-ss", f"{seconds:.3f}", "-i", str(mp4),
                     "-frames:v", "1", "-q:v", "5", "-update", "1", str(target)],
                    check=True,
                )  # fmt: skip
                print(f"{target} ({target.stat().st_size // 1000} kB) at {seconds:.1f} s")


async def run_stages(settings: Settings, made: VideoInput) -> dict[JobStage, dict[str, Any]]:
    results: dict[JobStage, dict[str, Any]] = {}
    job_id = uuid.uuid4()
    stages = (
        ScriptFromDescription(settings),
        SynthesizedVoice(settings),
        TimedCaptions(settings),
        FfmpegRender(settings),
    )
    for stage in stages:
        context = StageContext(
            job_id=job_id, attempt=1, stage_index=0, meter=ProgressMeter([1.0]),
            stopped=lambda: None,
        )  # fmt: skip
        started = time.perf_counter()
        results[stage.name] = await stage.run(context, made, results)
        results[stage.name]["_seconds"] = time.perf_counter() - started
    return results


def video(input_type: VideoInputType, **fields: Any) -> VideoInput:
    values: dict[str, Any] = {
        "id": uuid.UUID(int=len(fields.get("title", "")) + 7),  # the same theme each run
        "description": None,
        "input_type": input_type,
        "source_url": None,
        "voice_profile_id": None,
        "audio_settings": {"speed": 1.0, "language": "en"},
    }
    return VideoInput(**(values | fields))


def mandelbrot(exe: str, x: float, y: float, radius: float) -> bytes:
    """A 1280 x 720 PNG of the Mandelbrot set around (``x``, ``y``)."""
    source = f"mandelbrot=s=1280x720:start_x={x}:start_y={y}:start_scale={radius}:maxiter=2000"
    return subprocess.run(
        [exe, "-v", "error", "-f", "lavfi", "-i", source, "-frames:v", "1",
         "-f", "image2pipe", "-c:v", "png", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip


def site(pictures: dict[str, bytes]) -> Starlette:
    async def page(request: Request) -> Response:
        return Response(PAGE, media_type="text/html")

    async def picture(request: Request) -> Response:
        return Response(pictures[request.path_params["name"]], media_type="image/png")

    return Starlette(routes=[Route("/page", page), Route("/pictures/{name}", picture)])


if __name__ == "__main__":
    main()

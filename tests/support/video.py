"""Checking a rendered MP4 by decoding it with the ffmpeg the renderer uses."""

from __future__ import annotations

import array
import math
import re
import subprocess
import sys
from pathlib import Path

import imageio_ffmpeg  # type: ignore[import-untyped]

FFMPEG = str(imageio_ffmpeg.get_ffmpeg_exe())
RATE = 8000  # decoded audio is checked at this rate


def streams(video: Path) -> tuple[dict[str, str], float]:
    """The codec of each stream kind (``Video``, ``Audio``, ``Subtitle``) and the duration in
    seconds, from what ``ffmpeg -i`` prints about its input."""
    info = subprocess.run(
        [FFMPEG, "-hide_banner", "-i", str(video)], capture_output=True, text=True, check=False
    ).stderr
    kinds = dict(re.findall(r"Stream #0:\d+\S*: (Video|Audio|Subtitle): (\w+)", info))
    duration = re.search(r"Duration: (\d+):(\d+):(\d+\.\d+)", info)
    assert duration is not None, info
    hours, minutes, seconds = duration.groups()
    return kinds, int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def decoded_audio(video: Path) -> array.array[int]:
    """The audio track decoded to mono 16-bit PCM at `RATE`."""
    pcm = decode(video, "-map", "0:a", "-ac", "1", "-ar", str(RATE), "-f", "s16le")
    samples = array.array("h", pcm)
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def rms(samples: array.array[int], start: float, end: float) -> float:
    window = samples[round(start * RATE) : round(end * RATE)]
    assert len(window) > 0
    return math.sqrt(sum(sample * sample for sample in window) / len(window))


def rgb_frames(video: Path, size: tuple[int, int], *, at: float | None = None) -> list[bytes]:
    """Frames of ``video`` as raw RGB at ``size``: the one shown at ``at`` seconds, or all."""
    width, height = size
    picked = ["-frames:v", "1"] if at is not None else []
    raw = decode(video, *picked, "-vf", f"scale={width}:{height}", "-f", "rawvideo",
                 "-pix_fmt", "rgb24", seek=at or 0.0)  # fmt: skip
    frame = width * height * 3
    assert raw, "no frames decoded"
    assert len(raw) % frame == 0, len(raw)
    return [raw[start : start + frame] for start in range(0, len(raw), frame)]


def decode(video: Path, *output: str, seek: float = 0.0) -> bytes:
    """What ffmpeg writes to its standard output with these output options."""
    command = [FFMPEG, "-v", "error", "-ss", str(seek), "-i", str(video), *output, "-"]
    return subprocess.run(command, capture_output=True, check=True).stdout

"""Loudness normalisation of the narration: -16 LUFS integrated, true peaks at or under -1 dBTP.

Speech from the two engines comes out at different levels (eSpeak NG peaks near full scale,
the neural voice several dB under it), and neither is at the level that players and platforms
expect of spoken content. The render measures the narration first with ffmpeg's ``loudnorm``
(EBU R128) in a quick audio-only pass, then applies it again with those measurements in
*linear* mode: one gain for the whole narration, so the voice keeps its dynamics (``loudnorm``
itself falls back to gentle limiting only when the gain would push a peak past the ceiling).
A narration that is silent throughout is left as it is; one shorter than about 3 s (loudnorm's
measuring window) may come out under the target.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import deque
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

TARGET_LUFS = -16.0
TRUE_PEAK_DBTP = -1.0
LOUDNESS_RANGE = 11.0
#: loudnorm's own ceiling sits a dB under the goal: the AAC encoder that follows overshoots
#: true peaks by a few tenths of a dB on speech.
_CEILING = TRUE_PEAK_DBTP - 1.0
_TARGET = f"I={TARGET_LUFS:g}:TP={_CEILING:g}:LRA={LOUDNESS_RANGE:g}"


class LoudnessError(Exception):
    """The measuring pass failed; ``detail`` is ffmpeg's stderr, for the logs."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class Measured:
    """``loudnorm``'s first-pass figures, as it prints them."""

    input_i: float
    input_tp: float
    input_lra: float
    input_thresh: float
    target_offset: float


async def measure(exe: str, inputs: list[str], graph: str, label: str, cwd: Path) -> Measured:
    """The loudness of the audio ``graph`` leaves in ``[label]``, from ``inputs``."""
    args = [
        "-hide_banner", "-nostdin", "-nostats", "-loglevel", "info", *inputs,
        "-filter_complex", f"{graph};[{label}]loudnorm={_TARGET}:print_format=json[measured]",
        "-map", "[measured]", "-f", "null", "-",
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        exe,
        *args,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, stderr = await process.communicate()
    except BaseException:
        if process.returncode is None:
            with suppress(ProcessLookupError):
                process.kill()
        await process.wait()
        raise
    text = stderr.decode(errors="replace")
    if process.returncode != 0:
        raise LoudnessError("\n".join(deque(text.splitlines(), maxlen=20)))
    return _parse(text)


def normalise(measured: Measured) -> str:
    """The filter that brings audio measured as ``measured`` to the target (``anull`` for
    silence, which has no loudness to correct)."""
    if not math.isfinite(measured.input_i) or not math.isfinite(measured.input_tp):
        return "anull"
    return (
        f"loudnorm={_TARGET}:measured_I={measured.input_i:.2f}:"
        f"measured_TP={measured.input_tp:.2f}:measured_LRA={measured.input_lra:.2f}:"
        f"measured_thresh={measured.input_thresh:.2f}:offset={measured.target_offset:.2f}:"
        "linear=true,aresample=48000"  # loudnorm works at 192 kHz
    )


def _parse(stderr: str) -> Measured:
    """The JSON block ``loudnorm`` prints last."""
    start, end = stderr.rfind("{"), stderr.rfind("}")
    if start < 0 or end < start:
        raise LoudnessError(stderr[-2000:])
    try:
        figures = json.loads(stderr[start : end + 1])
        return Measured(
            input_i=float(figures["input_i"]),
            input_tp=float(figures["input_tp"]),
            input_lra=float(figures["input_lra"]),
            input_thresh=float(figures["input_thresh"]),
            target_offset=float(figures["target_offset"]),
        )
    except (ValueError, KeyError) as exc:
        raise LoudnessError(stderr[-2000:]) from exc

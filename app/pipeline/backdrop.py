"""Abstract backgrounds generated from a video's theme, for scenes without a picture.

A backdrop is a gradient between two of the theme's colours, running in a direction of its own,
with a few soft round shapes of light on it, each with its own place, size and colour. It is one
ffmpeg ``geq`` frame computed at an eighth of the size (the picture is smooth, so nothing is
lost) and scaled up with bicubic filtering: milliseconds, whatever the frame size. The scene
then moves over it like over a photo (`app.pipeline.scene_graph`).
"""

from __future__ import annotations

import math

from app.pipeline.theme import Draw, Theme

#: Low-resolution frame the backdrop is computed at: 1/8 of the video's size, at least this.
MIN_SIDE = 16
BLOBS = 4
#: No channel of a backdrop is brighter: white text always stands out from it.
BRIGHTEST = 205


def backdrop_source(theme: Theme, key: object, size: tuple[int, int], fps: int) -> str:
    """A filter chain (no inputs) that outputs one frame of ``size``: ``key``'s backdrop."""
    width, height = size
    small_w, small_h = max(MIN_SIDE, width // 8), max(MIN_SIDE, height // 8)
    draw = theme.draw("backdrop", key)
    start, end = (theme.dark, theme.mid) if draw.unit() < 0.5 else (theme.mid, theme.dark)
    angle = draw.between(0, 2 * math.pi)
    blobs = [_blob(draw, theme, small_w, small_h) for _ in range(BLOBS)]
    channels = []
    for channel in range(3):
        base = _lerp(
            _channel(start, channel), _channel(end, channel), _ramp(angle, small_w, small_h)
        )
        light = "+".join(f"{_channel(colour, channel) * strength:.1f}*{shape}"
                         for shape, colour, strength in blobs)  # fmt: skip
        channels.append(f"clip({base}+{light},0,{BRIGHTEST})")
    red, green, blue = channels
    return (
        f"nullsrc=s={small_w}x{small_h}:r={fps}:d={1 / fps:.6f},format=gbrp,"
        f"geq=r='{red}':g='{green}':b='{blue}',"
        f"scale={width}:{height}:flags=bicubic,format=yuv420p"
    )


def _blob(draw: Draw, theme: Theme, width: int, height: int) -> tuple[str, str, float]:
    """A soft disc: its shape (0 to 1 at each pixel), its colour and how strongly it lights."""
    x, y = draw.between(0, width), draw.between(0, height)
    radius = draw.between(0.12, 0.35) * width
    colour = (theme.light, theme.mid, theme.accent)[draw.choice(3)]
    strength = draw.between(0.25, 0.55)
    shape = f"exp(-(pow(X-{x:.1f},2)+pow(Y-{y:.1f},2))/{radius * radius:.1f})"
    return shape, colour, strength


def _ramp(angle: float, width: int, height: int) -> str:
    """0 to 1 across the frame along ``angle``."""
    dx, dy = math.cos(angle), math.sin(angle)
    reach = abs(dx) * width / 2 + abs(dy) * height / 2
    along = f"(X-{width / 2:.1f})*{dx:.4f}+(Y-{height / 2:.1f})*{dy:.4f}"
    return f"clip(0.5+({along})/{2 * reach:.2f},0,1)"


def _lerp(a: int, b: int, position: str) -> str:
    return f"({a}+{b - a}*{position})"


def _channel(colour: str, index: int) -> int:
    return int(colour[2 + 2 * index : 4 + 2 * index], 16)

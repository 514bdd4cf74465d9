"""A video's colours and motion, derived from a seed (the video's id), so that two videos do not
look alike and one video looks the same each time it is rendered.

The seed's SHA-256 picks a hue; the palette is built around it (two dark background colours
and a lighter one for the generated backgrounds, a complementary accent for the word being
spoken and the progress bar). `Theme.draw` gives each scene its own deterministic numbers
(where its gradient runs, where its soft shapes sit, which way its picture pans and zooms).
"""

from __future__ import annotations

import colorsys
import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Theme:
    seed: str
    hue: float  # 0 to 1
    dark: str  # ffmpeg colours, 0xRRGGBB
    mid: str
    light: str
    accent: str

    def draw(self, *key: object) -> Draw:
        """Numbers for one use (a scene, a card) of this theme, the same for the same ``key``."""
        return Draw(_digest(self.seed, *key))


def theme_for(seed: str) -> Theme:
    hue = int.from_bytes(_digest(seed)[:2], "big") / 65536
    warmth = _digest(seed, "warmth")[0] / 255  # how far the palette spreads around its hue
    spread = 0.06 + 0.12 * warmth
    return Theme(
        seed=seed,
        hue=hue,
        dark=_colour(hue, 0.20, 0.55),
        mid=_colour(hue + spread, 0.36, 0.55),
        light=_colour(hue - spread, 0.52, 0.45),
        accent=_colour(hue + 0.5, 0.62, 0.90),
    )


class Draw:
    """A stream of deterministic numbers from a digest (extended by hashing when used up)."""

    def __init__(self, digest: bytes) -> None:
        self._bytes = digest
        self._used = 0

    def unit(self) -> float:
        """A number in [0, 1)."""
        if self._used + 2 > len(self._bytes):
            self._bytes += hashlib.sha256(self._bytes).digest()
        value = int.from_bytes(self._bytes[self._used : self._used + 2], "big") / 65536
        self._used += 2
        return value

    def between(self, low: float, high: float) -> float:
        return low + (high - low) * self.unit()

    def choice(self, count: int) -> int:
        return min(count - 1, int(self.unit() * count))


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).digest()


def _colour(hue: float, lightness: float, saturation: float) -> str:
    red, green, blue = colorsys.hls_to_rgb(hue % 1.0, lightness, saturation)
    return "0x" + "".join(f"{round(channel * 255):02x}" for channel in (red, green, blue))

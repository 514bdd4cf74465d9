"""What a picture's first bytes say it is: JPEG, PNG, WebP or GIF, and its width and height.

Read before anything decodes the picture, so that a file that only claims to be an image (an
HTML error page served as ``image/png``), or whose header announces a frame too large to decode
safely (a "decompression bomb": a few kilobytes that inflate to gigabytes), is refused for
what its bytes are, whatever its ``Content-Type`` said.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass


@dataclass(frozen=True)
class ImageHeader:
    format: str  # "jpeg", "png", "webp" or "gif"
    width: int
    height: int


def read_header(data: bytes) -> ImageHeader | None:
    """The format and size ``data`` starts with, or ``None`` when it is none of the four (or
    its header is cut short or malformed)."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
            width, height = struct.unpack(">II", data[16:24])
            return ImageHeader("png", width, height)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            width, height = struct.unpack("<HH", data[6:10])
            return ImageHeader("gif", width, height)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp(data)
        if data.startswith(b"\xff\xd8\xff"):
            return _jpeg(data)
    except struct.error:
        return None
    return None


def _webp(data: bytes) -> ImageHeader | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return ImageHeader("webp", width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L" and data[20:21] == b"\x2f":
        bits = int.from_bytes(data[21:25], "little")
        return ImageHeader("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return ImageHeader("webp", width, height)
    return None


#: JPEG start-of-frame markers (baseline, progressive, lossless …), not DHT/JPG/DAC.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg(data: bytes) -> ImageHeader | None:
    """The size in the first start-of-frame segment, walking the segments from the start."""
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            position += 2
            continue
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if marker in _SOF:
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return ImageHeader("jpeg", width, height)
        if marker == 0xD9 or length < 2:
            return None
        position += 2 + length
    return None

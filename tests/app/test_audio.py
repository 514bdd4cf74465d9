"""Uploads are audio by their bytes alone (app/audio.py): WAV, MP3, Ogg Vorbis/Opus and FLAC are
recognised from their own headers; anything else, truncated or empty, is BAD_USER_INPUT on
``sample``. The builders below make small real files byte by byte, or with the bundled ffmpeg
(the voice profile tests use them too)."""

from __future__ import annotations

import io
import struct
import subprocess
import wave

import pytest

from app import audio
from app.errors import BadUserInput
from tests.support.video import FFMPEG

# --- builders -----------------------------------------------------------------------------


def wav_bytes(*, frames: int = 2000, rate: int = 8000, channels: int = 1) -> bytes:
    """A real 16-bit PCM WAV (a sawtooth tone), written by the standard library."""
    samples = frames * channels
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as file:
        file.setnchannels(channels)
        file.setsampwidth(2)
        file.setframerate(rate)
        file.writeframes(
            struct.pack(f"<{samples}h", *((i * 300) % 30000 - 15000 for i in range(samples)))
        )
    return buffer.getvalue()


def flac_bytes() -> bytes:
    """``fLaC`` and a STREAMINFO block: 44.1 kHz, 2 channels, 16 bits, 4096-sample blocks."""
    streaminfo = struct.pack(">HH", 4096, 4096) + b"\0\0\0" + b"\0\0\0"
    rate, channels, bits, samples = 44100, 2, 16, 0
    packed = (rate << 44) | ((channels - 1) << 41) | ((bits - 1) << 36) | samples
    streaminfo += packed.to_bytes(8, "big") + b"\0" * 16  # the MD5 of the (absent) audio
    assert len(streaminfo) == 34
    return b"fLaC" + bytes([0x80]) + (34).to_bytes(3, "big") + streaminfo


def mp3_frame(*, padding: bool = False) -> bytes:
    """One MPEG-1 layer III frame: 128 kbit/s, 44.1 kHz, joint stereo (417 or 418 bytes)."""
    header = bytes([0xFF, 0xFB, 0x90 | (0x02 if padding else 0), 0x64])
    length = 144 * 128_000 // 44_100 + (1 if padding else 0)
    return header + b"\0" * (length - len(header))


def id3_tag(body: bytes = b"\0" * 20) -> bytes:
    size = len(body)
    syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    return b"ID3\x04\x00\x00" + syncsafe + body


def mp3_bytes() -> bytes:
    return id3_tag() + mp3_frame() + mp3_frame(padding=True) + mp3_frame()


def ogg_page(packet: bytes, *, first: bool = True, crc: int | None = None) -> bytes:
    """One Ogg page holding one packet, with its CRC computed here independently."""
    lacing = [255] * (len(packet) // 255) + [len(packet) % 255]
    header = struct.pack(
        "<4sBBqIIIB", b"OggS", 0, 0x02 if first else 0, 0, 0x1234, 0, 0, len(lacing)
    )
    page = header + bytes(lacing) + packet
    checksum = _crc(page) if crc is None else crc
    return page[:22] + struct.pack("<I", checksum) + page[26:]


def vorbis_id_packet(*, channels: int = 1, rate: int = 22050) -> bytes:
    return (
        b"\x01vorbis"
        + struct.pack("<IBI", 0, channels, rate)
        + struct.pack("<iii", 0, 64000, 0)  # bitrate maximum, nominal, minimum
        + bytes([0xB8, 0x01])  # block sizes, framing bit
    )


def opus_head_packet(*, channels: int = 1) -> bytes:
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, 312, 48000, 0, 0)


def ogg_vorbis_bytes() -> bytes:
    return ogg_page(vorbis_id_packet())


def ogg_opus_bytes() -> bytes:
    return ogg_page(opus_head_packet())


def encoded(*output: str) -> bytes:
    """`wav_bytes` encoded by the bundled ffmpeg with ``output``'s options (``-f flac``, or
    ``-c:a libopus -f ogg``): real audio of another kind, for the checks that decode it."""
    encoder = [FFMPEG, "-v", "error", "-f", "wav", "-i", "pipe:0", *output, "pipe:1"]
    done = subprocess.run(encoder, input=wav_bytes(), capture_output=True, check=True)
    return done.stdout


def _crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = (crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1
        crc &= 0xFFFFFFFF
    return crc


PNG = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + b"\0" * 40
ZIP = b"PK\x03\x04" + b"\0" * 60
HTML = b"<!doctype html><html><body><script>alert(1)</script></body></html>"

# --- recognised ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (wav_bytes(), audio.WAV),
        (wav_bytes(channels=2, rate=44100), audio.WAV),
        (mp3_bytes(), audio.MP3),
        (mp3_frame() + mp3_frame(), audio.MP3),
        (mp3_frame() + b"TAG" + b"\0" * 125, audio.MP3),
        (ogg_vorbis_bytes(), audio.OGG_VORBIS),
        (ogg_opus_bytes(), audio.OGG_OPUS),
        (flac_bytes(), audio.FLAC),
        (id3_tag() + flac_bytes(), audio.FLAC),
    ],
    ids=["wav", "wav-stereo", "mp3-id3", "mp3-frames", "mp3-id3v1", "vorbis", "opus", "flac",
         "flac-id3"],
)  # fmt: skip
def test_audio_is_recognised_by_its_bytes(data: bytes, kind: audio.AudioKind) -> None:
    assert audio.detect(data) == kind


def test_kinds_name_their_extension_and_media_type() -> None:
    assert (audio.WAV.extension, audio.WAV.media_type) == ("wav", "audio/wav")
    assert audio.MEDIA_TYPES["mp3"] == "audio/mpeg"
    assert audio.MEDIA_TYPES["flac"] == "audio/flac"
    assert audio.MEDIA_TYPES["opus"] == "audio/ogg"


def test_ogg_checksum_matches_an_independent_computation() -> None:
    page = ogg_vorbis_bytes()
    zeroed = page[:22] + b"\0\0\0\0" + page[26:]
    assert audio.ogg_crc(zeroed) == _crc(zeroed) == struct.unpack_from("<I", page, 22)[0]


# --- refused ------------------------------------------------------------------------------

WAV = wav_bytes()


def _wav_without_fmt() -> bytes:
    data_chunk = b"data" + struct.pack("<I", 4) + b"\0\0\0\0"
    return b"RIFF" + struct.pack("<I", 4 + len(data_chunk)) + b"WAVE" + data_chunk


def _wav_with_bad_format() -> bytes:
    fmt = struct.pack("<HHIIHH", 1, 0, 8000, 16000, 2, 16)  # zero channels
    return b"RIFF" + struct.pack("<I", 28) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt


@pytest.mark.parametrize(
    "data",
    [
        PNG,
        ZIP,
        HTML,
        b"hello, this is plain text pretending to be audio",
        b"RIFF",
        WAV[:20],
        _wav_without_fmt(),
        _wav_with_bad_format(),
        b"RIFF" + WAV[4:8] + b"AVI " + WAV[12:],
        b"ID3",
        id3_tag(),
        id3_tag() + PNG,
        b"\xff\xfb\x90",
        mp3_frame() + PNG,
        bytes([0xFF, 0xFB, 0xF0, 0x64]) + b"\0" * 500,  # bitrate index 15 is invalid
        bytes([0xFF, 0xFD, 0x90, 0x64]) + b"\0" * 500,  # layer II, not MP3
        b"OggS",
        ogg_vorbis_bytes()[:40],
        ogg_page(vorbis_id_packet(), crc=0x1234),
        ogg_page(vorbis_id_packet(), first=False),
        ogg_page(vorbis_id_packet(channels=0)),
        ogg_page(b"\x80theora" + b"\0" * 40),
        ogg_page(opus_head_packet(channels=0)),
        b"fLaC",
        flac_bytes()[:30],
        b"fLaC" + bytes([0x84]) + flac_bytes()[5:],  # first block is not STREAMINFO
    ],
    ids=[
        "png", "zip", "html", "text", "riff-only", "wav-truncated", "wav-no-fmt",
        "wav-zero-channels", "avi", "id3-only", "id3-no-audio", "id3-then-png",
        "mp3-header-truncated", "mp3-then-png", "mp3-bad-bitrate", "mp2", "ogg-only",
        "ogg-truncated", "ogg-bad-crc", "ogg-not-first-page", "vorbis-no-channels", "theora",
        "opus-no-channels", "flac-only", "flac-truncated", "flac-no-streaminfo",
    ],
)  # fmt: skip
def test_anything_else_is_refused_naming_the_sample_field(data: bytes) -> None:
    with pytest.raises(BadUserInput) as refused:
        audio.detect(data)
    assert refused.value.field == "sample"
    assert "WAV, MP3, Ogg" in refused.value.message


def test_zero_bytes_are_refused_as_empty() -> None:
    with pytest.raises(BadUserInput) as refused:
        audio.detect(b"")
    assert refused.value.field == "sample"
    assert "empty" in refused.value.message

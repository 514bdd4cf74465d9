"""Is an upload really audio? Decided by its bytes alone (SPEC §5 Uploads).

The file name and the content type a client sends are never consulted: both are the client's
claim, and a PNG named ``sample.wav`` is still a PNG. The checks read the container's own headers
(WAV, MP3, Ogg Vorbis/Opus, FLAC) far enough to be sure the file is what it says it is; whether
what follows the headers is audio, `app.audio_decode` finds out by decoding it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from app.errors import BadUserInput

FIELD = "sample"


@dataclass(frozen=True)
class AudioKind:
    name: str
    extension: str
    media_type: str


WAV = AudioKind("WAV", "wav", "audio/wav")
MP3 = AudioKind("MP3", "mp3", "audio/mpeg")
OGG_VORBIS = AudioKind("Ogg Vorbis", "ogg", "audio/ogg")
OGG_OPUS = AudioKind("Ogg Opus", "opus", "audio/ogg")
FLAC = AudioKind("FLAC", "flac", "audio/flac")

#: Extension -> media type, for serving what was stored under `AudioKind.extension`.
MEDIA_TYPES = {kind.extension: kind.media_type for kind in (WAV, MP3, OGG_VORBIS, OGG_OPUS, FLAC)}

NOT_AUDIO = "`sample` must be a WAV, MP3, Ogg (Vorbis or Opus) or FLAC audio file."


def detect(data: bytes) -> AudioKind:
    """The kind of audio in ``data``; `BadUserInput` (field ``sample``) when it is not audio."""
    if not data:
        raise BadUserInput("`sample` is empty.", field=FIELD)
    kind = _detect(data)
    if kind is None:
        raise BadUserInput(NOT_AUDIO, field=FIELD)
    return kind


def _detect(data: bytes) -> AudioKind | None:
    if data.startswith(b"RIFF"):
        return WAV if _is_wav(data) else None
    if data.startswith(b"OggS"):
        return _ogg_kind(data)
    # An ID3v2 tag may stand in front of MPEG audio (and, unofficially, of FLAC).
    body = data[_id3_length(data) :] if data.startswith(b"ID3") else data
    if body.startswith(b"fLaC"):
        return FLAC if _is_flac(body) else None
    return MP3 if _is_mp3(body) else None


# --- WAV: RIFF/WAVE with a sane fmt chunk -------------------------------------------------

_WAV_FORMATS = {1, 3, 6, 7, 0xFFFE}  # PCM, IEEE float, A-law, mu-law, extensible


def _is_wav(data: bytes) -> bool:
    if len(data) < 12 or data[8:12] != b"WAVE":
        return False
    offset = 12
    while offset + 8 <= len(data):
        chunk_id, size = data[offset : offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        if chunk_id == b"fmt ":
            return size >= 16 and _wav_format_ok(data[offset + 8 : offset + 8 + size])
        if chunk_id == b"data":
            return False  # audio before its format: not a WAV any player reads
        offset += 8 + size + (size & 1)  # chunks are padded to an even length
    return False


def _wav_format_ok(fmt: bytes) -> bool:
    if len(fmt) < 16:
        return False
    audio_format, channels, rate, byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", fmt)
    return (
        audio_format in _WAV_FORMATS
        and 1 <= channels <= 32
        and 1 <= rate <= 768_000
        and byte_rate > 0
        and block_align > 0
        and bits in (8, 16, 24, 32, 64)
    )


# --- MP3: MPEG audio layer III frames, optionally after an ID3v2 tag ----------------------

_BITRATES_KBPS = {
    "v1": (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    "v2": (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_SAMPLE_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _id3_length(data: bytes) -> int:
    """Bytes taken by the ID3v2 tag at the start of ``data`` (header, body, footer)."""
    if len(data) < 10 or data[3] not in (2, 3, 4) or data[4] == 0xFF:
        return len(data)  # not a tag we can skip: nothing valid follows
    size_bytes = data[6:10]
    if any(byte & 0x80 for byte in size_bytes):
        return len(data)
    size = 0
    for byte in size_bytes:  # "syncsafe": 7 bits per byte
        size = (size << 7) | byte
    footer = 10 if data[5] & 0x10 else 0
    return 10 + size + footer


def _mp3_frame_length(data: bytes, offset: int) -> int | None:
    """The length of the layer III frame whose header starts at ``offset``, if it is one."""
    if offset + 4 > len(data):
        return None
    header = int.from_bytes(data[offset : offset + 4], "big")
    if header >> 21 != 0x7FF:  # 11-bit frame sync
        return None
    version = (header >> 19) & 0b11  # 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5, 1: reserved
    layer = (header >> 17) & 0b11  # 1: layer III
    bitrate_index = (header >> 12) & 0b1111
    rate_index = (header >> 10) & 0b11
    padding = (header >> 9) & 1
    emphasis = header & 0b11
    if version == 1 or layer != 1 or bitrate_index in (0, 15) or rate_index == 3 or emphasis == 2:
        return None
    bitrate = _BITRATES_KBPS["v1" if version == 3 else "v2"][bitrate_index] * 1000
    sample_rate = _SAMPLE_RATES[version][rate_index]
    samples_per_byte = 144 if version == 3 else 72
    return samples_per_byte * bitrate // sample_rate + padding


def _is_mp3(data: bytes) -> bool:
    length = _mp3_frame_length(data, 0)
    if length is None:
        return False
    following = data[length : length + 4]
    # One frame could be chance; when another one follows, it must be a frame too (or the
    # ID3v1 tag that ends many files).
    if len(following) < 4:
        return True
    return following.startswith(b"TAG") or _mp3_frame_length(data, length) is not None


# --- Ogg: the first page of a Vorbis or Opus stream ---------------------------------------

_OGG_HEADER = struct.Struct("<4sBBqIIIB")  # capture, version, type, granule, serial, seq, crc, n


def _ogg_kind(data: bytes) -> AudioKind | None:
    if len(data) < _OGG_HEADER.size:
        return None
    _, version, header_type, _, _, _, crc, segments = _OGG_HEADER.unpack_from(data)
    if version != 0 or not header_type & 0x02:  # the first page starts the stream (BOS)
        return None
    table_end = _OGG_HEADER.size + segments
    page_end = table_end + sum(data[_OGG_HEADER.size : table_end])
    if table_end > len(data) or page_end > len(data):
        return None
    page = bytearray(data[:page_end])
    page[22:26] = b"\0\0\0\0"  # the checksum is computed with its own field zeroed
    if ogg_crc(bytes(page)) != crc:
        return None
    packet = data[table_end:page_end]
    if (
        packet.startswith(b"\x01vorbis")
        and len(packet) >= 30
        and struct.unpack_from("<I", packet, 7)[0] == 0  # vorbis_version
        and packet[11] > 0  # channels
        and struct.unpack_from("<I", packet, 12)[0] > 0  # sample rate
    ):
        return OGG_VORBIS
    if packet.startswith(b"OpusHead") and len(packet) >= 19 and packet[8] >> 4 == 0 and packet[9]:
        return OGG_OPUS  # version 0.x, at least one channel
    return None


def ogg_crc(page: bytes) -> int:
    """CRC-32 of an Ogg page (polynomial 0x04C11DB7, not reflected, initial value 0)."""
    crc = 0
    for byte in page:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _OGG_CRC_TABLE[(crc >> 24) ^ byte]
    return crc


def _crc_entry(index: int) -> int:
    crc = index << 24
    for _ in range(8):
        crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
    return crc & 0xFFFFFFFF


_OGG_CRC_TABLE = tuple(_crc_entry(index) for index in range(256))


# --- FLAC: the marker and a STREAMINFO block ----------------------------------------------


def _is_flac(data: bytes) -> bool:
    # fLaC, then the first metadata block: 1 byte (last-block flag, type 0 = STREAMINFO),
    # 3 bytes length (34), and the 34 bytes of STREAMINFO.
    if len(data) < 4 + 4 + 34 or data[4] & 0x7F != 0 or int.from_bytes(data[5:8], "big") != 34:
        return False
    info = data[8:42]
    min_block, max_block = struct.unpack_from(">HH", info)
    packed = int.from_bytes(info[10:18], "big")  # rate 20 bits, channels 3, bits 5, samples 36
    sample_rate = packed >> 44
    bits_per_sample = ((packed >> 36) & 0b11111) + 1
    return 16 <= min_block <= max_block and 0 < sample_rate <= 655_350 and bits_per_sample >= 4

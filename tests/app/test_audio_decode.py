"""An upload is audio only if it decodes (app/audio_decode.py): the bundled ffmpeg decodes its
start with the demuxer of the kind its headers name; a container header in front of anything
else is BAD_USER_INPUT on ``sample``."""

from __future__ import annotations

import struct

import pytest

from app import audio, audio_decode
from app.errors import BadUserInput
from tests.app.test_audio import (
    HTML,
    encoded,
    flac_bytes,
    mp3_frame,
    ogg_opus_bytes,
    ogg_vorbis_bytes,
    wav_bytes,
)

WAV = wav_bytes(frames=8000)
#: RIFF, WAVE and a good `fmt ` chunk (what `app.audio` checks), then a web page.
WAV_HEADER_THEN_HTML = b"RIFF" + struct.pack("<I", 28 + len(HTML)) + WAV[8:36] + HTML


@pytest.mark.parametrize(
    "data",
    [
        WAV,
        encoded("-f", "mp3"),
        encoded("-f", "flac"),
        encoded("-c:a", "libvorbis", "-f", "ogg"),
        encoded("-c:a", "libopus", "-f", "ogg"),
    ],
    ids=["wav", "mp3", "flac", "vorbis", "opus"],
)
async def test_real_audio_decodes(data: bytes) -> None:
    await audio_decode.check_decodes(data, audio.detect(data))


@pytest.mark.parametrize(
    "data",
    [
        WAV_HEADER_THEN_HTML,
        flac_bytes(),  # STREAMINFO and no audio
        flac_bytes() + HTML,
        mp3_frame() + mp3_frame() + HTML,
        ogg_vorbis_bytes() + HTML,  # an identification header, then no stream
        ogg_opus_bytes(),
    ],
    ids=["wav-header-then-html", "flac-header", "flac-header-then-html", "mp3-frames-then-html",
         "vorbis-header-then-html", "opus-header"],
)  # fmt: skip
async def test_a_header_in_front_of_no_audio_is_refused(data: bytes) -> None:
    kind = audio.detect(data)  # the headers alone pass
    with pytest.raises(BadUserInput) as refused:
        await audio_decode.check_decodes(data, kind)
    assert refused.value.field == "sample"
    assert f"looks like {kind.name} but does not decode" in refused.value.message


async def test_a_decode_that_takes_too_long_is_stopped_and_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(audio_decode, "TIMEOUT_SECONDS", 0.001)
    with pytest.raises(BadUserInput) as refused:
        await audio_decode.check_decodes(WAV, audio.WAV)
    assert "too long" in refused.value.message

"""Does an uploaded sample really decode? (SPEC §5 Uploads.)

`app.audio` recognises a container by its headers, which a few bytes satisfy: a WAV header
followed by an HTML page passes. Here the bundled ffmpeg (`app.ffmpeg`) decodes the start of
the sample, with the demuxer of the kind `app.audio` recognised (no probing for other formats)
and no protocol but the pipe it reads from (a playlist could not make it fetch anything), and
stops at the first decoding error. A sample that yields no audio is ``BAD_USER_INPUT`` on
``sample``.

The work is bounded: ffmpeg decodes at most `DECODE_SECONDS` of audio, into 8 kHz mono, on one
thread, and is killed after `TIMEOUT_SECONDS`.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

from app.audio import FIELD, FLAC, MP3, OGG_OPUS, OGG_VORBIS, WAV, AudioKind
from app.errors import BadUserInput
from app.ffmpeg import bundled_ffmpeg

logger = logging.getLogger(__name__)

#: How much of the sample is decoded, and how long the decoding may take.
DECODE_SECONDS = 10
TIMEOUT_SECONDS = 10.0

#: The ffmpeg demuxer for each kind `app.audio` recognises.
_DEMUXERS = {WAV: "wav", MP3: "mp3", OGG_VORBIS: "ogg", OGG_OPUS: "ogg", FLAC: "flac"}
_STDERR_CHARS = 500  # of ffmpeg's complaint, for the log


async def check_decodes(data: bytes, kind: AudioKind) -> None:
    """`BadUserInput` (field ``sample``) unless the start of ``data`` decodes as ``kind``."""
    exe = await bundled_ffmpeg()
    process = await asyncio.create_subprocess_exec(
        exe,
        *("-hide_banner", "-nostdin", "-loglevel", "error", "-xerror", "-threads", "1"),
        *("-protocol_whitelist", "pipe", "-f", _DEMUXERS[kind], "-i", "pipe:0"),
        *("-t", str(DECODE_SECONDS), "-map", "0:a:0", "-ac", "1", "-ar", "8000"),
        *("-f", "s16le", "pipe:1"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS):
            decoded, complaint = await process.communicate(data)
    except TimeoutError:
        logger.info("a %s sample took over %s s to decode: refused", kind.name, TIMEOUT_SECONDS)
        message = f"`sample` takes too long to decode as {kind.name}."
        raise BadUserInput(message, field=FIELD) from None
    finally:
        if process.returncode is None:  # timed out, or the request was cancelled
            with suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    if process.returncode != 0 or not decoded:
        reason = complaint.decode(errors="replace").strip()[-_STDERR_CHARS:] or "no audio"
        logger.info("a %s sample does not decode: refused (%s)", kind.name, reason)
        raise BadUserInput(
            f"`sample` looks like {kind.name} but does not decode as audio.", field=FIELD
        )

"""The ffmpeg binary that the ``imageio-ffmpeg`` package ships (no system package): renders
(`app.pipeline.render`) and the check that an uploaded sample decodes (`app.audio_decode`) run
it."""

from __future__ import annotations

import asyncio

import imageio_ffmpeg  # type: ignore[import-untyped]


class FfmpegMissing(RuntimeError):
    """The package's binary is not there (a broken install)."""


async def bundled_ffmpeg() -> str:
    try:
        return str(await asyncio.to_thread(imageio_ffmpeg.get_ffmpeg_exe))
    except RuntimeError as error:
        raise FfmpegMissing(str(error)) from error

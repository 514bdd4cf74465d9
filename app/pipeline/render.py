"""Rendering narration, on-screen text and captions into an MP4 with ``imageio-ffmpeg``'s ffmpeg.

One ffmpeg run makes the video; a second, short one takes the poster frame from it:

- **audio** — each segment's WAV laid on the timeline at its ``start_ms``, padded with silence
  (or cut) to the next segment's start, the last one to its ``end_ms`` (``adelay``, ``apad``,
  ``atrim``, ``concat``), normalised to -16 LUFS with true peaks under -1 dBTP
  (`app.pipeline.loudness`, measured in a first, audio-only pass); 48 kHz mono AAC;
- **picture** — a plain background (``color``) with each segment's text drawn while the segment
  plays (``drawtext`` with ``enable``); H.264 (libx264, yuv420p, a keyframe every 2 s for seeking);
- **captions** — the WebVTT file as a *soft* subtitle track (``mov_text``, MP4's text format).
  VLC or QuickTime list it; browsers ignore MP4 text tracks, so a web player adds the same VTT
  file as a ``<track>``;
- ``+faststart`` puts the index first: a browser starts playing before the whole file is there.

Text is wrapped here (drawtext does not wrap) and handed to drawtext in files (``textfile``,
``expansion=none``), so no user text is ever parsed as filter syntax. The font is ``font_file``,
else whatever fontconfig finds for "Sans"; with no font at all the video is rendered without
on-screen text (a warning is logged and `RenderResult.text_on_screen` is false).

Everything is written into a hidden folder beside ``output_mp4`` and renamed into place only once
both files are complete; a failure or a cancellation kills ffmpeg and removes that folder, so
nothing half written is left. Progress is ffmpeg's own (``-progress pipe:1``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
import textwrap
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from app.ffmpeg import FfmpegMissing, bundled_ffmpeg
from app.pipeline import loudness

logger = logging.getLogger("studio.render")

ProgressCallback = Callable[[float], Awaitable[None]]

BACKGROUND = "0x1d2733"
PROGRESS_INTERVAL = 0.25  # seconds: at most ~4 progress reports a second
STDERR_LINES = 20  # the tail of ffmpeg's stderr a RenderError keeps for the logs
_ENCODE_SHARE = 0.97  # of the progress bar; the poster and the renames are the rest


class RenderError(Exception):
    """A render failed; ``user_message`` is for people, ``detail`` (ffmpeg's stderr) for logs."""

    def __init__(self, user_message: str, detail: str = "") -> None:
        super().__init__(f"{user_message}\n{detail}" if detail else user_message)
        self.user_message = user_message
        self.detail = detail


@dataclass(frozen=True)
class RenderSegment:
    text: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class RenderResult:
    duration_ms: int
    size_bytes: int
    text_on_screen: bool = True


async def render_video(
    *,
    segments: Sequence[RenderSegment],
    narration_wavs: Sequence[Path],
    captions_vtt: Path | None,
    output_mp4: Path,
    poster_png: Path,
    width: int = 1280,
    height: int = 720,
    fps: int = 25,
    on_progress: ProgressCallback | None = None,
    font_file: Path | None = None,
    ffmpeg: str | None = None,
    preset: str = "veryfast",
    crf: int = 23,
) -> RenderResult:
    """Render ``segments`` (one narration WAV each, in order) into ``output_mp4``, and a frame at
    about 1 s into ``poster_png``. Segments must not overlap; gaps between them are silent."""
    bounds = _timeline(segments, narration_wavs, width, height, fps)
    wavs, vtt, font_path = await asyncio.to_thread(_inputs, narration_wavs, captions_vtt, font_file)
    exe = ffmpeg or await _bundled_ffmpeg()
    font = f"fontfile={_escape(font_path)}" if font_path else "font=Sans"
    total_ms = bounds[-1]
    progress = _Progress(on_progress)
    await asyncio.to_thread(output_mp4.parent.mkdir, parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".render-", dir=output_mp4.parent))
    try:
        text_on_screen = await _font_works(exe, font, work)
        if not text_on_screen:
            logger.warning("no font for the on-screen text (%s): rendering without it", font)
        picture = _picture(segments, work, (width, height), fps, font if text_on_screen else None)
        inputs = [arg for wav in wavs for arg in ("-i", wav)]
        narration = _narration(segments, bounds)
        try:
            measured = await loudness.measure(exe, inputs, narration, "n", work)
        except loudness.LoudnessError as error:
            # Its inputs are the render's: what fails here would fail the render.
            raise RenderError("The video could not be rendered.", error.detail) from error
        audio = f"{narration};[n]{loudness.normalise(measured)}[a]"
        maps = ["-map", "[v]", "-map", "[a]"]
        if vtt is not None:
            inputs += ["-i", vtt]
            maps += ["-map", f"{len(wavs)}:s", "-c:s", "mov_text"]
        await _ffmpeg(
            exe,
            [*inputs, "-filter_complex", f"{picture};{audio}", *maps,
             "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-tune", "stillimage",
             "-pix_fmt", "yuv420p", "-r", str(fps), "-g", str(2 * fps),
             "-c:a", "aac", "-b:a", "96k", "-ar", "48000", "-ac", "1",
             "-t", _seconds(total_ms), "-movflags", "+faststart", "video.mp4"],
            cwd=work,
            on_time=lambda us: progress.offer(_ENCODE_SHARE * us / 1000 / total_ms),
        )  # fmt: skip
        poster_at = _seconds(min(1000, total_ms // 2))
        poster = ["-ss", poster_at, "-i", "video.mp4", "-frames:v", "1", "-update", "1"]
        await _ffmpeg(exe, [*poster, "poster.png"], cwd=work)
        size = await _finish(work, output_mp4, poster_png)
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)
    await progress.done()
    return RenderResult(duration_ms=total_ms, size_bytes=size, text_on_screen=text_on_screen)


def _timeline(
    segments: Sequence[RenderSegment], wavs: Sequence[Path], width: int, height: int, fps: int
) -> list[int]:
    """The timeline's boundaries: 0, each later segment's start, the last segment's end."""
    if not segments or len(segments) != len(wavs):
        raise ValueError("need one narration WAV per segment, and at least one segment")
    if width < 16 or height < 16 or width % 2 or height % 2 or not 1 <= fps <= 60:
        raise ValueError("width and height must be even and at least 16, fps from 1 to 60")
    previous_end = 0
    for index, segment in enumerate(segments):
        if not previous_end <= segment.start_ms < segment.end_ms:
            raise ValueError(f"segment {index} overlaps the one before or is empty: {segment}")
        previous_end = segment.end_ms
    return [0, *(segment.start_ms for segment in segments[1:]), segments[-1].end_ms]


def _inputs(
    wavs: Sequence[Path], vtt: Path | None, font: Path | None
) -> tuple[list[str], str | None, str | None]:
    """The input files' absolute paths; `RenderError` for one that is missing."""
    for index, wav in enumerate(wavs):
        if not wav.is_file():
            raise RenderError(f"The narration audio of part {index + 1} is missing.", str(wav))
    if vtt is not None and not vtt.is_file():
        raise RenderError("The captions file is missing.", str(vtt))
    if font is not None and not font.is_file():
        raise RenderError("The font for the on-screen text is missing.", str(font))
    absolute = [str(wav.resolve()) for wav in wavs]
    return absolute, str(vtt.resolve()) if vtt else None, str(font.resolve()) if font else None


def _narration(segments: Sequence[RenderSegment], bounds: list[int]) -> str:
    """Each WAV placed at its start and padded or cut to the next boundary, then joined
    (into ``[n]``, which the loudness normalisation reads)."""
    parts = []
    for index in range(len(segments)):
        span = _seconds(bounds[index + 1] - bounds[index])
        delay = segments[0].start_ms if index == 0 else 0
        parts.append(
            f"[{index}:a]aresample=48000,aformat=sample_fmts=fltp:channel_layouts=mono,"
            f"adelay=delays={delay}:all=1,apad=whole_dur={span},atrim=duration={span}[a{index}]"
        )
    labels = "".join(f"[a{index}]" for index in range(len(segments)))
    return ";".join([*parts, f"{labels}concat=n={len(segments)}:v=0:a=1[n]"])


def _picture(
    segments: Sequence[RenderSegment], work: Path, size: tuple[int, int], fps: int, font: str | None
) -> str:
    """The background, and each segment's text (from a file in ``work``) while it plays."""
    width, height = size
    length = _seconds(segments[-1].end_ms)
    filters = [f"color=c={BACKGROUND}:s={width}x{height}:r={fps}:d={length}"]
    for index, segment in enumerate(segments):
        lines, points = _layout(segment.text, width, height)
        if font is None or not lines:
            continue
        (work / f"text-{index}.txt").write_text("\n".join(lines), encoding="utf-8")
        start, end = _seconds(segment.start_ms), _seconds(segment.end_ms)
        filters.append(
            f"drawtext={font}:textfile=text-{index}.txt:expansion=none:fontsize={points}"
            f":fontcolor=white:line_spacing={points // 4}:text_align=C"
            f":x=(w-text_w)/2:y=(h-text_h)/2:fix_bounds=1:enable='gte(t,{start})*lt(t,{end})'"
        )
    return ",".join([*filters, "format=yuv420p[v]"])


def _layout(text: str, width: int, height: int) -> tuple[list[str], int]:
    """Wrapped lines and a font size that fit in about 84 % by 80 % of the frame. Widths are
    estimated (0.6 of the font size a character, generous for sans fonts); ``fix_bounds``
    keeps a line that is wider than estimated inside the frame."""
    words = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    size = max(8, height // 16)
    while True:
        columns = max(8, int(width * 0.84 / (size * 0.6)))
        lines = textwrap.wrap(words, columns, break_on_hyphens=False)
        if len(lines) * size * 1.25 <= height * 0.8 or size <= 8:
            return lines, size
        size = max(8, int(size * 0.9))


class _Progress:
    """Forwards a growing fraction to the callback, at most once every `PROGRESS_INTERVAL`."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self._value = 0.0
        self._at = float("-inf")

    async def offer(self, fraction: float) -> None:
        fraction = min(1.0, max(0.0, fraction))
        now = time.monotonic()
        if self._callback and fraction > self._value and now - self._at >= PROGRESS_INTERVAL:
            self._value, self._at = fraction, now
            await self._callback(fraction)

    async def done(self) -> None:
        if self._callback:
            await self._callback(1.0)


async def _ffmpeg(
    exe: str,
    args: list[str],
    *,
    cwd: Path,
    on_time: Callable[[int], Awaitable[None]] | None = None,
) -> None:
    """Run ffmpeg to the end; `RenderError` with its stderr's tail if it fails. Cancelled (or
    the progress callback raising), it kills ffmpeg and waits for it to exit before going on."""
    command = ["-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y"]
    if on_time is not None:
        command += ["-progress", "pipe:1", "-stats_period", str(PROGRESS_INTERVAL)]
    try:
        process = await asyncio.create_subprocess_exec(
            exe,
            *command,
            *args,
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as error:
        raise RenderError("The video renderer could not be started.", str(error)) from error
    assert process.stdout is not None
    assert process.stderr is not None
    tail: deque[str] = deque(maxlen=STDERR_LINES)

    async def collect(stream: asyncio.StreamReader) -> None:
        async for raw in stream:
            tail.append(raw.decode(errors="replace").rstrip())

    stderr = asyncio.ensure_future(collect(process.stderr))
    try:
        async for raw in process.stdout:
            key, _, value = raw.decode(errors="replace").strip().partition("=")
            if on_time is not None and key == "out_time_us" and value.isdigit():
                await on_time(int(value))
        await stderr
        code = await process.wait()
    except BaseException:
        if process.returncode is None:
            with suppress(ProcessLookupError):
                process.kill()
        stderr.cancel()
        await process.wait()
        raise
    if code != 0:
        raise RenderError("The video could not be rendered.", "\n".join(tail))


async def _finish(work: Path, output_mp4: Path, poster_png: Path) -> int:
    """Flush both files, then rename them into place; the video's size in bytes."""

    def finish() -> int:
        for name in ("video.mp4", "poster.png"):
            with open(work / name, "rb") as file:
                os.fsync(file.fileno())
        poster_png.parent.mkdir(parents=True, exist_ok=True)
        os.replace(work / "poster.png", poster_png)
        os.replace(work / "video.mp4", output_mp4)
        return output_mp4.stat().st_size

    # A thread cannot be interrupted: wait for it even when cancelled, so that no rename lands
    # after the caller has moved on.
    task = asyncio.ensure_future(asyncio.to_thread(finish))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise


_fonts_found: set[tuple[str, str]] = set()


async def _font_works(exe: str, font: str, work: Path) -> bool:
    """Whether drawtext finds ``font``: one tiny frame drawn and thrown away. A success is
    remembered for the process; a failure is tried again next time (fonts may be installed)."""
    if (exe, font) not in _fonts_found:
        probe = ["-f", "lavfi", "-i", "color=s=32x32:d=0.04", "-vf", f"drawtext={font}:text=A"]
        try:
            await _ffmpeg(exe, [*probe, "-f", "null", "-"], cwd=work)
        except RenderError:
            return False
        _fonts_found.add((exe, font))
    return True


async def _bundled_ffmpeg() -> str:
    try:
        return await bundled_ffmpeg()
    except FfmpegMissing as error:
        raise RenderError("The video renderer (ffmpeg) is not installed.", str(error)) from error


def _seconds(milliseconds: int) -> str:
    return f"{milliseconds / 1000:.3f}"


def _escape(value: str) -> str:
    """``value`` as a filter option value inside a filter graph (both levels of escaping)."""
    for char in "\\':":
        value = value.replace(char, "\\" + char)
    for char in "\\'[],;":
        value = value.replace(char, "\\" + char)
    return value

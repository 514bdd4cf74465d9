"""Running ffmpeg for a render: to the end, or killed when the render is cancelled, with its
progress reported at a bounded pace and its stderr's tail kept for the logs."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import suppress
from pathlib import Path

ProgressCallback = Callable[[float], Awaitable[None]]

PROGRESS_INTERVAL = 0.25  # seconds: at most ~4 progress reports a second
STDERR_LINES = 20  # the tail of ffmpeg's stderr a RenderError keeps for the logs


class RenderError(Exception):
    """A render failed; ``user_message`` is for people, ``detail`` (ffmpeg's stderr) for logs."""

    def __init__(self, user_message: str, detail: str = "") -> None:
        super().__init__(f"{user_message}\n{detail}" if detail else user_message)
        self.user_message = user_message
        self.detail = detail


class Progress:
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


async def run_ffmpeg(
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

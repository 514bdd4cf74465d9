"""Where one attempt of a generation job keeps its files, under the media folder.

Every attempt writes into its own folder, named by the video, the job and the attempt::

    videos/<video id>/<job id>.<attempt>/
        voice/<segment index>.wav     one WAV per script segment
        voice/narration.wav           the segments joined, with the pauses between them
        captions/<language>.vtt       WebVTT captions timed to the narration
        captions/<language>.srt       the same cues as SRT
        pictures/<n>.jpg              a URL video's pictures from its page, made to size
        video.mp4, poster.png         the render

So a new attempt never reads or overwrites what an earlier one wrote: the first stage that
writes (VOICE) removes the folders of the job's earlier attempts (`start_clean`) before it starts,
and a stage that fails removes its attempt's folder (`discard`). Files are written atomically
(`app.media.write_file`: a temporary file renamed into place), so no reader ever sees half a
file. The folder of an earlier *job* stays: the video keeps showing the last good run's captions
until a new run succeeds.

Everything here blocks on the file system: call it through `run_blocking`.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from app import media
from app.settings import Settings

if TYPE_CHECKING:
    from app.worker.pipeline import StageContext, VideoInput

VIDEOS = "videos"

T = TypeVar("T")


@dataclass(frozen=True)
class RunFolder:
    video_id: uuid.UUID
    job_id: uuid.UUID
    attempt: int

    @classmethod
    def of(cls, context: StageContext, video: VideoInput) -> RunFolder:
        return cls(video.id, context.job_id, context.attempt)

    @property
    def relative(self) -> str:
        """The folder, relative to the media folder."""
        return f"{VIDEOS}/{self.video_id}/{self.job_id}.{self.attempt}"

    def file(self, *parts: str) -> str:
        """A file in this attempt's folder, relative to the media folder."""
        return "/".join((self.relative, *parts))


def start_clean(settings: Settings, run: RunFolder) -> None:
    """Remove every attempt folder of ``run``'s job, this attempt's included."""
    video_folder = media.resolve(settings, f"{VIDEOS}/{run.video_id}")
    if not video_folder.is_dir():
        return
    for folder in video_folder.glob(f"{run.job_id}.*"):
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)


def discard(settings: Settings, run: RunFolder) -> None:
    """Remove this attempt's folder (a failed or stopped attempt leaves nothing behind)."""
    folder = media.resolve(settings, run.relative)
    if folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder, ignore_errors=True)


@asynccontextmanager
async def attempt_work(
    settings: Settings, run: RunFolder, *, test_delay: float = 0.0
) -> AsyncIterator[None]:
    """A stage's work in ``run``'s folder: if it fails or is stopped, the folder goes (`discard`).

    ``test_delay`` (``STUDIO_PIPELINE_STAGE_DELAY_MS``, tests only) keeps the stage going that
    much longer once its files are written, so that tests can stop a job mid-stage.
    """
    try:
        yield
        if test_delay:
            await asyncio.sleep(test_delay)
    except BaseException:
        await run_blocking(discard, settings, run)
        raise


async def run_blocking(function: Callable[..., T], /, *args: object) -> T:
    """``function(*args)`` in a worker thread, and if the calling task is cancelled meanwhile,
    still wait for the thread to finish before the cancellation goes on.

    A thread cannot be interrupted: without the wait, a file write could land after the
    cancelled stage has cleaned its folder up. Everything run here takes milliseconds.
    """
    work = asyncio.ensure_future(asyncio.to_thread(function, *args))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        await asyncio.wait([work])
        raise

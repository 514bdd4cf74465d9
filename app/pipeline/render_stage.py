"""RENDER: the narration, scenes with pictures, and captions, rendered into a playable MP4.

The stage hands `app.pipeline.render.render_video` what the earlier stages left in the attempt's
folder (`app.pipeline.run_media`): each segment's WAV, timing and words (VOICE) and the WebVTT
track (CAPTIONS). For a URL video it first fetches the page's own pictures (the URLs SCRIPT
found, `app.pipeline.pictures`) into the same folder; the title card and the scenes take them in
turn, and scenes without one get a background generated from the video's theme. The theme's
seed is the video's id. It writes ``video.mp4`` and ``poster.png`` there::

    videos/<video id>/<job id>.<attempt>/pictures/<n>.jpg
    videos/<video id>/<job id>.<attempt>/video.mp4
    videos/<video id>/<job id>.<attempt>/poster.png

ffmpeg's own progress moves the stage's share of the progress bar; a cancelled job kills ffmpeg
(`StageContext.report` raises inside the progress callback). A render that fails ends the job
with a message a person can read (ffmpeg's stderr goes to the log, not to the user), and the
attempt's folder is removed, so the next attempt starts clean; one that fails because the media
folder is full or not writable fails as `app.media.StorageUnavailable` says.

Results (read by `app.worker.stages.video_artefacts`)::

    {"mediaPath", "posterPath", "durationMs", "sizeBytes", "textOnScreen",
     "pictures": [{"path", "source"}]}
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from app import media
from app.ffmpeg import FfmpegMissing, bundled_ffmpeg
from app.pipeline.pictures import Picture, gather_pictures
from app.pipeline.render import RenderError, RenderSegment, render_video
from app.pipeline.run_media import RunFolder, attempt_work
from app.pipeline.scene_graph import oversized
from app.settings import Settings
from app.worker.pipeline import Results, StageContext, StageError, VideoInput
from db.models import JobStage

logger = logging.getLogger(__name__)

MEDIA_FILE = "video.mp4"
POSTER_FILE = "poster.png"
PICTURES_FOLDER = "pictures"
#: Of the stage's progress: the pictures' share, before the render's.
_PICTURES_SHARE = 0.1
#: How ffmpeg reports a write that failed for want of space (the system's strerror(ENOSPC)).
_NO_SPACE = os.strerror(errno.ENOSPC)


class FfmpegRender:
    """An MP4 (H.264 + AAC, soft subtitles) made with the ffmpeg that ``imageio-ffmpeg`` ships;
    size and frame rate from ``STUDIO_RENDER_WIDTH``/``_HEIGHT``/``_FPS``, a music bed with
    ``STUDIO_RENDER_MUSIC``."""

    name = JobStage.RENDER
    weight = 4.0

    def __init__(self, settings: Settings, *, delay_seconds: float = 0.0) -> None:
        self.settings = settings
        self.delay_seconds = delay_seconds  # test-only, as `EspeakVoice.delay_seconds`

    async def run(
        self, context: StageContext, video: VideoInput, results: Results
    ) -> dict[str, Any]:
        run = RunFolder.of(context, video)
        async with attempt_work(self.settings, run, test_delay=self.delay_seconds):
            return await self._render(context, video, results, run)

    async def _render(
        self, context: StageContext, video: VideoInput, results: Results, run: RunFolder
    ) -> dict[str, Any]:
        texts = {s["index"]: str(s["text"]) for s in results[JobStage.SCRIPT]["segments"]}
        timings = list(results[JobStage.VOICE]["timings"])
        vtt = next(
            (t["path"] for t in results[JobStage.CAPTIONS]["tracks"] if t["format"] == "vtt"), None
        )
        settings = self.settings
        media_path, poster_path = run.file(MEDIA_FILE), run.file(POSTER_FILE)

        async def on_progress(fraction: float) -> None:
            # Raises JobStopped once the job must stop: ffmpeg is killed.
            context.report(_PICTURES_SHARE + (1 - _PICTURES_SHARE) * fraction)

        folder = media.resolve(settings, run.relative)
        size = (settings.render_width, settings.render_height)
        try:
            with media.writing(folder):  # its work folder, made beside the video
                pictures = await self._pictures(results, folder / PICTURES_FOLDER, size)
                context.report(_PICTURES_SHARE)
                rendered = await render_video(
                    segments=[_segment(texts[t["index"]], t) for t in timings],
                    narration_wavs=[media.resolve(settings, t["audioPath"]) for t in timings],
                    captions_vtt=media.resolve(settings, vtt) if vtt else None,
                    output_mp4=media.resolve(settings, media_path),
                    poster_png=media.resolve(settings, poster_path),
                    width=settings.render_width,
                    height=settings.render_height,
                    fps=settings.render_fps,
                    font_file=settings.render_font_file,
                    on_progress=on_progress,
                    pictures=[
                        pictures[n % len(pictures)].path if pictures else None
                        for n in range(len(timings))
                    ],
                    seed=str(video.id),
                    end_label=_site(video.source_url),
                    music=settings.render_music,
                )
        except RenderError as error:
            if _NO_SPACE in error.detail:  # ffmpeg could not write its output
                raise media.storage_unavailable(errno.ENOSPC, folder, _NO_SPACE) from error
            logger.warning("render of job %s failed: %s", context.job_id, error)
            raise StageError(error.user_message) from error
        return {
            "mediaPath": media_path,
            "posterPath": poster_path,
            "durationMs": rendered.duration_ms,
            "sizeBytes": rendered.size_bytes,
            "textOnScreen": rendered.text_on_screen,
            "pictures": [
                {"path": run.file(PICTURES_FOLDER, p.path.name), "source": p.source}
                for p in pictures
            ],
        }

    async def _pictures(
        self, results: Results, folder: Path, size: tuple[int, int]
    ) -> list[Picture]:
        urls = [str(url) for url in results[JobStage.SCRIPT].get("pictures", [])]
        if not urls:
            return []
        try:
            exe = await bundled_ffmpeg()
        except FfmpegMissing:
            return []  # the render says so, readably
        return await gather_pictures(
            urls, settings=self.settings, folder=folder, size=oversized(size), exe=exe
        )


def _segment(text: str, timing: dict[str, Any]) -> RenderSegment:
    words = tuple(
        (str(w["text"]), int(w["startMs"]), int(w["endMs"])) for w in timing.get("words", [])
    )
    return RenderSegment(text, int(timing["startMs"]), int(timing["endMs"]), words)


def _site(url: str | None) -> str | None:
    """The host a URL video's text and pictures came from, for the end card."""
    host = urlsplit(url or "").hostname
    return host.removeprefix("www.") if host else None

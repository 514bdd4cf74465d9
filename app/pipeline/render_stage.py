"""RENDER: the narration, the script on screen and the captions, rendered into a playable MP4.

The stage hands `app.pipeline.render.render_video` what the earlier stages left in the attempt's
folder (`app.pipeline.run_media`): each segment's WAV and timing (VOICE) and the WebVTT track
(CAPTIONS). It writes ``video.mp4`` and ``poster.png`` there::

    videos/<video id>/<job id>.<attempt>/video.mp4
    videos/<video id>/<job id>.<attempt>/poster.png

ffmpeg's own progress moves the stage's share of the progress bar; a cancelled job kills ffmpeg
(`StageContext.report` raises inside the progress callback). A render that fails ends the job
with a message a person can read (ffmpeg's stderr goes to the log, not to the user), and the
attempt's folder is removed, so the next attempt starts clean; one that fails because the media
folder is full or not writable fails as `app.media.StorageUnavailable` says.

Results (read by `app.worker.stages.video_artefacts`)::

    {"mediaPath", "posterPath", "durationMs", "sizeBytes", "textOnScreen"}
"""

from __future__ import annotations

import errno
import logging
import os
from typing import Any

from app import media
from app.pipeline.render import RenderError, RenderSegment, render_video
from app.pipeline.run_media import RunFolder, attempt_work
from app.settings import Settings
from app.worker.pipeline import Results, StageContext, StageError, VideoInput
from db.models import JobStage

logger = logging.getLogger(__name__)

MEDIA_FILE = "video.mp4"
POSTER_FILE = "poster.png"
#: How ffmpeg reports a write that failed for want of space (the system's strerror(ENOSPC)).
_NO_SPACE = os.strerror(errno.ENOSPC)


class FfmpegRender:
    """An MP4 (H.264 + AAC, soft subtitles) made with the ffmpeg that ``imageio-ffmpeg`` ships;
    size and frame rate from ``STUDIO_RENDER_WIDTH``/``_HEIGHT``/``_FPS``."""

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
            return await self._render(context, results, run)

    async def _render(
        self, context: StageContext, results: Results, run: RunFolder
    ) -> dict[str, Any]:
        texts = {s["index"]: str(s["text"]) for s in results[JobStage.SCRIPT]["segments"]}
        timings = list(results[JobStage.VOICE]["timings"])
        vtt = next(
            (t["path"] for t in results[JobStage.CAPTIONS]["tracks"] if t["format"] == "vtt"), None
        )
        settings = self.settings
        media_path, poster_path = run.file(MEDIA_FILE), run.file(POSTER_FILE)

        async def on_progress(fraction: float) -> None:
            context.report(fraction)  # raises JobStopped once the job must stop: ffmpeg is killed

        folder = media.resolve(settings, run.relative)
        try:
            with media.writing(folder):  # its work folder, made beside the video
                rendered = await render_video(
                    segments=[
                        RenderSegment(texts[t["index"]], int(t["startMs"]), int(t["endMs"]))
                        for t in timings
                    ],
                    narration_wavs=[media.resolve(settings, t["audioPath"]) for t in timings],
                    captions_vtt=media.resolve(settings, vtt) if vtt else None,
                    output_mp4=media.resolve(settings, media_path),
                    poster_png=media.resolve(settings, poster_path),
                    width=settings.render_width,
                    height=settings.render_height,
                    fps=settings.render_fps,
                    font_file=settings.render_font_file,
                    on_progress=on_progress,
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
        }

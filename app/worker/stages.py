"""The stages a job runs.

SCRIPT (here, `ScriptFromDescription`; `app.pipeline.hosted_script.HostedScript` when a hosted
model is configured) turns the description, or the article of the page at the video's URL, into
a title and scenes (`app.pipeline.script`); `app.pipeline.voice.SynthesizedVoice` synthesizes
one WAV per segment with eSpeak NG or a neural voice; `app.pipeline.captions.TimedCaptions`
writes WebVTT and SRT files timed word by word to that audio;
`app.pipeline.render_stage.FfmpegRender` renders the MP4 and its poster. Their results are
described in those modules.

What each stage returns (the contract between stages, read by `video_artefacts`):

* SCRIPT: ``{"title", "segments": [{"index", "text", "kind", …}], "wordsPerMinute", …}`` — the
  title first, then the scenes (`app.pipeline.script` has the whole shape); for a URL video
  also ``"pictures"``, the page's picture URLs (RENDER fetches them);
* VOICE: ``{"timings": [{"index", "startMs", "endMs", "audioPath", "words"}], "durationMs", …}``;
* CAPTIONS: ``{"tracks": [{"language", "format", "path"}]}``;
* RENDER: ``{"mediaPath", "posterPath", "durationMs", …}``.

Paths are relative to the media folder.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.pipeline import pace, script
from app.pipeline.script import Script, split_script
from app.pipeline.sentences import MAX_SEGMENT_CHARS
from app.pipeline.voice_profile import profile_settings
from app.settings import Settings
from app.worker.pipeline import Results, Stage, StageContext, StageError, VideoInput
from db.models import JobStage, VideoInputType
from db.queries.job_leases import VideoArtefacts

if TYPE_CHECKING:
    from app.pipeline.extract import PageText

__all__ = ["MAX_SEGMENT_CHARS", "ScriptFromDescription", "default_stages", "split_script"]


def default_stages(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession] | None = None
) -> list[Stage]:
    """The stages a worker runs. ``sessionmaker`` lets SCRIPT and VOICE read the video's voice
    profile."""
    # Imported here: app.pipeline builds on app.worker.pipeline, which imports this package.
    from app.pipeline.captions import TimedCaptions
    from app.pipeline.render_stage import FfmpegRender
    from app.pipeline.voice import SynthesizedVoice

    delay = settings.pipeline_stage_delay_ms / 1000
    script_stage: Stage = ScriptFromDescription(settings, sessionmaker)
    if settings.script_model_url is not None:
        from app.pipeline.hosted_script import HostedScript

        fallback = ScriptFromDescription(settings, sessionmaker)
        script_stage = HostedScript(settings, fallback=fallback)
    return [
        script_stage,
        SynthesizedVoice(settings, sessionmaker, delay_seconds=delay),
        TimedCaptions(settings, delay_seconds=delay),
        FfmpegRender(settings, delay_seconds=delay),
    ]


class ScriptFromDescription:
    """The built-in SCRIPT: the description in scenes, or a summary of the page at the video's
    URL (fetched safely: `app.pipeline.fetch`; extracted: `app.pipeline.extract`) fitted to the
    video's target duration at the pace of its voice (`app.pipeline.pace`)."""

    name = JobStage.SCRIPT
    weight = 1.0

    def __init__(
        self,
        settings: Settings | None = None,
        sessionmaker: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self.settings = settings  # the fetch limits and allowed hosts; from the environment if None
        self.sessionmaker = sessionmaker  # reads the voice profile's rate; default pace if None

    async def run(
        self, context: StageContext, video: VideoInput, results: Results
    ) -> dict[str, Any]:
        page = await self.read_source(context, video)
        wpm = await self.words_per_minute(video)
        written = await self.write(video, page, wpm)
        context.report(1.0)
        return self.result(written, video, page, wpm)

    @staticmethod
    def result(
        written: Script, video: VideoInput, page: PageText | None, wpm: float
    ) -> dict[str, Any]:
        """SCRIPT's result, whoever wrote the script: for a URL video with the page's picture
        URLs, which RENDER fetches."""
        result = written.result(wpm=wpm, target_seconds=video.target_duration_seconds)
        if page is not None:
            result["pictures"] = list(page.pictures)
        return result

    async def read_source(self, context: StageContext, video: VideoInput) -> PageText | None:
        """The page's text for a URL video (``None`` for a description); `StageError` when
        there is nothing to read."""
        if video.input_type is not VideoInputType.URL:
            if not (video.description or "").strip():
                raise StageError("The video has no description to narrate.")
            return None
        # Imported here: trafilatura is loaded only by workers that meet a URL video.
        from app.pipeline.extract import read_page
        from app.pipeline.fetch import FetchError
        from app.settings import load_settings

        if not (video.source_url or "").strip():
            raise StageError("The video has no web address to read.")
        context.report(0.05)
        try:
            page = await read_page(
                video.source_url or "", settings=self.settings or load_settings()
            )
        except FetchError as error:
            raise StageError(error.user_message) from error
        context.report(0.5)
        return page

    async def words_per_minute(self, video: VideoInput) -> float:
        engine_settings, _ = await profile_settings(self.sessionmaker, video.voice_profile_id)
        return pace.words_per_minute(engine_settings, video.audio_settings)

    async def write(self, video: VideoInput, page: PageText | None, wpm: float) -> Script:
        if page is None:
            return script.from_description(video.title, video.description or "")
        # Scoring is CPU work (up to half a second: bench/bench_script.py), kept off the loop.
        return await asyncio.to_thread(
            script.from_page,
            page,
            title=video.title,
            target_seconds=video.target_duration_seconds,
            wpm=wpm,
        )


def video_artefacts(results: Results) -> VideoArtefacts:
    """What a successful run leaves on the video: the ``script`` (segments with their timings),
    the ``caption_tracks`` and the rendered media (`Video` column names)."""
    timings = {t["index"]: t for t in results.get(JobStage.VOICE, {}).get("timings", [])}
    segments = [
        {
            "index": segment["index"],
            "text": segment["text"],
            "startMs": timings.get(segment["index"], {}).get("startMs"),
            "endMs": timings.get(segment["index"], {}).get("endMs"),
        }
        for segment in results[JobStage.SCRIPT]["segments"]
    ]
    render = results.get(JobStage.RENDER, {})
    return VideoArtefacts(
        script={"segments": segments},
        caption_tracks=list(results.get(JobStage.CAPTIONS, {}).get("tracks", [])),
        media_path=render.get("mediaPath"),
        poster_path=render.get("posterPath") if render.get("mediaPath") else None,
        duration_ms=render.get("durationMs") if render.get("mediaPath") else None,
    )

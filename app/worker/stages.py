"""The stages a job runs.

SCRIPT (here) turns the description, or the readable text of the page at the video's URL, into
narration segments; `app.pipeline.voice.SynthesizedVoice` synthesizes one WAV per segment with
eSpeak NG or a neural voice; `app.pipeline.captions.TimedCaptions` writes WebVTT and SRT files
timed word by word to that audio;
`app.pipeline.render_stage.FfmpegRender` renders the MP4 and its poster. Their results are
described in those modules.

What each stage returns (the contract between stages, read by `video_artefacts`):

* SCRIPT: ``{"segments": [{"index", "text"}]}`` — the title first, then the narration; for a
  URL video also ``"pictures"``, the page's picture URLs (RENDER fetches them);
* VOICE: ``{"timings": [{"index", "startMs", "endMs", "audioPath", "words"}], "durationMs", …}``;
* CAPTIONS: ``{"tracks": [{"language", "format", "path"}]}``;
* RENDER: ``{"mediaPath", "posterPath", "durationMs", …}``.

Paths are relative to the media folder.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.pipeline.words import wrap
from app.settings import Settings
from app.worker.pipeline import Results, Stage, StageContext, StageError, VideoInput
from db.models import JobStage, VideoInputType
from db.queries.job_leases import VideoArtefacts

#: Longest narration segment: about two spoken sentences, or one caption screen of ~4 lines.
MAX_SEGMENT_CHARS = 220


def default_stages(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession] | None = None
) -> list[Stage]:
    """The stages a worker runs. ``sessionmaker`` lets VOICE read the video's voice profile."""
    # Imported here: app.pipeline builds on app.worker.pipeline, which imports this package.
    from app.pipeline.captions import TimedCaptions
    from app.pipeline.render_stage import FfmpegRender
    from app.pipeline.voice import SynthesizedVoice

    delay = settings.pipeline_stage_delay_ms / 1000
    return [
        ScriptFromDescription(settings),
        SynthesizedVoice(settings, sessionmaker, delay_seconds=delay),
        TimedCaptions(settings, delay_seconds=delay),
        FfmpegRender(settings, delay_seconds=delay),
    ]


class ScriptFromDescription:
    """Narration segments from the video's description, or from the readable text of the page
    at its URL (fetched safely: `app.pipeline.fetch`; extracted: `app.pipeline.extract`)."""

    name = JobStage.SCRIPT
    weight = 1.0

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings  # the fetch limits and allowed hosts; from the environment if None

    async def run(
        self, context: StageContext, video: VideoInput, results: Results
    ) -> dict[str, Any]:
        if video.input_type is VideoInputType.URL:
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
            texts = split_script(page.title or video.title, page.text)
            context.report(1.0)
            segments = [{"index": i, "text": text} for i, text in enumerate(texts)]
            return {"segments": segments, "pictures": list(page.pictures)}
        if not (video.description or "").strip():
            raise StageError("The video has no description to narrate.")
        texts = split_script(video.title, video.description or "")
        context.report(1.0)
        return {"segments": [{"index": i, "text": text} for i, text in enumerate(texts)]}


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


# --- script segmentation ------------------------------------------------------------------

# A run of text up to and including its closing punctuation (and any closing quotes/brackets).
_SENTENCE = re.compile("[^.!?\u2026]+(?:[.!?\u2026]+[\"'\u201d\u2019)\\]]*|$)")
_CLAUSE_BREAK = re.compile(r"(?<=[,;:—])\s+")


def split_script(title: str, description: str) -> list[str]:
    """The title, then the description as segments of whole sentences, each at most
    `MAX_SEGMENT_CHARS` long; a paragraph break always starts a new segment."""
    segments = [" ".join(title.split())]
    for paragraph in re.split(r"\n\s*\n", description):
        text = " ".join(paragraph.split())
        if text:
            sentences = [s.strip() for s in _SENTENCE.findall(text) if s.strip()]
            segments += _pack(piece for sentence in sentences for piece in _fit(sentence))
    return segments


def _fit(sentence: str) -> list[str]:
    """A sentence too long for one segment, cut at clause breaks, else between words."""
    if len(sentence) <= MAX_SEGMENT_CHARS:
        return [sentence]
    clauses = _CLAUSE_BREAK.split(sentence)
    if len(clauses) > 1:
        return list(_pack(piece for clause in clauses for piece in _fit(clause)))
    return wrap(sentence, MAX_SEGMENT_CHARS)


def _pack(pieces: Any) -> list[str]:
    packed: list[str] = []
    for piece in pieces:
        if packed and len(packed[-1]) + 1 + len(piece) <= MAX_SEGMENT_CHARS:
            packed[-1] = f"{packed[-1]} {piece}"
        else:
            packed.append(piece)
    return packed

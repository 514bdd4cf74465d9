"""CAPTIONS: WebVTT and SRT files timed to the synthesized narration.

Each script segment is on screen for exactly as long as its audio (the VOICE stage's timings).
A segment too long for one caption is split into cues of at most `MAX_LINES` lines of at most
`LINE_CHARS` characters (the usual limits for readable subtitles), each cue's share of the
segment's time proportional to its number of characters. Cues follow each other in order and
never overlap; the pause between two segments shows no caption.

The files are stored next to the audio (``captions/<language>.vtt`` and ``.srt`` in the attempt's
folder, see `app.pipeline.run_media`). The tracks carry their media-relative ``path``, never a
URL: a signed URL expires, so `schema.types.video_data.CaptionTrack` signs one each time
``captionTracks`` is read.

Results: ``{"tracks": [{"language", "format": "vtt" | "srt", "path"}]}``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from app import media
from app.pipeline.run_media import RunFolder, attempt_work, run_blocking
from app.pipeline.words import wrap
from app.settings import Settings
from app.worker.pipeline import Results, StageContext, VideoInput
from db.models import JobStage

LINE_CHARS = 42
MAX_LINES = 2

_LANGUAGE = re.compile(r"[A-Za-z0-9]{1,8}(?:-[A-Za-z0-9]{1,8})*")


@dataclass(frozen=True)
class Cue:
    start_ms: int
    end_ms: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class TimedCaptions:
    """WebVTT and SRT caption files from the script and the VOICE stage's timings."""

    name = JobStage.CAPTIONS
    weight = 1.0

    def __init__(self, settings: Settings, *, delay_seconds: float = 0.0) -> None:
        self.settings = settings
        self.delay_seconds = delay_seconds  # test-only, as `EspeakVoice.delay_seconds`

    async def run(
        self, context: StageContext, video: VideoInput, results: Results
    ) -> dict[str, Any]:
        run = RunFolder.of(context, video)
        async with attempt_work(self.settings, run, test_delay=self.delay_seconds):
            return await self._write(context, video, results, run)

    async def _write(
        self, context: StageContext, video: VideoInput, results: Results, run: RunFolder
    ) -> dict[str, Any]:
        voice = results[JobStage.VOICE]
        texts = {s["index"]: str(s["text"]) for s in results[JobStage.SCRIPT]["segments"]}
        cues = narration_cues(
            (texts[t["index"]], int(t["startMs"]), int(t["endMs"])) for t in voice["timings"]
        )
        language = str(voice.get("language") or video.audio_settings.get("language") or "und")
        stem = language if _LANGUAGE.fullmatch(language) else "und"
        tracks = []
        for extension, render in (("vtt", webvtt), ("srt", srt)):
            path = run.file("captions", f"{stem}.{extension}")
            await run_blocking(media.write_file, self.settings, path, render(cues).encode())
            tracks.append({"language": language, "format": extension, "path": path})
            context.report(len(tracks) / 2)
        return {"tracks": tracks}


# --- cues ---------------------------------------------------------------------------------


def narration_cues(segments: Iterable[tuple[str, int, int]]) -> list[Cue]:
    """The cues of a whole narration: ``(text, start_ms, end_ms)`` per segment, in order."""
    return [cue for text, start, end in segments for cue in segment_cues(text, start, end)]


def segment_cues(text: str, start_ms: int, end_ms: int) -> list[Cue]:
    """One segment's cues, its time shared out in proportion to their characters."""
    lines = wrap(text, LINE_CHARS)
    groups = [lines[i : i + MAX_LINES] for i in range(0, len(lines), MAX_LINES)]
    if not groups:
        return []
    chunks = [_balance(" ".join(group)) for group in groups]
    weights = [len(" ".join(chunk)) for chunk in chunks]
    total = sum(weights)
    cues, done, cursor = [], 0, start_ms
    for chunk, weight in zip(chunks, weights, strict=True):
        done += weight
        stop = start_ms + round((end_ms - start_ms) * done / total)
        cues.append(Cue(cursor, max(stop, cursor), chunk))
        cursor = stop
    return cues


def _balance(text: str) -> tuple[str, ...]:
    """``text`` (which fits in `MAX_LINES` lines) as lines of similar length, where possible
    breaking after punctuation, so that a cue does not read as a long line and one word."""
    if len(text) <= LINE_CHARS:
        return (text,)
    words = text.split(" ")
    best: tuple[str, str] | None = None
    best_score = 0.0
    for cut in range(1, len(words)):
        first, second = " ".join(words[:cut]), " ".join(words[cut:])
        if len(first) > LINE_CHARS or len(second) > LINE_CHARS:
            continue
        score = abs(len(first) - len(second)) - (8 if first.endswith((",", ";", ":", ".")) else 0)
        if best is None or score < best_score:
            best, best_score = (first, second), score
    return best if best is not None else tuple(wrap(text, LINE_CHARS))


# --- files --------------------------------------------------------------------------------


def webvtt(cues: Sequence[Cue]) -> str:
    """A WebVTT file. Cue text is escaped (``&``, ``<``, ``>``) so it is shown, not parsed."""
    body = "".join(
        f"{_timestamp(cue.start_ms, '.')} --> {_timestamp(cue.end_ms, '.')}\n"
        f"{_escape_vtt(cue.text)}\n\n"
        for cue in cues
    )
    return f"WEBVTT\n\n{body}"


def srt(cues: Sequence[Cue]) -> str:
    """A SubRip file: numbered cues, comma before the milliseconds."""
    return "".join(
        f"{number}\n{_timestamp(cue.start_ms, ',')} --> {_timestamp(cue.end_ms, ',')}\n"
        f"{cue.text.replace('-->', '->')}\n\n"
        for number, cue in enumerate(cues, start=1)
    )


def _escape_vtt(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _timestamp(ms: int, separator: str) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{millis:03d}"

"""CAPTIONS: WebVTT and SRT files timed word by word to the synthesized narration.

Each script segment is on screen for exactly as long as its audio (the VOICE stage's timings).
A segment too long for one caption is split into cues of at most `MAX_LINES` lines of at most
`LINE_CHARS` characters (the usual limits for readable subtitles), at the words the synthesizer
placed (the VOICE stage's ``words``, from eSpeak NG's word events or Piper's phoneme
durations): where a cue must end, it ends at the longest pause among its words — a clause's
punctuation wins a close call — and changes to the next cue halfway through that pause, so the
text changes while nothing is said. Cues follow each other in order and never overlap; the
pause between two segments shows no caption. Timings without words (results from before the
words were kept) share a segment's time out by characters, as before.

Beside them, ``captions/<language>.words.vtt`` is a word-highlight track: the same cues with a
WebVTT timestamp tag before each word, so that a player styles the words already said
(``::cue(:past)``) apart from those to come. `Settings.word_captions` lists it among the
tracks too (format ``vtt``, ``kind`` ``words``).

The files are stored next to the audio (``captions/<language>.vtt`` and ``.srt`` in the attempt's
folder, see `app.pipeline.run_media`). The tracks carry their media-relative ``path``, never a
URL: a signed URL expires, so `schema.types.video_data.CaptionTrack` signs one each time
``captionTracks`` is read.

Results: ``{"tracks": [{"language", "format": "vtt" | "srt", "path", "kind"?}]}``.
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


#: A cue shorter than this is not ended at a pause when it could go on: a flash of two words
#: is harder to read than a longer line.
MIN_CUE_CHARS = 16
_CLAUSE_END = (",", ".", ";", ":", "!", "?")


@dataclass(frozen=True)
class Cue:
    start_ms: int
    end_ms: int
    lines: tuple[str, ...]
    #: When each word after the first is spoken (ms), for the word-highlight track.
    word_starts: tuple[int, ...] = ()

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
        cues = timed_cues(voice["timings"], texts)
        language = str(voice.get("language") or video.audio_settings.get("language") or "und")
        stem = language if _LANGUAGE.fullmatch(language) else "und"
        tracks: list[dict[str, Any]] = []
        files = (("vtt", "", webvtt), ("srt", "", srt), ("vtt", "words", highlighted_webvtt))
        for number, (extension, kind, render) in enumerate(files, start=1):
            path = run.file("captions", f"{stem}.{kind + '.' if kind else ''}{extension}")
            await run_blocking(media.write_file, self.settings, path, render(cues).encode())
            track = {"language": language, "format": extension, "path": path}
            if not kind:
                tracks.append(track)
            elif self.settings.word_captions:
                tracks.append({**track, "kind": kind})
            context.report(number / len(files))
        return {"tracks": tracks}


# --- cues ---------------------------------------------------------------------------------


def timed_cues(timings: Iterable[dict[str, Any]], texts: dict[Any, str]) -> list[Cue]:
    """The cues of a whole narration from the VOICE stage's ``timings`` and the segments'
    ``texts`` by index: by its words where a timing has them, else by characters."""
    return [cue for timing in timings for cue in _timing_cues(timing, texts)]


def word_cues(words: Sequence[tuple[str, int, int]], start_ms: int, end_ms: int) -> list[Cue]:
    """One segment's cues from its words, ``(text, start_ms, end_ms)`` as spoken, in order."""
    groups: list[list[tuple[str, int, int]]] = []
    current: list[tuple[str, int, int]] = []
    for word in words:
        if current and not _fits([*current, word]):
            cut = _best_cut(current, word)
            groups.append(current[:cut])
            current = current[cut:]
        current.append(word)
    if current:
        groups.append(current)
    cues: list[Cue] = []
    cursor = start_ms
    for number, group in enumerate(groups):
        if number + 1 < len(groups):
            following = groups[number + 1][0][1]
            stop = max(cursor, (group[-1][2] + following) // 2)
        else:
            stop = max(cursor, end_ms)
        starts = tuple(min(max(w[1], cursor), stop) for w in group[1:])
        cues.append(Cue(cursor, stop, _balance(" ".join(w[0] for w in group)), starts))
        cursor = stop
    return cues


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


def _timing_cues(timing: dict[str, Any], texts: dict[Any, str]) -> list[Cue]:
    start, end = int(timing["startMs"]), int(timing["endMs"])
    words = [(str(w["text"]), int(w["startMs"]), int(w["endMs"])) for w in timing.get("words", [])]
    if not words:
        return segment_cues(texts[timing["index"]], start, end)
    return word_cues(words, start, end)


def _fits(words: Sequence[tuple[str, int, int]]) -> bool:
    return len(wrap(" ".join(w[0] for w in words), LINE_CHARS)) <= MAX_LINES


def _best_cut(words: Sequence[tuple[str, int, int]], coming: tuple[str, int, int]) -> int:
    """Where to end a full cue: after the word followed by the longest pause, a clause's end
    counting as a pause of 150 ms more (eSpeak pauses there; its word ends are less exact),
    among the cuts that leave the cue at least `MIN_CUE_CHARS` long and let the rest with
    ``coming`` fit in one cue. Ties go to the later cut."""
    best, best_score = len(words), -1.0
    for cut in range(1, len(words) + 1):
        before = words[:cut]
        if len(" ".join(w[0] for w in before)) < MIN_CUE_CHARS and cut < len(words):
            continue
        if not _fits([*words[cut:], coming]):
            continue
        following = words[cut] if cut < len(words) else coming
        gap = following[1] - before[-1][2]
        score = gap + (150 if before[-1][0].endswith(_CLAUSE_END) else 0)
        if score >= best_score:
            best, best_score = cut, score
    return best


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


def highlighted_webvtt(cues: Sequence[Cue]) -> str:
    """The word-highlight track: each cue with a timestamp tag before each word after its
    first, when that word is spoken (WebVTT's karaoke-style cue text)."""
    body = "".join(
        f"{_timestamp(cue.start_ms, '.')} --> {_timestamp(cue.end_ms, '.')}\n{_timed_text(cue)}\n\n"
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


def _timed_text(cue: Cue) -> str:
    lines = [line.split(" ") for line in cue.lines]
    if sum(len(line) for line in lines) != len(cue.word_starts) + 1:
        return _escape_vtt(cue.text)  # a word was cut across lines: no tags to place
    starts = iter(cue.word_starts)
    out: list[str] = []
    for number, line in enumerate(lines):
        words = []
        for index, word in enumerate(line):
            tag = "" if number == 0 and index == 0 else f"<{_timestamp(next(starts), '.')}>"
            words.append(f"{tag}{_escape_vtt(word)}")
        out.append(" ".join(words))
    return "\n".join(out)


def _escape_vtt(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _timestamp(ms: int, separator: str) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{millis:03d}"

"""Caption cues: readable, in order, never overlapping, timed to the narration; valid files."""

from __future__ import annotations

import re
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from app.pipeline.captions import (
    LINE_CHARS,
    MAX_LINES,
    Cue,
    narration_cues,
    segment_cues,
    srt,
    webvtt,
)
from app.pipeline.words import wrap

LONG_SEGMENT = (
    "Panels on a roof, facing south and tilted at the latitude's angle, collect the most light "
    "over a year; panels facing east or west collect less, though they spread the output more "
    "evenly across the day."
)
NARRATION = [
    ("How solar panels work", 0, 1_400),
    (LONG_SEGMENT, 1_700, 12_900),
    ("Sunlight knocks electrons loose.", 13_200, 15_050),
]

_VTT_TIME = r"(\d\d):(\d\d):(\d\d)\.(\d{3})"
_SRT_TIME = r"(\d\d):(\d\d):(\d\d),(\d{3})"


def test_cues_cover_each_segment_in_order_without_overlap() -> None:
    cues = narration_cues(NARRATION)
    assert [c.start_ms for c in cues] == sorted(c.start_ms for c in cues)
    assert all(a.end_ms <= b.start_ms for a, b in pairwise(cues))
    assert all(c.end_ms > c.start_ms for c in cues)
    for text, start, end in NARRATION:
        own = [c for c in cues if start <= c.start_ms < end]
        assert own[0].start_ms == start
        assert own[-1].end_ms == end
        assert all(a.end_ms == b.start_ms for a, b in pairwise(own))  # no gap inside
        assert _words(own) == text.split()
    assert len([c for c in cues if 1_700 <= c.start_ms < 12_900]) > 1  # the long one is split


def test_each_cue_is_at_most_two_short_lines() -> None:
    for cue in narration_cues(NARRATION):
        assert 1 <= len(cue.lines) <= MAX_LINES
        assert all(0 < len(line) <= LINE_CHARS for line in cue.lines)


def test_time_is_shared_out_by_characters() -> None:
    cues = segment_cues(LONG_SEGMENT, 1_000, 11_000)
    total = sum(len(" ".join(c.lines)) for c in cues)
    for cue in cues:
        share = len(" ".join(cue.lines)) / total * 10_000
        assert abs((cue.end_ms - cue.start_ms) - share) <= 1


def test_two_line_cues_are_balanced() -> None:
    (cue,) = segment_cues("Sunlight knocks electrons loose, and they flow as a current.", 0, 900)
    assert cue.lines == ("Sunlight knocks electrons loose,", "and they flow as a current.")


def test_a_word_longer_than_a_line_is_cut() -> None:
    url = "https://example.com/" + "a" * 100
    assert all(len(line) <= LINE_CHARS for line in wrap(f"See {url} now", LINE_CHARS))
    assert "".join(wrap(url, LINE_CHARS)) == url


def test_webvtt_is_well_formed_and_escaped() -> None:
    cues = [*narration_cues(NARRATION), Cue(15_100, 16_000, ("Tom & Jerry <b> --> x",))]
    text = webvtt(cues)
    assert text.startswith("WEBVTT\n\n")
    blocks = text.removeprefix("WEBVTT\n\n").removesuffix("\n\n").split("\n\n")
    assert len(blocks) == len(cues)
    for block, cue in zip(blocks, cues, strict=True):
        timing, *lines = block.split("\n")
        match = re.fullmatch(f"{_VTT_TIME} --> {_VTT_TIME}", timing)
        assert match is not None
        assert (_ms(match.groups()[:4]), _ms(match.groups()[4:])) == (cue.start_ms, cue.end_ms)
        assert 1 <= len(lines) <= MAX_LINES
        assert all("-->" not in line and "<" not in line for line in lines)
    assert blocks[-1].endswith("Tom &amp; Jerry &lt;b&gt; --&gt; x")


def test_srt_is_numbered_and_timed_like_the_webvtt() -> None:
    cues = narration_cues(NARRATION)
    blocks = srt(cues).removesuffix("\n\n").split("\n\n")
    assert len(blocks) == len(cues)
    for number, (block, cue) in enumerate(zip(blocks, cues, strict=True), start=1):
        index, timing, *lines = block.split("\n")
        assert index == str(number)
        match = re.fullmatch(f"{_SRT_TIME} --> {_SRT_TIME}", timing)
        assert match is not None
        assert (_ms(match.groups()[:4]), _ms(match.groups()[4:])) == (cue.start_ms, cue.end_ms)
        assert tuple(lines) == cue.lines


def test_timestamps_past_an_hour() -> None:
    (cue,) = segment_cues("Late.", 3_723_004, 3_724_000)
    assert "01:02:03.004 --> 01:02:04.000" in webvtt([cue])
    assert "01:02:03,004 --> 01:02:04,000" in srt([cue])


_word = st.text(st.characters(categories=["L", "N", "P"]), min_size=1, max_size=60)


@settings(max_examples=150, deadline=None)
@given(
    segments=st.lists(
        st.tuples(st.lists(_word, min_size=1, max_size=40), st.integers(200, 20_000)),
        min_size=1,
        max_size=6,
    )
)
def test_any_narration_gives_readable_ordered_cues(segments: list[tuple[list[str], int]]) -> None:
    narration, cursor = [], 0
    for words, duration in segments:
        narration.append((" ".join(words), cursor, cursor + duration))
        cursor += duration + 300
    cues = narration_cues(narration)
    assert all(a.end_ms <= b.start_ms for a, b in pairwise(cues))
    assert all(c.start_ms < c.end_ms for c in cues)
    assert all(1 <= len(c.lines) <= MAX_LINES for c in cues)
    assert all(0 < len(line) <= LINE_CHARS for c in cues for line in c.lines)
    assert "".join("".join(c.lines) for c in cues).replace(" ", "") == "".join(
        "".join(words) for words, _ in segments
    )
    assert cues[0].start_ms == 0
    assert cues[-1].end_ms == narration[-1][2]


def _words(cues: list[Cue]) -> list[str]:
    return " ".join(" ".join(c.lines) for c in cues).split()


def _ms(parts: tuple[str | None, ...]) -> int:
    hours, minutes, seconds, millis = (int(p or 0) for p in parts)
    return ((hours * 60 + minutes) * 60 + seconds) * 1000 + millis

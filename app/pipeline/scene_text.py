"""The text drawn on scenes: the title card's title, the captions with the word being spoken
highlighted, and the end card.

Everything is ``drawtext``. Text reaches it in files (``textfile``, ``expansion=none``), so no
user text is ever parsed as filter syntax; `TextFiles` writes them into the render's folder.

Captions sit in the lower part of the title-safe area (10 % margins), one ``drawtext`` per line
on a translucent box. The word being spoken is drawn over its line in the theme's accent colour:
drawtext cannot colour one word of a line, so a line is drawn left-aligned, and the highlight is
that line's words *up to and including* the current word in the accent colour, with the words
*before* it drawn over again in white. Both start at the line's own ``x`` with the same font, so
each prefix lands exactly on the glyphs beneath it; every layer has an outline of the same width
(black, the highlight's in the accent colour, which makes the spoken word bolder), so the white
layer covers the highlight's outline of the words before too. A line is centred by an estimate
of its width (drawtext measures only its own text); a line wider than estimated is kept inside
the frame. A cue whose words and word times do not match (a word cut across lines) is shown
without the highlight, as the word-highlight WebVTT track does.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

from app.pipeline.captions import Cue
from app.pipeline.theme import Theme

#: Of the frame: the margin of the title-safe area on each side.
SAFE_MARGIN = 0.10
#: A character's width, as a share of the font size, for centring (generous for sans fonts).
CHAR_WIDTH = 0.56
CAPTION_BOX = "black@0.55"


class TextFiles:
    """Numbered text files in ``folder``, named for ``drawtext``'s ``textfile`` option."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._count = 0

    def add(self, text: str) -> str:
        name = f"text-{self._count}.txt"
        self._count += 1
        (self._folder / name).write_text(text, encoding="utf-8")
        return name


def title_card(
    title: str, files: TextFiles, font: str, size: tuple[int, int], theme: Theme
) -> list[str]:
    """The title, large and centred, with an accent bar above it."""
    width, height = size
    lines, points = layout(title, width, height, start=height // 10, share=0.6)
    if not lines:
        return []
    block = len(lines) * points * 1.25
    bar_w, bar_h = max(2, width // 12 // 2 * 2), max(2, height // 120)
    bar_y = max(0, round((height - block) / 2 - 3 * bar_h))
    return [
        f"drawbox=x={(width - bar_w) // 2}:y={bar_y}:w={bar_w}:h={bar_h}:c={theme.accent}:t=fill",
        _centred(files.add("\n".join(lines)), font, points, "(h-text_h)/2+" + str(2 * bar_h)),
    ]


def end_card(
    title: str, label: str | None, files: TextFiles, font: str, size: tuple[int, int], theme: Theme
) -> list[str]:
    """The title again, smaller, and under it ``label`` (where the video's text came from)."""
    width, height = size
    lines, points = layout(title, width, height, start=height // 14, share=0.4)
    filters = []
    if lines:
        filters.append(_centred(files.add("\n".join(lines)), font, points, "(h-text_h)/2-h/12"))
    small = max(8, height // 28)
    if label:
        (shown,) = textwrap.wrap(label, 80, max_lines=1, placeholder="…") or [""]
        filters.append(_centred(files.add(shown), font, small, "h/2+h/12", colour=theme.accent))
    return filters


def captions(
    cues: Sequence[Cue], offset_ms: float, files: TextFiles, font: str, size: tuple[int, int],
    theme: Theme,
) -> list[str]:  # fmt: skip
    """Each cue's lines while it is on, times relative to the scene (which starts at
    ``offset_ms``), with its current word highlighted."""
    width, height = size
    points = max(8, height // 20)
    line_height = round(points * 1.45)
    outline = max(1, points // 24)
    bottom = round(height * (1 - SAFE_MARGIN))
    filters: list[str] = []
    for cue in cues:
        rows = [line.split(" ") for line in cue.lines]
        timed = sum(len(row) for row in rows) == len(cue.word_starts) + 1
        starts = [cue.start_ms, *cue.word_starts, cue.end_ms]
        word = 0
        for number, row in enumerate(rows):
            line = " ".join(row)
            x = _left(line, points, width)
            y = bottom - (len(rows) - number) * line_height
            place = (
                f"{font}:expansion=none:fontsize={points}:y_align=font:x={x}:y={y}"
                f":borderw={outline}"
            )
            on = _between(cue.start_ms - offset_ms, cue.end_ms - offset_ms)
            pad = max(2, points // 4)
            filters.append(
                f"drawtext={place}:textfile={files.add(line)}:fontcolor=white:bordercolor=black"
                f":box=1:boxcolor={CAPTION_BOX}:boxborderw={pad}:enable='{on}'"
            )
            for position in range(len(row)) if timed else ():
                spoken = _between(starts[word] - offset_ms, starts[word + 1] - offset_ms)
                through, before = " ".join(row[: position + 1]), " ".join(row[:position])
                filters.append(
                    f"drawtext={place}:textfile={files.add(through)}:fontcolor={theme.accent}"
                    f":bordercolor={theme.accent}:enable='{spoken}'"
                )
                if before:
                    filters.append(
                        f"drawtext={place}:textfile={files.add(before)}:fontcolor=white"
                        f":bordercolor=black:enable='{spoken}'"
                    )
                word += 1
    return filters


def layout(
    text: str, width: int, height: int, *, start: int | None = None, share: float = 0.8
) -> tuple[list[str], int]:
    """Wrapped lines and a font size (from ``start``, by default a 16th of the height) that fit
    in about 84 % of the width by ``share`` of the height. Widths are estimated (0.6 of the
    font size a character, generous for sans fonts); ``fix_bounds`` keeps a line that is
    wider than estimated inside the frame."""
    words = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    size = max(8, start or height // 16)
    while True:
        columns = max(8, int(width * 0.84 / (size * 0.6)))
        lines = textwrap.wrap(words, columns, break_on_hyphens=False)
        if len(lines) * size * 1.25 <= height * share or size <= 8:
            return lines, size
        size = max(8, int(size * 0.9))


def _centred(textfile: str, font: str, points: int, y: str, *, colour: str = "white") -> str:
    return (
        f"drawtext={font}:textfile={textfile}:expansion=none:fontsize={points}"
        f":fontcolor={colour}:line_spacing={points // 4}:text_align=C"
        f":shadowcolor=black@0.5:shadowx=2:shadowy=2"
        f":x=(w-text_w)/2:y={y}:fix_bounds=1"
    )


def _left(line: str, points: int, width: int) -> int:
    """Where a line starts for its estimated width to be centred, inside the safe area."""
    estimate = len(line) * points * CHAR_WIDTH
    return max(round(width * SAFE_MARGIN / 2), round((width - estimate) / 2))


def _between(start_ms: float, end_ms: float) -> str:
    return f"gte(t,{start_ms / 1000:.3f})*lt(t,{end_ms / 1000:.3f})"

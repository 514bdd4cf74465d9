"""Sentences grouped into scenes: what one screen shows while the narration says it.

A scene is one or two whole sentences of one paragraph, at most `MAX_SEGMENT_CHARS` long, under
the heading of its section. A scene never crosses a paragraph break or a heading, so headings
are scene boundaries. A sentence too long for one screen is cut at clause breaks, else between
words (`app.pipeline.sentences.fit`), and each piece is a scene of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from app.pipeline.sentences import MAX_SEGMENT_CHARS, fit

#: Most sentences one scene holds.
SENTENCES_PER_SCENE = 2


@dataclass(frozen=True)
class Scene:
    text: str
    section: int  # which section of the source it comes from, counting from 0
    heading: str | None  # that section's heading (None before the first heading)


@dataclass(frozen=True)
class Paragraph:
    """Sentences of one paragraph (or the part of it a summary kept), in order."""

    section: int
    heading: str | None
    sentences: Sequence[str]


def scenes_of(paragraphs: Iterable[Paragraph], limit: int = MAX_SEGMENT_CHARS) -> list[Scene]:
    """The scenes of ``paragraphs``, in order; no sentence and no word is lost."""
    scenes: list[Scene] = []
    for paragraph in paragraphs:
        scenes += (
            Scene(text, paragraph.section, paragraph.heading)
            for text in _group(paragraph.sentences, limit)
        )
    return scenes


def _group(sentences: Sequence[str], limit: int) -> list[str]:
    grouped: list[str] = []
    open_count = 0  # sentences in the last scene, while another one may still join it
    for sentence in sentences:
        pieces = fit(sentence, limit)
        if (
            len(pieces) == 1
            and 0 < open_count < SENTENCES_PER_SCENE
            and len(grouped[-1]) + 1 + len(sentence) <= limit
        ):
            grouped[-1] = f"{grouped[-1]} {sentence}"
            open_count += 1
        else:
            grouped += pieces
            open_count = 1 if len(pieces) == 1 else 0
    return grouped

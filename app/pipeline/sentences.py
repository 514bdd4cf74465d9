"""Text cut into sentences, and a sentence too long for the screen cut into readable pieces.

A sentence ends at ``.``, ``!``, ``?`` or ``…`` (with any closing quotes or brackets) followed by
a space, unless the word before is a common abbreviation ("e.g.", "Dr.") or an initial ("J. S.
Bach"); a point between digits ("3.5") ends nothing. Pure functions: the SCRIPT stage, the
summariser and the hosted-model answer all cut text the same way.
"""

from __future__ import annotations

import re

from app.pipeline.words import wrap

#: Longest narration segment: about two spoken sentences, or one caption screen of ~4 lines.
MAX_SEGMENT_CHARS = 220

# A candidate end: closing punctuation, closing quotes or brackets, then space (or the end).
_END = re.compile("[.!?\u2026]+[\"'\u201d\u2019)\\]]*(?=\\s|$)")
_CLAUSE_BREAK = re.compile(r"(?<=[,;:—])\s+")
_ABBREVIATIONS = frozenset(
    {
        "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "etc", "e.g", "i.e", "cf",
        "no", "fig", "approx", "inc", "ltd", "co", "jan", "feb", "mar", "apr", "jun", "jul",
        "aug", "sep", "sept", "oct", "nov", "dec", "u.s", "u.k", "a.m", "p.m",
    }
)  # fmt: skip


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` (one paragraph), whitespace collapsed, none empty."""
    text = " ".join(text.split())
    sentences: list[str] = []
    start = 0
    for end in _END.finditer(text):
        if end.group().startswith(".") and _is_abbreviation(text, end.start()):
            continue
        sentence = text[start : end.end()].strip()
        if sentence:
            sentences.append(sentence)
        start = end.end()
    if text[start:].strip():
        sentences.append(text[start:].strip())
    return sentences


def fit(sentence: str, limit: int = MAX_SEGMENT_CHARS) -> list[str]:
    """``sentence`` if it fits in ``limit`` characters, else cut at clause breaks (packed back
    together as far as they fit), else between words."""
    if len(sentence) <= limit:
        return [sentence]
    clauses = _CLAUSE_BREAK.split(sentence)
    if len(clauses) > 1:
        return pack([piece for clause in clauses for piece in fit(clause, limit)], limit)
    return wrap(sentence, limit)


def pack(pieces: list[str], limit: int = MAX_SEGMENT_CHARS) -> list[str]:
    """Consecutive ``pieces`` joined by spaces as long as the result fits in ``limit``."""
    packed: list[str] = []
    for piece in pieces:
        if packed and len(packed[-1]) + 1 + len(piece) <= limit:
            packed[-1] = f"{packed[-1]} {piece}"
        else:
            packed.append(piece)
    return packed


def _is_abbreviation(text: str, point: int) -> bool:
    """Whether the ``.`` at ``point`` closes an abbreviation or an initial, not a sentence."""
    word = text[:point].rsplit(" ", 1)[-1].lstrip("(\"'\u201c\u2018").lower()
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())

"""A video's script: its title, then scenes of one or two sentences, and what SCRIPT returns.

Two built-in writers, pure functions of their input:

* `from_description`: the description as the user wrote it, every word of it, cut into scenes
  (a paragraph break starts a new scene). A description is the user's own narration, so it is
  not shortened to the target duration; the estimate says how long it will be.
* `from_page`: the page's own title, and an extractive summary of its article
  (`app.pipeline.summary`) fitted to the target duration at the narration's pace
  (`app.pipeline.pace`), its sections' headings kept as scene boundaries.

`Script.result` is the SCRIPT stage's result, the contract VOICE, CAPTIONS and RENDER read::

    {"title": str,
     "segments": [{"index": 0, "text": title, "kind": "title"},
                  {"index": 1, "text", "kind": "scene", "section": int, "heading": str | None},
                  …],
     "writer": "description" | "summary" | "hosted",
     "wordsPerMinute": float, "targetDurationSeconds": int, "estimatedDurationMs": int}

``segments[*].index`` and ``text`` are what the later stages read today; the title (first, as
before) and each scene's heading are there for a render that wants to show them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.pipeline import pace, summary
from app.pipeline.scenes import Paragraph, Scene, scenes_of
from app.pipeline.sentences import split_sentences

if TYPE_CHECKING:
    from app.pipeline.extract import PageText, Section

DESCRIPTION, SUMMARY, HOSTED = "description", "summary", "hosted"


@dataclass(frozen=True)
class Script:
    title: str
    scenes: Sequence[Scene]
    writer: str

    def texts(self) -> list[str]:
        """What is said, in order: the title, then each scene."""
        return [self.title, *(scene.text for scene in self.scenes)]

    def result(self, *, wpm: float, target_seconds: int) -> dict[str, Any]:
        segments: list[dict[str, Any]] = [{"index": 0, "text": self.title, "kind": "title"}]
        segments += (
            {
                "index": number,
                "text": scene.text,
                "kind": "scene",
                "section": scene.section,
                "heading": scene.heading,
            }
            for number, scene in enumerate(self.scenes, start=1)
        )
        return {
            "title": self.title,
            "segments": segments,
            "writer": self.writer,
            "wordsPerMinute": wpm,
            "targetDurationSeconds": target_seconds,
            "estimatedDurationMs": pace.estimate_ms(self.texts(), wpm),
        }


def from_description(title: str, description: str) -> Script:
    paragraphs = [
        Paragraph(0, None, split_sentences(text))
        for text in re.split(r"\n\s*\n", description)
        if text.strip()
    ]
    return Script(_one_line(title), scenes_of(paragraphs), DESCRIPTION)


def from_page(page: PageText, *, title: str, target_seconds: int, wpm: float) -> Script:
    """``page`` summarised to ``target_seconds`` at ``wpm``; ``title`` when the page has none."""
    title = _one_line(page.title or title)
    sentences = sentences_of(page.sections)
    title_ms = pace.estimate_ms([title], wpm) + pace.PAUSE_MS
    chosen = summary.choose(
        sentences, title=title, budget_ms=target_seconds * 1000 - title_ms, wpm=wpm
    )
    kept: dict[int, list[summary.Sentence]] = {}
    for sentence in chosen:
        kept.setdefault(sentence.paragraph, []).append(sentence)
    paragraphs = [
        Paragraph(group[0].section, group[0].heading, [sentence.text for sentence in group])
        for group in kept.values()
    ]
    return Script(title, scenes_of(paragraphs), SUMMARY)


def sentences_of(sections: Sequence[Section]) -> list[summary.Sentence]:
    """Every sentence of ``sections``, in document order, with where it stands."""
    sentences: list[summary.Sentence] = []
    paragraph_number = 0
    for section_number, section in enumerate(sections):
        for place, paragraph in enumerate(section.paragraphs):
            for position, text in enumerate(split_sentences(paragraph)):
                sentences.append(
                    summary.Sentence(
                        text=text,
                        section=section_number,
                        paragraph=paragraph_number,
                        first_in_paragraph=position == 0,
                        first_paragraph_of_section=place == 0,
                        heading=section.heading,
                        words=pace.word_count(text),
                    )
                )
            paragraph_number += 1
    return sentences


def split_script(title: str, description: str) -> list[str]:
    """The title, then the description's scenes: what `from_description` says, as text."""
    return from_description(title, description).texts()


def _one_line(text: str) -> str:
    return " ".join(text.split())

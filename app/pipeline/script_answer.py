"""A hosted model's answer read as a script, or refused.

The model is asked (`app.pipeline.hosted_script`) for one JSON object::

    {"title": "…", "scenes": [{"heading": "…" or null, "text": "…"}, …]}

and its answer is data, never instructions (a page can try to talk to the model; whatever comes
back is only ever narrated text). An answer is refused with a `ModelFailure` when it is not that
object (a code fence around it is allowed), has no scene or more than `MAX_SCENES`, a title,
heading or scene longer than its limit, or would last more than `OVERLONG` times the target.
An accepted answer is cut like any script (`app.pipeline.scenes`): every scene becomes one or
two sentences within `MAX_SEGMENT_CHARS`, consecutive scenes under the same heading are one
section, and control characters are dropped.
"""

from __future__ import annotations

import json
import re
from typing import Any

from app.pipeline import pace
from app.pipeline.chat_client import ModelFailure
from app.pipeline.scenes import Paragraph, scenes_of
from app.pipeline.script import HOSTED, Script
from app.pipeline.sentences import split_sentences
from app.validation import TITLE_MAX

MAX_SCENES = 200
MAX_SCENE_CHARS = 1000  # before it is cut into scenes of one or two sentences
MAX_HEADING_CHARS = 200
OVERLONG = 1.5

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def parse_answer(content: str, *, title: str, target_seconds: int, wpm: float) -> Script:
    """The script in ``content``; ``title`` when the answer has none."""
    fenced = _FENCE.match(content)
    try:
        answer = json.loads(fenced.group(1) if fenced else content)
    except ValueError:
        raise ModelFailure("the model's answer is not JSON") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("scenes"), list):
        raise ModelFailure('the model\'s answer is not an object with a "scenes" list')
    scenes = answer["scenes"]
    if not 1 <= len(scenes) <= MAX_SCENES:
        raise ModelFailure(f"the model's answer has {len(scenes)} scenes (1 to {MAX_SCENES})")
    written_title = _text(answer.get("title"), "title", TITLE_MAX) or " ".join(title.split())
    paragraphs = _paragraphs(scenes)
    script = Script(written_title, scenes_of(paragraphs), HOSTED)
    estimate = pace.estimate_ms(script.texts(), wpm)
    if estimate > OVERLONG * target_seconds * 1000:
        raise ModelFailure(
            f"the model's script would last {estimate / 1000:.0f} s, "
            f"more than {OVERLONG:g} times the {target_seconds} s asked for"
        )
    return script


def _paragraphs(scenes: list[Any]) -> list[Paragraph]:
    paragraphs: list[Paragraph] = []
    section = -1
    previous: object = object()
    for number, scene in enumerate(scenes):
        if not isinstance(scene, dict):
            raise ModelFailure(f"scene {number} of the model's answer is not an object")
        text = _text(scene.get("text"), f"scene {number}", MAX_SCENE_CHARS)
        if not text:
            raise ModelFailure(f"scene {number} of the model's answer has no text")
        heading = _text(scene.get("heading"), f"scene {number}'s heading", MAX_HEADING_CHARS)
        if heading != previous:
            section, previous = section + 1, heading
        paragraphs.append(Paragraph(section, heading or None, split_sentences(text)))
    return paragraphs


def _text(value: Any, what: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ModelFailure(f"the {what} in the model's answer is not text")
    cleaned = " ".join(_CONTROL.sub(" ", value).split())
    if len(cleaned) > limit:
        raise ModelFailure(f"the {what} in the model's answer is over {limit} characters")
    return cleaned or None

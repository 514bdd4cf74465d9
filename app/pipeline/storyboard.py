"""The scenes of a video, on a timeline of frames: a title card, one scene per narration
segment, an end card.

The first segment is the video's title (SCRIPT puts it first): its scene is the title card. Each
later segment has a scene of its own, with its words as captions. A scene holds from its
segment's start until the next one begins, pause included, so no frame is ever blank; the end
card follows the last segment for `END_CARD_MS`. Consecutive scenes cross-fade for
`CROSSFADE_MS` (shorter when a scene is short): the fade starts where the next scene begins,
so each scene's caption appears with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from app.pipeline.captions import Cue

END_CARD_MS = 2500
CROSSFADE_MS = 400


class SceneKind(Enum):
    TITLE = "title"
    NARRATION = "narration"
    END = "end"


@dataclass(frozen=True)
class Scene:
    kind: SceneKind
    index: int  # its place in the video, from 0
    start: int  # first frame on screen alone (frames from the start of the video)
    frames: int  # how many frames it holds, its fade into the next one not counted
    fade: int  # frames of the cross-fade into the next scene (0: a cut, or the last scene)
    picture: Path | None  # a picture file, or None for a generated backdrop
    text: str  # the title (title and end cards) or the segment's text
    cues: tuple[Cue, ...] = ()  # captions, in ms from the start of the video

    @property
    def length(self) -> int:
        """The frames its stream lasts: its own and its fade into the next one."""
        return self.frames + self.fade


def plan_scenes(
    texts: Sequence[str],
    bounds: Sequence[int],
    cues: Sequence[Sequence[Cue]],
    pictures: Sequence[Path | None],
    *,
    fps: int,
) -> list[Scene]:
    """The scenes of segments ``texts`` whose timeline ``bounds`` (ms) are 0, each later
    segment's start, and the last one's end; ``cues`` and ``pictures`` by segment. Scenes that
    would last no frame at all (a segment shorter than a frame) are left out."""
    edges = [round(ms * fps / 1000) for ms in [*bounds, bounds[-1] + END_CARD_MS]]
    kinds = [SceneKind.TITLE, *[SceneKind.NARRATION] * (len(texts) - 1), SceneKind.END]
    drafts = []
    for index, kind in enumerate(kinds):
        if edges[index + 1] <= edges[index]:
            continue
        segment = min(index, len(texts) - 1)
        drafts.append(
            (
                kind,
                edges[index],
                edges[index + 1] - edges[index],
                pictures[segment] if index < len(texts) and segment < len(pictures) else None,
                texts[0] if kind is not SceneKind.NARRATION else texts[index],
                tuple(cues[index]) if kind is SceneKind.NARRATION else (),
            )
        )
    if not drafts:
        raise ValueError("the video is shorter than one frame")
    longest_fade = max(1, round(CROSSFADE_MS * fps / 1000))
    scenes = []
    for number, (kind, start, frames, picture, text, scene_cues) in enumerate(drafts):
        following = drafts[number + 1][2] if number + 1 < len(drafts) else 0
        fade = min(longest_fade, frames // 2, following // 2)
        scenes.append(Scene(kind, number, start, frames, fade, picture, text, scene_cues))
    return scenes

"""The scenes of a video on its timeline (app/pipeline/storyboard.py) and the colours they are
drawn in (app/pipeline/theme.py)."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

from app.pipeline.storyboard import CROSSFADE_MS, SceneKind, plan_scenes
from app.pipeline.theme import theme_for

FPS = 25


def test_scenes_hold_until_the_next_begins_and_the_end_card_follows() -> None:
    texts = ["Title", "One.", "Two."]
    bounds = [0, 1500, 4000, 6000]  # the title, then two segments; the last ends at 6 s
    picture = Path("picture.jpg")
    scenes = plan_scenes(texts, bounds, [[], [], []], [picture, None, picture], fps=FPS)
    assert [s.kind for s in scenes] == [
        SceneKind.TITLE, SceneKind.NARRATION, SceneKind.NARRATION, SceneKind.END
    ]  # fmt: skip
    assert [(s.start, s.frames) for s in scenes] == [
        (0, 38), (38, 62), (100, 50), (150, 62)  # frames, 37.5 and 62.5 rounded to even
    ]  # fmt: skip
    # No gap, no overlap: each scene starts where the one before it ends.
    assert all(a.start + a.frames == b.start for a, b in pairwise(scenes))
    assert [s.picture for s in scenes] == [picture, None, picture, None]
    assert [s.text for s in scenes] == ["Title", "One.", "Two.", "Title"]
    assert [s.fade for s in scenes] == [CROSSFADE_MS * FPS // 1000] * 3 + [0]


def test_a_fade_is_never_longer_than_half_of_either_scene() -> None:
    scenes = plan_scenes(["T", "a", "b"], [0, 120, 400, 3000], [[], [], []], [], fps=FPS)
    assert [(s.frames, s.fade) for s in scenes] == [(3, 1), (7, 3), (65, 10), (63, 0)]


def test_a_segment_shorter_than_a_frame_has_no_scene() -> None:
    scenes = plan_scenes(["T", "a", "b"], [0, 1000, 1010, 2000], [[], [], []], [], fps=FPS)
    assert [s.text for s in scenes] == ["T", "b", "T"]
    assert [s.index for s in scenes] == [0, 1, 2]
    assert (scenes[0].frames, scenes[1].start) == (25, 25)  # "b" follows the title at once


def test_a_theme_is_the_same_for_the_same_seed_and_differs_between_seeds() -> None:
    assert theme_for("video 1") == theme_for("video 1")
    hues = {round(theme_for(f"video {n}").hue, 2) for n in range(50)}
    assert len(hues) > 35  # spread round the colour wheel, not a handful of palettes
    theme = theme_for("video 1")
    for colour in (theme.dark, theme.mid, theme.light, theme.accent):
        assert len(colour) == 8
        assert colour.startswith("0x")
        int(colour, 16)
    assert theme.draw("motion", 3).unit() == theme.draw("motion", 3).unit()
    assert theme.draw("motion", 3).unit() != theme.draw("motion", 4).unit()

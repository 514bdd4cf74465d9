"""The video half of the render's filter graph: scenes that move, joined by cross-fades, under
a progress bar.

Each scene is one still frame, made once at a little more than the video's size
(`OVERSCAN`): its picture scaled to cover that size and cropped to it, or a generated backdrop
(`app.pipeline.backdrop`); the title and end cards are darkened so their text reads. The frame
is repeated (``loop``) for the scene's length, and a slow zoom and pan moves over it (Ken Burns):
``scale`` with a per-frame size, then ``crop`` to the video's size at a per-frame offset, both
eased in and out. That costs a fraction of ``zoompan`` (which scales every frame from the
source) and moves in whole pixels without its jitter (`bench/RESULTS.md`). Each scene's zoom
direction and pan come from the theme, so scenes and videos move differently. The scene's text
(`app.pipeline.scene_text`) is drawn in its own chain, so it fades with it.

Scenes cross-fade (``xfade``, over their overlap only: see `_joined`), or cut where a scene is
too short for a fade; the progress bar along the bottom edge is an accent-coloured strip slid
in from the left (``overlay`` with a per-frame ``x``) over a darker track.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from app.pipeline.backdrop import backdrop_source
from app.pipeline.storyboard import Scene, SceneKind
from app.pipeline.theme import Theme

#: The still a scene moves over, as a share of the video's size: the widest zoom.
OVERSCAN = 1.12
#: How much darker the title and end cards are than their picture (a photo needs more for the
#: title to read on it than a backdrop, which is dark already).
CARD_SHADE = "black@0.5"
BACKDROP_SHADE = "black@0.15"


def video_graph(
    scenes: Sequence[Scene],
    *,
    theme: Theme,
    size: tuple[int, int],
    fps: int,
    picture_input: Callable[[Scene], int | None],
    text: Callable[[Scene], list[str]],
) -> str:
    """The filter graph that leaves the video in ``[v]``. ``picture_input`` names the input
    holding a scene's picture (``None``: a backdrop); ``text`` gives its text filters."""
    chains = [
        f"{_still(scene, theme, size, fps, picture_input(scene))},"
        f"{_motion(scene, theme, size, fps)}"
        + "".join("," + f for f in text(scene))
        + f"[s{scene.index}]"
        for scene in scenes
    ]
    chains += _joined(scenes, fps)
    total = scenes[-1].start + scenes[-1].frames
    chains.append(_progress_bar("joined", total, theme, size, fps))
    return ";".join(chains)


def oversized(size: tuple[int, int]) -> tuple[int, int]:
    """The size a scene's still is made at (even numbers)."""
    width, height = size
    return _even(width * OVERSCAN), _even(height * OVERSCAN)


def _still(scene: Scene, theme: Theme, size: tuple[int, int], fps: int, picture: int | None) -> str:
    """One frame at `oversized` size: the picture, or a backdrop."""
    width, height = oversized(size)
    if picture is None:
        key = "end" if scene.kind is SceneKind.END else scene.index
        still = backdrop_source(theme, key, (width, height), fps)
    else:
        still = (
            f"[{picture}:v]trim=end_frame=1,"
            f"scale={width}:{height}:force_original_aspect_ratio=increase:flags=bicubic,"
            f"crop={width}:{height},setsar=1,format=yuv420p"
        )
    if scene.kind is not SceneKind.NARRATION:
        shade = CARD_SHADE if picture is not None else BACKDROP_SHADE
        still += f",drawbox=x=0:y=0:w=iw:h=ih:c={shade}:t=fill"
    return still


def _motion(scene: Scene, theme: Theme, size: tuple[int, int], fps: int) -> str:
    """The still repeated for the scene's length, zoomed and panned slowly across it."""
    width, height = size
    draw = theme.draw("motion", scene.index)
    near, far = 1.0, OVERSCAN
    if draw.unit() < 0.5:
        near, far = far, near  # zooming out instead of in
    x0, x1, y0, y1 = (draw.unit() for _ in range(4))
    last = max(1, scene.length - 1)
    eased = f"(0.5-0.5*cos(PI*n/{last}))"
    zoom = f"({near:.3f}+{far - near:.3f}*{eased})"
    return (
        f"loop=loop={scene.length - 1}:size=1,setpts=N/({fps}*TB),fps={fps},"
        f"scale=w='2*trunc({width}*{zoom}/2)':h='2*trunc({height}*{zoom}/2)'"
        f":eval=frame:flags=bilinear,"
        f"crop={width}:{height}:x='(iw-ow)*({x0:.3f}+{x1 - x0:.3f}*{eased})'"
        f":y='(ih-oh)*({y0:.3f}+{y1 - y0:.3f}*{eased})',setsar=1,format=yuv420p"
    )


def _joined(scenes: Sequence[Scene], fps: int) -> list[str]:
    """``[joined]``: the scenes in order, each fading into the next where it can.

    A chain of ``xfade`` filters would pass every frame through every fade before it (each
    fade's first input is all the video so far): it cost more than all the rest of the graph
    (`bench/RESULTS.md`). Instead each scene is cut (``trim``) into the frames it fades in over,
    its body and the frames it fades out over; each fade blends one scene's tail with the
    next one's head alone, and one ``concat`` joins bodies and fades."""
    chains, parts = [], []
    for scene in scenes:
        number = scene.index
        fade_in = scenes[number - 1].fade if number else 0
        pieces = [("h", 0, fade_in), ("b", fade_in, scene.frames)]
        pieces.append(("t", scene.frames, scene.frames + scene.fade))
        pieces = [piece for piece in pieces if piece[2] > piece[1]]
        outputs = "".join(f"[{kind}{number}.in]" for kind, _, _ in pieces)
        chains.append(f"[s{number}]split={len(pieces)}{outputs}")
        chains += [
            f"[{kind}{number}.in]trim=start_frame={start}:end_frame={end},"
            f"setpts=PTS-STARTPTS[{kind}{number}]"
            for kind, start, end in pieces
        ]
        if fade_in:
            chains.append(
                f"[t{number - 1}][h{number}]xfade=transition=fade"
                f":duration={fade_in / fps:.6f}:offset=0[x{number}]"
            )
            parts.append(f"[x{number}]")
        parts.append(f"[b{number}]")
    chains.append(f"{''.join(parts)}concat=n={len(parts)}:v=1:a=0[joined]")
    return chains


def _progress_bar(label: str, total: int, theme: Theme, size: tuple[int, int], fps: int) -> str:
    width, height = size
    bar = max(2, _even(height / 120))
    seconds = total / fps
    return (
        f"color=c={theme.accent}:s={width}x{bar}:r={fps}:d={seconds:.6f}[bar];"
        f"[{label}]drawbox=x=0:y={height - bar}:w={width}:h={bar}:c=black@0.4:t=fill[track];"
        f"[track][bar]overlay=x='-w+w*min(1,(t+{1 / fps:.6f})/{seconds:.6f})'"
        f":y={height - bar}:eval=frame,format=yuv420p[v]"
    )


def _even(value: float) -> int:
    return max(2, int(value) // 2 * 2)

"""Rendering narration, pictures and captions into an MP4 of scenes, with ``imageio-ffmpeg``'s
ffmpeg.

One ffmpeg run makes the video (after short audio-only passes that measure its loudness); a
second, short one takes the poster frame from it:

- **scenes** — a title card (the first segment, which SCRIPT makes the video's title), one
  scene per later segment, an end card (`app.pipeline.storyboard`): each a picture (a file
  given per segment, else a backdrop generated from the theme) under a slow zoom and pan, with
  its text, cross-fading into the next, under a progress bar (`app.pipeline.scene_graph`,
  `app.pipeline.scene_text`). A scene holds until the next begins: no frame is blank;
- **colours** — a theme derived from ``seed`` (the video's id), so two videos do not look
  alike (`app.pipeline.theme`); H.264 (libx264, yuv420p, a keyframe every 2 s for seeking);
- **captions on screen** — each segment's cues as the CAPTIONS stage times them
  (`app.pipeline.captions`), with the word being spoken highlighted when the segment's word
  timings are given;
- **audio** — the narration on its timeline, optionally over a generated music bed ducked under
  the voice (`app.pipeline.soundtrack`), normalised to -16 LUFS with true peaks under -1 dBTP
  (`app.pipeline.loudness`); 48 kHz mono AAC;
- **captions track** — the WebVTT file as a *soft* subtitle track (``mov_text``, MP4's text
  format). VLC or QuickTime list it; browsers ignore MP4 text tracks, so a web player adds the
  same VTT file as a ``<track>``;
- ``+faststart`` puts the index first: a browser starts playing before the whole file is there.

The font is ``font_file``, else whatever fontconfig finds for "Sans"; with no font at all the
video is rendered without on-screen text (a warning is logged and `RenderResult.text_on_screen`
is false).

Everything is written into a hidden folder beside ``output_mp4`` and renamed into place only once
both files are complete; a failure or a cancellation kills ffmpeg and removes that folder, so
nothing half written is left. Progress is ffmpeg's own (``-progress pipe:1``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from app.ffmpeg import FfmpegMissing, bundled_ffmpeg
from app.pipeline import loudness, scene_text, soundtrack
from app.pipeline.captions import Cue, segment_cues, word_cues
from app.pipeline.render_process import (
    PROGRESS_INTERVAL,
    STDERR_LINES,
    Progress,
    ProgressCallback,
    RenderError,
    run_ffmpeg,
)
from app.pipeline.scene_graph import video_graph
from app.pipeline.storyboard import END_CARD_MS, Scene, SceneKind, plan_scenes
from app.pipeline.theme import Theme, theme_for

logger = logging.getLogger("studio.render")

__all__ = [
    "PROGRESS_INTERVAL",
    "STDERR_LINES",
    "ProgressCallback",
    "RenderError",
    "RenderResult",
    "RenderSegment",
    "render_video",
]

_ENCODE_SHARE = 0.97  # of the progress bar; the poster and the renames are the rest
GRAPH_FILE = "graph.txt"
MUSIC_FILE = "music.wav"


@dataclass(frozen=True)
class RenderSegment:
    text: str
    start_ms: int
    end_ms: int
    #: ``(text, start_ms, end_ms)`` of each word as spoken, from the start of the video (the
    #: VOICE stage's ``words``); without them the captions are timed by characters.
    words: tuple[tuple[str, int, int], ...] = field(default=())


@dataclass(frozen=True)
class RenderResult:
    duration_ms: int
    size_bytes: int
    text_on_screen: bool = True
    scenes: int = 0


async def render_video(
    *,
    segments: Sequence[RenderSegment],
    narration_wavs: Sequence[Path],
    captions_vtt: Path | None,
    output_mp4: Path,
    poster_png: Path,
    width: int = 1280,
    height: int = 720,
    fps: int = 25,
    on_progress: ProgressCallback | None = None,
    font_file: Path | None = None,
    ffmpeg: str | None = None,
    preset: str = "veryfast",
    crf: int = 23,
    pictures: Sequence[Path | None] = (),
    seed: str | None = None,
    end_label: str | None = None,
    music: bool = False,
) -> RenderResult:
    """Render ``segments`` (one narration WAV each, in order; the first is the title) into
    ``output_mp4``, and a frame at about 1 s (the title card) into ``poster_png``. Segments must
    not overlap; gaps between them are silent. ``pictures`` holds a picture file (or ``None``)
    per segment; ``seed`` picks the theme (by default, the segments' text); ``end_label`` is
    shown on the end card (where the video comes from); ``music`` lays a music bed under the
    voice."""
    bounds = _timeline(segments, narration_wavs, width, height, fps)
    wavs, vtt, font_path = await asyncio.to_thread(_inputs, narration_wavs, captions_vtt, font_file)
    shown = await asyncio.to_thread(_pictures, pictures)
    exe = ffmpeg or await _bundled_ffmpeg()
    font = f"fontfile={_escape(font_path)}" if font_path else "font=Sans"
    theme = theme_for(seed if seed is not None else "\n".join(s.text for s in segments))
    cues = [_cues(segment) for segment in segments]
    texts = [segment.text for segment in segments]
    scenes = plan_scenes(texts, bounds, cues, shown, fps=fps)
    total_ms = bounds[-1] + END_CARD_MS
    progress = Progress(on_progress)
    await asyncio.to_thread(output_mp4.parent.mkdir, parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".render-", dir=output_mp4.parent))
    try:
        text_on_screen = await _font_works(exe, font, work)
        if not text_on_screen:
            logger.warning("no font for the on-screen text (%s): rendering without it", font)
        inputs = [arg for wav in wavs for arg in ("-i", wav)]
        # Appends the music bed's file to ``inputs`` when there is one.
        audio = await _audio(exe, inputs, segments, bounds, total_ms, theme, music, work)
        picture_inputs: dict[int, int] = {}
        for scene in scenes:
            if scene.picture is not None:
                picture_inputs[scene.index] = len(inputs) // 2
                inputs += ["-i", str(scene.picture)]
        files = scene_text.TextFiles(work)
        picture = video_graph(
            scenes,
            theme=theme,
            size=(width, height),
            fps=fps,
            picture_input=lambda scene: picture_inputs.get(scene.index),
            text=lambda scene: (
                _scene_text(scene, files, font, (width, height), theme, end_label, fps)
                if text_on_screen
                else []
            ),
        )
        maps = ["-map", "[v]", "-map", "[a]"]
        if vtt is not None:
            maps += ["-map", f"{len(inputs) // 2}:s", "-c:s", "mov_text"]
            inputs += ["-i", vtt]
        # In a file: a long video's graph (a few hundred bytes a spoken word) would pass the
        # system's limit on one argument (128 KiB on Linux).
        await asyncio.to_thread((work / GRAPH_FILE).write_text, f"{picture};{audio}", "utf-8")
        await run_ffmpeg(
            exe,
            [*inputs, "-/filter_complex", GRAPH_FILE, *maps,
             "-c:v", "libx264", "-preset", preset, "-crf", str(crf),
             "-pix_fmt", "yuv420p", "-r", str(fps), "-g", str(2 * fps),
             "-c:a", "aac", "-b:a", "96k", "-ar", "48000", "-ac", "1",
             "-t", _seconds(total_ms), "-movflags", "+faststart", "video.mp4"],
            cwd=work,
            on_time=lambda us: progress.offer(_ENCODE_SHARE * us / 1000 / total_ms),
        )  # fmt: skip
        poster_at = _seconds(min(1000, total_ms // 2))
        poster = ["-ss", poster_at, "-i", "video.mp4", "-frames:v", "1", "-update", "1"]
        await run_ffmpeg(exe, [*poster, "poster.png"], cwd=work)
        size = await _finish(work, output_mp4, poster_png)
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)
    await progress.done()
    return RenderResult(
        duration_ms=total_ms, size_bytes=size, text_on_screen=text_on_screen, scenes=len(scenes)
    )


def _timeline(
    segments: Sequence[RenderSegment], wavs: Sequence[Path], width: int, height: int, fps: int
) -> list[int]:
    """The timeline's boundaries: 0, each later segment's start, the last segment's end."""
    if not segments or len(segments) != len(wavs):
        raise ValueError("need one narration WAV per segment, and at least one segment")
    if width < 16 or height < 16 or width % 2 or height % 2 or not 1 <= fps <= 60:
        raise ValueError("width and height must be even and at least 16, fps from 1 to 60")
    previous_end = 0
    for index, segment in enumerate(segments):
        if not previous_end <= segment.start_ms < segment.end_ms:
            raise ValueError(f"segment {index} overlaps the one before or is empty: {segment}")
        previous_end = segment.end_ms
    return [0, *(segment.start_ms for segment in segments[1:]), segments[-1].end_ms]


def _inputs(
    wavs: Sequence[Path], vtt: Path | None, font: Path | None
) -> tuple[list[str], str | None, str | None]:
    """The input files' absolute paths; `RenderError` for one that is missing."""
    for index, wav in enumerate(wavs):
        if not wav.is_file():
            raise RenderError(f"The narration audio of part {index + 1} is missing.", str(wav))
    if vtt is not None and not vtt.is_file():
        raise RenderError("The captions file is missing.", str(vtt))
    if font is not None and not font.is_file():
        raise RenderError("The font for the on-screen text is missing.", str(font))
    absolute = [str(wav.resolve()) for wav in wavs]
    return absolute, str(vtt.resolve()) if vtt else None, str(font.resolve()) if font else None


def _pictures(pictures: Sequence[Path | None]) -> list[Path | None]:
    """The pictures' absolute paths; a missing one is left out (its scene gets a backdrop)."""
    found: list[Path | None] = []
    for picture in pictures:
        if picture is not None and not picture.is_file():
            logger.warning("picture %s is missing: its scene gets a generated background", picture)
            picture = None
        found.append(picture.resolve() if picture is not None else None)
    return found


def _cues(segment: RenderSegment) -> list[Cue]:
    if segment.words:
        return word_cues(segment.words, segment.start_ms, segment.end_ms)
    return segment_cues(segment.text, segment.start_ms, segment.end_ms)


def _scene_text(
    scene: Scene,
    files: scene_text.TextFiles,
    font: str,
    size: tuple[int, int],
    theme: Theme,
    end_label: str | None,
    fps: int,
) -> list[str]:
    if scene.kind is SceneKind.TITLE:
        return scene_text.title_card(scene.text, files, font, size, theme)
    if scene.kind is SceneKind.END:
        return scene_text.end_card(scene.text, end_label, files, font, size, theme)
    offset_ms = scene.start * 1000 / fps
    return scene_text.captions(scene.cues, offset_ms, files, font, size, theme)


async def _audio(
    exe: str,
    inputs: list[str],
    segments: Sequence[RenderSegment],
    bounds: list[int],
    total_ms: int,
    theme: Theme,
    music: bool,
    work: Path,
) -> str:
    """The audio graph, measured and normalised, leaving ``[a]`` (see `app.pipeline.soundtrack`).
    The music bed is made once, into a file that is added to ``inputs``: its expression is
    the costliest part of the audio, and three passes read it."""
    narration = soundtrack.narration_graph([s.start_ms for s in segments], bounds, total_ms)
    try:
        spoken = await loudness.measure(exe, inputs, narration, "n", work)
        if not music:
            return f"{narration};[n]{loudness.normalise(spoken)}[a]"
        bed_graph = soundtrack.music_graph(theme, total_ms)
        await run_ffmpeg(exe, ["-filter_complex", bed_graph, "-map", "[m]", MUSIC_FILE], cwd=work)
        inputs += ["-i", MUSIC_FILE]
        bed = f"[{len(inputs) // 2 - 1}:a]{soundtrack.MUSIC_FORMAT}[m]"
        played = await loudness.measure(exe, inputs, bed, "m", work)
        gain = soundtrack.MUSIC_LUFS - loudness.TARGET_LUFS
        mixed = ";".join(
            [
                f"{narration};[n]{loudness.normalise(spoken)}[nv]",
                f"{bed};[m]{loudness.normalise(played)},volume={gain:.1f}dB[mb]",
                soundtrack.ducked_mix("nv", "mb"),
            ]
        )
        final = await loudness.measure(exe, inputs, mixed, "mix", work)
    except loudness.LoudnessError as error:
        # Its inputs are the render's: what fails here would fail the render.
        raise RenderError("The video could not be rendered.", error.detail) from error
    return f"{mixed};[mix]{loudness.normalise(final)}[a]"


async def _finish(work: Path, output_mp4: Path, poster_png: Path) -> int:
    """Flush both files, then rename them into place; the video's size in bytes."""

    def finish() -> int:
        for name in ("video.mp4", "poster.png"):
            with open(work / name, "rb") as file:
                os.fsync(file.fileno())
        poster_png.parent.mkdir(parents=True, exist_ok=True)
        os.replace(work / "poster.png", poster_png)
        os.replace(work / "video.mp4", output_mp4)
        return output_mp4.stat().st_size

    # A thread cannot be interrupted: wait for it even when cancelled, so that no rename lands
    # after the caller has moved on.
    task = asyncio.ensure_future(asyncio.to_thread(finish))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise


_fonts_found: set[tuple[str, str]] = set()


async def _font_works(exe: str, font: str, work: Path) -> bool:
    """Whether drawtext finds ``font``: one tiny frame drawn and thrown away. A success is
    remembered for the process; a failure is tried again next time (fonts may be installed)."""
    if (exe, font) not in _fonts_found:
        probe = ["-f", "lavfi", "-i", "color=s=32x32:d=0.04", "-vf", f"drawtext={font}:text=A"]
        try:
            await run_ffmpeg(exe, [*probe, "-f", "null", "-"], cwd=work)
        except RenderError:
            return False
        _fonts_found.add((exe, font))
    return True


async def _bundled_ffmpeg() -> str:
    try:
        return await bundled_ffmpeg()
    except FfmpegMissing as error:
        raise RenderError("The video renderer (ffmpeg) is not installed.", str(error)) from error


def _seconds(milliseconds: int) -> str:
    return f"{milliseconds / 1000:.3f}"


def _escape(value: str) -> str:
    """``value`` as a filter option value inside a filter graph (both levels of escaping)."""
    for char in "\\':":
        value = value.replace(char, "\\" + char)
    for char in "\\'[],;":
        value = value.replace(char, "\\" + char)
    return value

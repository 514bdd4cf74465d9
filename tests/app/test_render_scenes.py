"""What a rendered video looks like (app/pipeline/render.py and the scene modules): its frames are
decoded with the same ffmpeg and measured.

One video is rendered for the module: a title and three narration segments with word timings,
300 ms pauses between them, on generated backgrounds. Its frames show the title card from the
first frame, each segment's scene with its caption while it is spoken (the spoken word in the
theme's accent colour, moving along the line), a picture that moves, a progress bar that
grows, the end card last, and never a blank frame. A second render with another seed shows that
two videos do not look alike; a third with the music bed, that the bed is ducked under the voice
and the mix is still at -16 LUFS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from app.pipeline.render import RenderSegment, render_video
from app.pipeline.storyboard import END_CARD_MS
from app.pipeline.theme import theme_for
from tests.app.test_render import _loudness, write_tone
from tests.support.video import RATE, decoded_audio, rgb_frames

WIDTH, HEIGHT, FPS = 640, 360, 10
SEED = "scenes"
#: (text, start ms, end ms) of each segment; the first is the title.
SEGMENTS = [
    ("Coral reefs", 0, 1200),
    ("Reefs cover a tiny part of the ocean floor.", 1500, 3900),
    ("Yet a quarter of all sea life lives there.", 4200, 6600),
    ("Warmer water bleaches them white.", 6900, 8700),
]
END_S = SEGMENTS[-1][2] / 1000 + END_CARD_MS / 1000
TOP = (0.0, 0.0, 1.0, 0.55)  # above the captions
MIDDLE = (0.05, 0.25, 0.95, 0.75)
CAPTIONS = (0.0, 0.6, 1.0, 0.92)
BAR_ROWS = 2  # the progress bar's height at 360 lines

Region = tuple[float, float, float, float]


def spoken_words(text: str, start: int, end: int) -> tuple[tuple[str, int, int], ...]:
    """Each word of ``text`` spoken in turn, sharing the segment's time equally."""
    words = text.split()
    step = (end - start) // len(words)
    return tuple((w, start + i * step, start + (i + 1) * step) for i, w in enumerate(words))


@dataclass
class Video:
    path: Path
    frames: np.ndarray  # every frame, (count, height, width, 3)

    def at(self, seconds: float) -> np.ndarray:
        frame: np.ndarray = self.frames[min(len(self.frames) - 1, round(seconds * FPS))]
        return frame.astype(int)


async def render(folder: Path, *, seed: str = SEED, music: bool = False) -> Video:
    wavs = [
        write_tone(folder / f"{i}.wav", (end - start) / 1000, 3000)
        for i, (_, start, end) in enumerate(SEGMENTS)
    ]
    await render_video(
        segments=[
            RenderSegment(text, start, end, spoken_words(text, start, end))
            for text, start, end in SEGMENTS
        ],
        narration_wavs=wavs,
        captions_vtt=None,
        output_mp4=folder / "video.mp4",
        poster_png=folder / "poster.png",
        width=WIDTH,
        height=HEIGHT,
        fps=FPS,
        seed=seed,
        music=music,
    )
    raw = rgb_frames(folder / "video.mp4", (WIDTH, HEIGHT))
    frames = np.stack([np.frombuffer(f, np.uint8).reshape(HEIGHT, WIDTH, 3) for f in raw])
    return Video(folder / "video.mp4", frames)


@pytest.fixture(scope="module")
async def video(tmp_path_factory: pytest.TempPathFactory) -> Video:
    return await render(tmp_path_factory.mktemp("scenes"))


def part(frame: np.ndarray, region: Region) -> np.ndarray:
    left, top, right, bottom = region
    height, width = frame.shape[:2]
    rows = slice(round(top * height), round(bottom * height))
    return frame[rows, round(left * width) : round(right * width)]


def edges(frame: np.ndarray, region: Region) -> int:
    """Pixels of ``region`` on a sharp step in brightness (more than 60 to the next pixel
    across or down): text's outlines. Backgrounds and their slow motion have none."""
    gray = part(frame, region).sum(axis=2) / 3
    across = np.abs(np.diff(gray, axis=1))[:-1, :] > 60
    down = np.abs(np.diff(gray, axis=0))[:, :-1] > 60
    return int((across | down).sum())


def accent_columns(frame: np.ndarray, region: Region, accent: str) -> np.ndarray:
    """The x of each pixel of ``region`` close to the ``accent`` colour (a word being said)."""
    colour = np.array([int(accent[i : i + 2], 16) for i in (2, 4, 6)])
    near = np.abs(part(frame, region) - colour).max(axis=2) <= 48
    return np.nonzero(near)[1]


def segment_times(index: int) -> tuple[float, float]:
    _, start, end = SEGMENTS[index]
    return start / 1000, end / 1000


# --- the frames ------------------------------------------------------------------------------


def test_no_frame_from_the_first_to_the_last_is_blank(video: Video) -> None:
    assert len(video.frames) == pytest.approx(END_S * FPS, abs=2)
    spread = video.frames.reshape(len(video.frames), -1, 3).astype(float).std(axis=1).max(axis=1)
    assert spread.min() > 4.0, np.argmin(spread)  # never one flat colour, pauses and fades too


def test_the_title_card_shows_the_title_from_the_first_frame(video: Video) -> None:
    _, title_end = segment_times(0)
    for seconds in (0.0, 0.5, title_end + 0.1):  # through the pause after the title
        frame = video.at(seconds)
        assert edges(frame, MIDDLE) > 200
        assert edges(frame, CAPTIONS) == 0  # the title is not also a caption


def test_the_end_card_ends_the_video(video: Video) -> None:
    last = video.frames[-1].astype(int)
    assert edges(last, MIDDLE) > 100
    assert edges(last, CAPTIONS) == 0
    # It is a scene of its own: not the last segment's picture.
    before = video.at(segment_times(3)[1] - 0.2)
    assert np.abs(part(last, TOP) - part(before, TOP)).mean() > 5


@pytest.mark.parametrize("index", [1, 2, 3])
def test_a_scene_shows_its_caption_while_it_is_spoken_and_not_in_the_pause(
    video: Video, index: int
) -> None:
    start, end = segment_times(index)
    speaking, pause = video.at((start + end) / 2), video.at(end + 0.15)
    assert edges(speaking, CAPTIONS) > 300
    assert edges(pause, CAPTIONS) < 0.05 * edges(speaking, CAPTIONS)
    assert part(speaking, TOP).std() > 5  # the scene's picture is not one flat colour


@pytest.mark.parametrize("index", [1, 2, 3])
def test_the_word_being_spoken_is_highlighted_and_the_highlight_moves_along(
    video: Video, index: int
) -> None:
    accent = theme_for(SEED).accent
    text, start, end = SEGMENTS[index]
    words = spoken_words(text, start, end)
    # The first line's second and fifth words (the first is still fading in with its scene).
    first, later = words[1], words[4]
    at_first = accent_columns(video.at((first[1] + first[2]) / 2000), CAPTIONS, accent)
    at_later = accent_columns(video.at((later[1] + later[2]) / 2000), CAPTIONS, accent)
    assert len(at_first) > 20
    assert len(at_later) > 20
    assert at_later.mean() > at_first.mean() + 40  # further along the line
    # Only one word is lit: the highlight is about as wide as a word, not the line so far.
    assert np.ptp(at_later) < 0.3 * WIDTH


@pytest.mark.parametrize("index", [1, 2, 3])
def test_the_picture_moves_within_a_scene(video: Video, index: int) -> None:
    start, end = segment_times(index)
    early, late = video.at(start + 0.5), video.at(end - 0.1)
    assert np.abs(part(early, TOP) - part(late, TOP)).mean() > 1.0


@pytest.mark.parametrize("index", [2, 3])
def test_a_scene_cross_fades_into_the_next(video: Video, index: int) -> None:
    start, _ = segment_times(index)
    before, during, after = (
        part(video.at(seconds), TOP).mean(axis=(0, 1))
        for seconds in (start - 0.1, start + 0.2, start + 0.5)
    )
    assert np.abs(after - before).max() > 10  # two scenes that look different
    # Half-way through the fade, a blend of the two: near their mean, far from each.
    assert np.abs(during - (before + after) / 2).max() < 0.25 * np.abs(after - before).max()


def test_the_progress_bar_grows_to_the_end(video: Video) -> None:
    accent = theme_for(SEED).accent
    bar = (0.0, 1 - BAR_ROWS / HEIGHT, 1.0, 1.0)
    lit = [
        len(accent_columns(video.at(seconds), bar, accent)) / BAR_ROWS / WIDTH
        for seconds in (0.5, 3.0, 6.0, END_S - 0.1)
    ]
    assert lit == sorted(lit)
    assert lit[0] < 0.15
    assert lit[-1] > 0.9


async def test_two_videos_do_not_look_alike(video: Video, tmp_path: Path) -> None:
    other = await render(tmp_path, seed="another video")
    for seconds in (0.5, sum(segment_times(2)) / 2, END_S - 0.1):
        mine, theirs = part(video.at(seconds), TOP), part(other.at(seconds), TOP)
        assert np.abs(mine.mean(axis=(0, 1)) - theirs.mean(axis=(0, 1))).max() > 12, seconds


# --- the music bed ---------------------------------------------------------------------------


def band_level(samples: Sequence[int], start: float, end: float, low: float, high: float) -> float:
    """The RMS of the audio from ``start`` to ``end`` s, between ``low`` and ``high`` Hz."""
    window = np.asarray(samples[round(start * RATE) : round(end * RATE)], float)
    spectrum = np.fft.rfft(window * np.hanning(len(window)))
    frequencies = np.fft.rfftfreq(len(window), 1 / RATE)
    band = (frequencies >= low) & (frequencies < high)
    return float(np.sqrt((np.abs(spectrum[band]) ** 2).sum()) / len(window))


async def test_the_music_bed_is_ducked_under_the_voice_and_the_mix_is_at_minus_16_lufs(
    tmp_path: Path,
) -> None:
    """The voice here is a 3 kHz tone; the bed is all under 1 kHz, so each is measured in its
    own band: the bed is there in the pauses and on the end card, and at least 6 dB quieter
    while the voice speaks."""
    with_music = await render(tmp_path, music=True)
    samples = decoded_audio(with_music.path)
    start, end = segment_times(2)
    under_voice = band_level(samples, start + 0.8, end - 0.2, 60, 1000)
    on_its_own = band_level(samples, END_S - 2.2, END_S - 1.2, 60, 1000)  # the end card
    assert under_voice > 0
    assert on_its_own > 2 * under_voice
    assert band_level(samples, start + 0.8, end - 0.2, 2900, 3100) > 10 * under_voice
    integrated, true_peak = _loudness(with_music.path)
    assert abs(integrated - (-16.0)) <= 1.0
    assert true_peak <= -1.0

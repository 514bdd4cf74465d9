"""How long a script takes to say: the narration's pace in words per minute, and estimates.

The voice's rate is the profile's ``engine_settings.rate`` (eSpeak's nominal words per minute,
175 by default) times the video's ``audioSettings.speed``, clamped to 80-450, exactly as VOICE
sets it (`app.pipeline.speech.voice_for`). Both engines speak faster than that nominal figure:
measured on the tests' long article (806 words, sentence by sentence, ``bench/bench_script.py``)
eSpeak NG's ``en`` says 106 words a minute at rate 80, 218 at 175 and 537 at 450, which
``1.165 * rate + 13`` fits within 2 %; the neural voice (``en_US-joe-medium``) says 158, 211 and
283 at rates 120, 175 and 260, within 3 % of the same line at 120 and 175 and 12 % at 260. So
the default voice is estimated at **217 words per minute** (figures in ``bench/RESULTS.md``).
A script's estimate adds `PAUSE_MS` between its segments, as VOICE puts them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from app.pipeline import speech

#: The silence VOICE puts between two segments.
PAUSE_MS = 300
#: Measured speaking pace against the voice's nominal rate (see the module docstring).
PACE_SLOPE = 1.165
PACE_OFFSET = 13.0


def words_per_minute(
    engine_settings: Mapping[str, Any] | None, audio_settings: Mapping[str, Any] | None
) -> float:
    """The pace the narration will have, for a profile's settings and a video's."""
    rate = speech.voice_for(engine_settings=engine_settings, audio_settings=audio_settings).rate
    return round(PACE_SLOPE * rate + PACE_OFFSET, 1)


def word_count(text: str) -> int:
    return len(text.split())


def speaking_ms(words: int, wpm: float) -> int:
    """How long ``words`` words take at ``wpm``, without pauses."""
    return round(words * 60_000 / wpm)


def estimate_ms(segments: Iterable[str], wpm: float) -> int:
    """How long the narration of ``segments`` lasts: their words, and a pause between two."""
    texts = list(segments)
    words = sum(word_count(text) for text in texts)
    return speaking_ms(words, wpm) + PAUSE_MS * max(0, len(texts) - 1)

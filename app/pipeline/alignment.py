"""Where each word of a synthesized text is in its audio: what captions are timed by.

Both engines say where the words are, each in its own way, and turn it into `Word` spans in
samples of the audio they made: eSpeak NG reports where each word starts through its synthesis
events (`app.pipeline.speech`), and the Piper runner knows how many frames the model gave each
phoneme (`app.pipeline.piper`). This module holds what they share: the words of a text as the
captions print them, and where a stretch of audio goes quiet.
"""

from __future__ import annotations

import array
import re
from dataclasses import dataclass

SAMPLE_WIDTH = 2  # 16-bit signed mono PCM, as everywhere in the pipeline

#: A sample quieter than this (of 32767) is silence, for finding where speech stops: about
#: -50 dBFS, below the breath and reverb tails both engines leave.
QUIET = 100
_WINDOW_MS = 5

_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Word:
    """A word as written (``text``, punctuation kept) and the samples it is spoken in."""

    text: str
    start: int
    end: int

    def shifted(self, samples: int) -> Word:
        return Word(self.text, self.start + samples, self.end + samples)


def text_words(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, word)`` for each run of non-space characters, by character offset."""
    return [(m.start(), m.end(), m.group()) for m in _WORD.finditer(text)]


def speech_end(pcm: bytes, rate: int, *, start: int, stop: int) -> int:
    """The sample after the last sound in ``[start, stop)``: where a pause before ``stop``
    begins (``start`` when the stretch is silent throughout)."""
    samples = _samples(pcm)
    window = max(1, rate * _WINDOW_MS // 1000)
    position = min(stop, len(samples))
    while position > start:
        begin = max(start, position - window)
        if max(abs(s) for s in samples[begin:position]) >= QUIET:
            # The loud window: the sound ends at its last loud sample.
            for index in range(position - 1, begin - 1, -1):
                if abs(samples[index]) >= QUIET:
                    return index + 1
        position = begin
    return start


def silences(pcm: bytes, rate: int, *, min_ms: int) -> list[tuple[int, int]]:
    """The stretches of at least ``min_ms`` in which every sample is quieter than `QUIET`,
    as ``(first sample, sample after the last)``, in order."""
    samples = _samples(pcm)
    shortest = rate * min_ms // 1000
    found: list[tuple[int, int]] = []
    run_start: int | None = None
    for index, sample in enumerate(samples):
        if abs(sample) < QUIET:
            if run_start is None:
                run_start = index
        elif run_start is not None:
            if index - run_start >= shortest:
                found.append((run_start, index))
            run_start = None
    if run_start is not None and len(samples) - run_start >= shortest:
        found.append((run_start, len(samples)))
    return found


def _samples(pcm: bytes) -> array.array[int]:
    samples = array.array("h")
    samples.frombytes(pcm[: len(pcm) - len(pcm) % SAMPLE_WIDTH])
    return samples

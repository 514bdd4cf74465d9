"""The SCRIPT stage's figures: how fast each engine really speaks, and what summarising costs.

1. **Pace.** The tests' long article (`tests.support.articles`, 806 words), sentence by sentence
   as VOICE says segments, spoken by eSpeak NG (``en``) at rates 80 to 450 and by the neural
   voice at 120, 175 and 260: words per minute measured from the audio, against the nominal
   rate and against `app.pipeline.pace`'s estimate (``1.165 * rate + 13``).
2. **Summarising.** `app.pipeline.script.from_page` on that article for 60 s, and on a page of
   `MAX_SENTENCES` sentences (the most the summariser reads; the long article repeated, its
   sentences numbered so none repeats exactly), median of a few rounds.

Run it under the shared benchmark lock::

    flock /tmp/bench.lock .venv/bin/python -m bench.bench_script
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from app.pipeline import pace, piper, script, speech
from app.pipeline.extract import PageText, Section
from app.pipeline.sentences import split_sentences
from app.pipeline.summary import MAX_SENTENCES
from tests.support.articles import LONG_SECTIONS, LONG_TITLE

ROUNDS = 5


def main() -> None:
    sentences = [s for _, ps in LONG_SECTIONS for p in ps for s in split_sentences(p)]
    words = sum(len(s.split()) for s in sentences)
    print(f"pace: {len(sentences)} sentences, {words} words")
    print(
        f"{'engine':<26} {'rate':>5} {'measured wpm':>13} {'/ rate':>7} {'estimate':>9} {'err':>6}"
    )
    joe = piper.installed().get("en_US-joe-medium")
    engines: list[tuple[str, Callable[[str, int], speech.Speech], tuple[int, ...]]] = [
        ("espeak-ng (en)", lambda t, r: speech.synthesize_blocking(t, voice="en", rate=r),
         (80, 120, 175, 260, 350, 450)),
    ]  # fmt: skip
    if joe is not None:
        engines.append(
            ("piper (en_US-joe-medium)", lambda t, r: piper.synthesize_blocking(t, joe, rate=r),
             (120, 175, 260))
        )  # fmt: skip
    for name, say, rates in engines:
        for rate in rates:
            spoken_ms = sum(say(sentence, rate).duration_ms for sentence in sentences)
            wpm = words / (spoken_ms / 60_000)
            estimate = pace.PACE_SLOPE * rate + pace.PACE_OFFSET
            print(
                f"{name:<26} {rate:>5} {wpm:>13.1f} {wpm / rate:>7.3f} {estimate:>9.1f} "
                f"{(estimate - wpm) / wpm:>+6.1%}"
            )
    wpm = pace.words_per_minute({}, {})
    pages = {
        "long article": _page([(h, list(ps)) for h, ps in LONG_SECTIONS]),
        f"{MAX_SENTENCES} sentences": _page(_numbered(MAX_SENTENCES)),
    }
    print("\nsummarising for 60 s at the default pace")
    print(f"{'page':<16} {'sentences':>9} {'median ms':>10} {'max ms':>8} {'estimate s':>11}")
    for name, page in pages.items():
        times = []
        for _ in range(ROUNDS):
            started = time.perf_counter()
            written = script.from_page(page, title=LONG_TITLE, target_seconds=60, wpm=wpm)
            times.append((time.perf_counter() - started) * 1000)
        count = len(script.sentences_of(page.sections))
        estimate = pace.estimate_ms(written.texts(), wpm) / 1000
        print(
            f"{name:<16} {count:>9} {statistics.median(times):>10.1f} {max(times):>8.1f} "
            f"{estimate:>11.1f}"
        )


def _page(sections: list[tuple[str | None, list[str]]]) -> PageText:
    return PageText(
        title=LONG_TITLE,
        text="",
        url="http://bench/",
        sections=tuple(Section(heading, tuple(paragraphs)) for heading, paragraphs in sections),
    )


def _numbered(count: int) -> list[tuple[str | None, list[str]]]:
    """The long article's sections repeated until they hold ``count`` sentences."""
    sections: list[tuple[str | None, list[str]]] = []
    total = 0
    copy = 0
    while total < count:
        copy += 1
        for heading, paragraphs in LONG_SECTIONS:
            numbered = [
                " ".join(f"{s[:-1]} ({copy}.{n})." for n, s in enumerate(split_sentences(p)))
                for p in paragraphs
            ]
            sections.append((f"{heading or 'Introduction'} {copy}", numbered))
            total += sum(len(split_sentences(p)) for p in paragraphs)
    return sections


if __name__ == "__main__":
    main()

"""Synthesis speed of the two narration engines, as times real time on one core.

Speaks the same English paragraphs (about 40 s of speech) with eSpeak NG and with the Piper
voice (`app.pipeline.piper`, one onnxruntime thread), a few rounds each after one warm-up
sentence (which also loads the model), and prints seconds of speech per second of work.
Run it pinned to one core, under the shared benchmark lock::

    flock /tmp/bench.lock taskset -c 0 .venv/bin/python -m bench.bench_voice
"""

from __future__ import annotations

import time
from collections.abc import Callable

from app.pipeline import piper, speech

TEXT = (
    "Coral reefs cover less than one percent of the ocean floor, yet they shelter about a "
    "quarter of all the species that live in the sea. When the water warms, the corals push "
    "out the algae that feed them, and they turn white. A bleached reef can recover if the "
    "water cools again within a few weeks. If it does not, the corals starve, and the reef "
    "slowly crumbles into rubble. Scientists now grow young corals in nurseries, then plant "
    "them back on damaged reefs by hand, one fragment at a time. It is slow work, but in some "
    "places the planted corals have spawned, which means the reef has started to rebuild "
    "itself."
)
ROUNDS = 3


def main() -> None:
    joe = piper.installed()["en_US-joe-medium"]
    engines: dict[str, Callable[[str], speech.Speech]] = {
        "espeak-ng (en-us)": lambda text: speech.synthesize_blocking(text, voice="en-us"),
        "piper (en_US-joe-medium)": lambda text: piper.synthesize_blocking(text, joe),
    }
    print(f"{'engine':<26} {'speech s':>9} {'work s':>8} {'x real time':>12}")
    for name, say in engines.items():
        say("Warming up.")
        audio = work = 0.0
        for _ in range(ROUNDS):
            started = time.perf_counter()
            said = say(TEXT)
            work += time.perf_counter() - started
            audio += said.samples / said.sample_rate
        print(f"{name:<26} {audio / ROUNDS:>9.1f} {work / ROUNDS:>8.2f} {audio / work:>12.1f}")


if __name__ == "__main__":
    main()

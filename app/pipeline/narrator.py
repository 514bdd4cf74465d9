"""Which engine speaks a voice, and speaking with it: eSpeak NG or a Piper neural voice.

eSpeak NG (`app.pipeline.speech`) is always there and speaks about a hundred languages; the
Piper voices (`app.pipeline.piper`) are there when the ``neural`` extra is installed, and speak
their own language only. A voice profile chooses by name: ``engine_settings.voice`` set to a
Piper voice (``en_US-joe-medium``) speaks with it. Without a named voice, the language picks an
eSpeak voice — or, when the operator set ``STUDIO_NEURAL_VOICE``, that neural voice for the
languages it speaks (``en`` and ``en-us`` for an ``en_US`` voice), eSpeak NG for the rest.
eSpeak NG is the default because the neural voice's training data has terms of its own (see
the README's licences). A profile naming a Piper voice that is no longer installed is spoken
by eSpeak NG in that voice's language, and logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from app.pipeline import piper, speech

logger = logging.getLogger(__name__)

ESPEAK, PIPER = "espeak", "piper"


@dataclass(frozen=True)
class Engine:
    """One engine as `voiceCatalog` lists it."""

    name: str
    voices: tuple[str, ...]
    variants: tuple[str, ...]
    languages: tuple[str, ...]
    pitch: bool  # whether `engine_settings.pitch` changes its voice
    licence: str


def voice_for(
    *,
    engine_settings: Mapping[str, Any] | None = None,
    profile_language: str | None = None,
    audio_settings: Mapping[str, Any] | None = None,
    neural_voice: str | None = None,
) -> speech.Voice:
    """The engine and parameters for a profile's settings and a video's audio settings;
    ``neural_voice`` is the operator's default neural voice (``STUDIO_NEURAL_VOICE``)."""
    voice = speech.voice_for(
        engine_settings=engine_settings,
        profile_language=profile_language,
        audio_settings=audio_settings,
    )
    named = str((engine_settings or {}).get("voice") or "").strip()
    voices = piper.installed()
    if named in piper.VOICE_PACKAGES:
        if named in voices:
            return replace(voice, engine=PIPER, name=named)
        fallback = _piper_language(named)
        logger.warning("neural voice %s is not installed; eSpeak NG speaks %s", named, fallback)
        return replace(voice, name=fallback)
    chosen = voices.get(neural_voice or "")
    variant = (engine_settings or {}).get("variant")  # eSpeak's alone: the profile wants eSpeak
    if not named and not variant and chosen is not None and _speaks(chosen, voice.name):
        return replace(voice, engine=PIPER, name=chosen.name)
    return voice


async def synthesize(text: str, voice: speech.Voice) -> speech.Speech:
    """``text`` spoken in ``voice`` by its engine, in a worker thread."""
    if voice.engine == PIPER:
        found = piper.installed().get(voice.name)
        if found is None:
            raise speech.VoiceNotFound(f"The neural voice {voice.name!r} is not installed.")
        try:
            return await asyncio.to_thread(
                piper.synthesize_blocking, text, found, rate=voice.rate, volume=voice.volume
            )
        except (RuntimeError, ValueError, OSError) as exc:  # onnxruntime's failures
            logger.exception("neural voice %s failed", voice.name)
            raise speech.SpeechError(f"The neural voice failed on this text ({exc}).") from exc
    return await speech.synthesize(
        text, voice=voice.name, rate=voice.rate, pitch=voice.pitch, volume=voice.volume
    )


def sample_rate(voice: speech.Voice) -> int:
    """The rate of what `synthesize` makes in ``voice`` (blocking: loads the engine)."""
    found = piper.installed().get(voice.name) if voice.engine == PIPER else None
    return speech.sample_rate() if found is None else piper.sample_rate(found)


def catalog() -> tuple[Engine, ...]:
    """The engines installed, eSpeak NG first (blocking: lists eSpeak's voices once)."""
    found = speech.catalog()
    espeak = Engine(
        name=ESPEAK,
        voices=tuple(sorted(found.voices)),
        variants=tuple(sorted(found.variants, key=str.lower)),
        languages=tuple(sorted(found.voices)),
        pitch=True,
        licence="GPL-3.0-or-later (eSpeak NG and its voice data)",
    )
    neural = piper.installed()
    if not neural:
        return (espeak,)
    return (
        espeak,
        Engine(
            name=PIPER,
            voices=tuple(sorted(neural)),
            variants=(),
            languages=tuple(sorted({voice.language for voice in neural.values()})),
            pitch=False,
            licence="model MIT; trained on the lessac and joe datasets, see the README",
        ),
    )


def voice_names() -> frozenset[str]:
    """Every name `engine_settings.voice` accepts, across the engines."""
    return frozenset(name for engine in catalog() for name in engine.voices)


def _speaks(voice: piper.PiperVoice, language: str) -> bool:
    """Whether ``voice`` speaks ``language`` (an eSpeak voice name: ``en``, ``en-us``)."""
    base = language.split("+")[0].lower()
    return base in (voice.language, voice.language.split("-")[0])


def _piper_language(name: str) -> str:
    """``en_US-joe-medium`` → ``en-us``."""
    return name.split("-")[0].replace("_", "-").lower()

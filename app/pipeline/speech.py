"""Speech synthesis with eSpeak NG, called directly through ctypes.

The `espeakng-loader` package ships ``libespeak-ng`` and its voice data, so synthesis needs no
system package. The library is used in *synchronous retrieval* mode: ``espeak_Synth`` returns
once the whole text is spoken, and the audio (16-bit signed mono PCM at the library's sample
rate, 22 050 Hz) arrives through a callback that collects it in memory. Nothing is played.

eSpeak NG keeps global state (the current voice and parameters, one callback) and is not
thread-safe, so every call goes through one process-wide lock. `synthesize` runs the blocking
call in a worker thread (``asyncio.to_thread``), so the event loop — and with it a job's lease
heartbeat — never waits on synthesis. eSpeak is fast (a sentence takes about a millisecond), so
the lock is never held for long.

How a voice profile and a video's audio settings become eSpeak parameters (`voice_for`):

==========================================  ==========================================  =========
Where                                       What                                        eSpeak
==========================================  ==========================================  =========
profile ``engine_settings.voice``           an eSpeak voice name (``en-us``, ``fr``,    voice
                                            ``en-gb+f3``); else the profile's
                                            ``language``; else the video's
                                            ``audioSettings.language``; else ``en``
profile ``engine_settings.variant``         a voice variant (``f3``, ``m2``, ``klatt``)  voice
                                            appended as ``+variant``
profile ``engine_settings.rate``            words per minute (default 175) ...          RATE
video ``audioSettings.speed``               ... multiplied by the speed (0.5-2);
                                            clamped to eSpeak's 80-450
profile ``engine_settings.pitch``           base pitch 0-100 (default 50) ...           PITCH
video ``audioSettings.pitch``               ... multiplied by the pitch (0.5-2);
                                            clamped to 0-100
profile ``engine_settings.volume``          amplitude 0-200 (default 100) ...           VOLUME
video ``audioSettings.volume``              ... multiplied by the volume (0-2);
                                            clamped to 0-200
==========================================  ==========================================  =========

A language tag is used as a voice name (eSpeak names its voices by language: ``pt-BR`` is
``pt-br``); a tag eSpeak does not know falls back to its primary language (``en-NZ`` → ``en``).
A voice that is not available at all is a `VoiceNotFound` with a readable message.
`catalog` lists the voices and variants eSpeak has, by the names `synthesize` takes.
"""

from __future__ import annotations

import array
import asyncio
import ctypes
import io
import math
import re
import threading
import wave
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import espeakng_loader

from app.pipeline.alignment import Word, speech_end, text_words

DEFAULT_VOICE = "en"
DEFAULT_RATE = 175  # words per minute, eSpeak's own default
MIN_RATE, MAX_RATE = 80, 450
DEFAULT_PITCH = 50
DEFAULT_VOLUME = 100
MAX_VOLUME = 200
SAMPLE_WIDTH = 2  # bytes: 16-bit signed, little-endian, mono

# speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # report errors instead of calling exit()
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _VOLUME, _PITCH = 1, 2, 3
_EE_OK, _EE_NOT_FOUND = 0, 2
_BUFFER_MS = 200  # how much audio each callback call carries at most

_VOICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+\- ]{0,63}")
_IPA = 0x02  # espeak_TextToPhonemes: IPA symbols, as Piper voices were trained on
_EVENT_END_OF_LIST, _EVENT_WORD, _EVENT_CLAUSE_END = 0, 1, 5


class _Event(ctypes.Structure):
    """speak_lib.h ``espeak_EVENT``: what the synthesis callback is told besides the audio."""

    _fields_ = (
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based, in characters of the text given
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # milliseconds
        ("sample", ctypes.c_int),  # samples since the start of this synthesis
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    )


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


class _VoiceEntry(ctypes.Structure):
    """speak_lib.h ``espeak_VOICE``, as `espeak_ListVoices` returns it."""

    _fields_ = (
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),  # read back only up to its first NUL: unused here
        ("identifier", ctypes.c_char_p),  # the voice file, e.g. "gmw/en-US" or "!v/f3"
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    )


class SpeechError(Exception):
    """Synthesis failed; the message is readable by the person who asked for the speech."""


class VoiceNotFound(SpeechError):
    pass


@dataclass(frozen=True)
class Voice:
    """The parameters of one synthesis (see the module docstring for the mapping). ``engine``
    is ``espeak`` unless `app.pipeline.narrator` chose a neural voice (then ``name`` is
    that voice, and ``pitch`` does not apply)."""

    name: str = DEFAULT_VOICE
    rate: int = DEFAULT_RATE
    pitch: int = DEFAULT_PITCH
    volume: int = DEFAULT_VOLUME
    engine: str = "espeak"


@dataclass(frozen=True)
class Speech:
    """Synthesized audio: 16-bit signed little-endian mono PCM, and where its words are (empty
    for silence and for audio joined without them)."""

    pcm: bytes
    sample_rate: int
    words: tuple[Word, ...] = ()

    @property
    def samples(self) -> int:
        return len(self.pcm) // SAMPLE_WIDTH

    @property
    def duration_ms(self) -> int:
        """The exact length, rounded to the millisecond."""
        return round(self.samples * 1000 / self.sample_rate)


def voice_for(
    *,
    engine_settings: Mapping[str, Any] | None = None,
    profile_language: str | None = None,
    audio_settings: Mapping[str, Any] | None = None,
) -> Voice:
    """The eSpeak parameters for a voice profile's settings and a video's audio settings."""
    engine = engine_settings or {}
    audio = audio_settings or {}
    name = (
        _text(engine.get("voice"))
        or _text(engine.get("language"))
        or _text(profile_language)
        or _text(audio.get("language"))
        or DEFAULT_VOICE
    )
    variant = _text(engine.get("variant"))
    if variant and "+" not in name:
        name = f"{name}+{variant}"
    rate = _number(engine.get("rate"), DEFAULT_RATE) * _number(audio.get("speed"), 1.0)
    pitch = _number(engine.get("pitch"), DEFAULT_PITCH) * _number(audio.get("pitch"), 1.0)
    volume = _number(engine.get("volume"), DEFAULT_VOLUME) * _number(audio.get("volume"), 1.0)
    return Voice(
        name=name,
        rate=_clamp(rate, MIN_RATE, MAX_RATE),
        pitch=_clamp(pitch, 0, 100),
        volume=_clamp(volume, 0, MAX_VOLUME),
    )


async def synthesize(
    text: str,
    *,
    voice: str = DEFAULT_VOICE,
    rate: int = DEFAULT_RATE,
    pitch: int = DEFAULT_PITCH,
    volume: int = DEFAULT_VOLUME,
) -> Speech:
    """``text`` spoken by eSpeak NG, in a worker thread (the event loop keeps running)."""
    return await asyncio.to_thread(
        synthesize_blocking, text, voice=voice, rate=rate, pitch=pitch, volume=volume
    )


def synthesize_blocking(
    text: str,
    *,
    voice: str = DEFAULT_VOICE,
    rate: int = DEFAULT_RATE,
    pitch: int = DEFAULT_PITCH,
    volume: int = DEFAULT_VOLUME,
) -> Speech:
    """`synthesize`, blocking the calling thread (for threads and scripts, not the event loop)."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    with _LOCK:
        engine = _engine()
        if not cleaned:
            return Speech(b"", engine.sample_rate)
        engine.set_voice(voice)
        engine.set_parameter(_RATE, _clamp(rate, MIN_RATE, MAX_RATE))
        engine.set_parameter(_PITCH, _clamp(pitch, 0, 100))
        engine.set_parameter(_VOLUME, _clamp(volume, 0, MAX_VOLUME))
        pcm, marks = engine.speak(cleaned)
        rate = engine.sample_rate
        return Speech(pcm, rate, tuple(_words(cleaned, marks, pcm, rate)))


def phonemize_blocking(text: str, *, voice: str = DEFAULT_VOICE) -> list[tuple[str, str]]:
    """``text`` in IPA as eSpeak NG's ``voice`` would speak it, clause by clause: ``(the
    clause's text, its phonemes)``, words separated by spaces. The clause text keeps its
    closing punctuation (which eSpeak reads but does not spell as a phoneme)."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    if not cleaned:
        return []
    with _LOCK:
        engine = _engine()
        engine.set_voice(voice)
        return engine.phonemize(cleaned)


def sample_rate() -> int:
    """The rate of every `Speech` this process makes (initializes the library)."""
    with _LOCK:
        return _engine().sample_rate


@dataclass(frozen=True)
class VoiceCatalog:
    """What eSpeak NG has, spelled as `synthesize` takes it (``voice`` or ``voice+variant``)."""

    voices: frozenset[str]  # "en", "en-us", "de", "pt-br", "cmn" …: voice file names
    variants: frozenset[str]  # "f3", "m2", "klatt", "Alex" …: variant file names, as spelled


def catalog() -> VoiceCatalog:
    """The voices and variants of the shipped voice data (blocking; listed once per process).

    Voices are named by their file, which eSpeak's lookup by name always finds: a language
    that only a voice's header mentions (``en-gb``, ``zh``) is not a name of its own. MBROLA
    voices need a separate program and are left out, as eSpeak's own list leaves them out; so
    are voices that speak only silence (their dictionary is not in the shipped data). Checking
    that takes a syllable from each voice: a fraction of a second, once per process.
    """
    global _CATALOG  # the voice data does not change while the process runs
    with _LOCK:
        if _CATALOG is None:
            engine = _engine()
            names = {_file_name(i).lower() for i in engine.list_voices(None)}
            variants = {_file_name(i) for i in engine.list_voices(b"variant")}
            voices = {name for name in names if _speaks(engine, name)}
            _CATALOG = VoiceCatalog(frozenset(voices), frozenset(variants))
        return _CATALOG


# --- assembling and writing audio ---------------------------------------------------------


def silence(duration_ms: int, rate: int) -> Speech:
    return Speech(bytes(SAMPLE_WIDTH * round(duration_ms * rate / 1000)), rate)


def concatenate(parts: Sequence[Speech], rate: int) -> Speech:
    """``parts`` one after the other, their words moved to where they now are."""
    if any(part.sample_rate != rate for part in parts):
        raise ValueError("cannot join speech of different sample rates")
    words: list[Word] = []
    position = 0
    for part in parts:
        words.extend(word.shifted(position) for word in part.words)
        position += part.samples
    return Speech(b"".join(part.pcm for part in parts), rate, tuple(words))


def wav_bytes(speech: Speech) -> bytes:
    """``speech`` as a complete WAV file (RIFF, PCM, mono, 16-bit)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(SAMPLE_WIDTH)
        file.setframerate(speech.sample_rate)
        file.writeframes(speech.pcm)
    return buffer.getvalue()


def rms(pcm: bytes) -> float:
    """Root mean square of 16-bit PCM samples (0 for silence, up to 32767)."""
    samples = array.array("h")
    samples.frombytes(pcm[: len(pcm) - len(pcm) % SAMPLE_WIDTH])
    if not samples:
        return 0.0
    return math.sqrt(sum(sample * sample for sample in samples) / len(samples))


# --- the library --------------------------------------------------------------------------

_LOCK = threading.Lock()
_ENGINE: _Engine | None = None
_CATALOG: VoiceCatalog | None = None


def _engine() -> _Engine:
    """The process's one initialized library (call with `_LOCK` held)."""
    global _ENGINE  # one library per process, initialized on first use
    if _ENGINE is None:
        _ENGINE = _Engine()
    return _ENGINE


class _Engine:
    def __init__(self) -> None:
        try:
            lib = ctypes.CDLL(espeakng_loader.get_library_path())
            data_path = espeakng_loader.get_data_path()
        except (OSError, RuntimeError) as exc:
            raise SpeechError(f"The speech synthesizer could not be loaded ({exc}).") from exc
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_ListVoices.argtypes = [ctypes.POINTER(_VoiceEntry)]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_VoiceEntry))
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,  # text
            ctypes.c_size_t,  # its size in bytes, with the terminating NUL
            ctypes.c_uint,  # position
            ctypes.c_int,  # position type
            ctypes.c_uint,  # end position (0: the whole text)
            ctypes.c_uint,  # flags
            ctypes.c_void_p,  # unique identifier (out), unused
            ctypes.c_void_p,  # user data, unused
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_TextToPhonemes.argtypes = [
            ctypes.POINTER(ctypes.c_void_p),  # the text (in), where the next clause starts (out)
            ctypes.c_int,  # text mode
            ctypes.c_int,  # phoneme mode
        ]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, data_path.encode(), _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise SpeechError("The speech synthesizer could not be started.")
        self.sample_rate: int = rate
        self._lib = lib
        self._chunks: list[bytes] = []
        self._marks: list[tuple[int, int, int]] = []  # (event type, text position, sample)
        self._voice: str | None = None
        # Kept referenced for as long as the library may call it.
        self._callback = _CALLBACK(self._collect)
        lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav: Any, count: int, events: Any) -> int:
        if count > 0 and wav:
            self._chunks.append(ctypes.string_at(wav, count * SAMPLE_WIDTH))
        index = 0
        while events and events[index].type != _EVENT_END_OF_LIST:
            event = events[index]
            if event.type in (_EVENT_WORD, _EVENT_CLAUSE_END):
                self._marks.append((event.type, event.text_position, event.sample))
            index += 1
        return 0  # go on

    def set_voice(self, name: str) -> None:
        if name == self._voice:
            return
        for candidate in _voice_candidates(name):
            result = self._lib.espeak_SetVoiceByName(candidate.encode())
            if result == _EE_OK:
                self._voice = name
                return
            if result != _EE_NOT_FOUND:
                raise SpeechError(f"The voice {name!r} could not be loaded.")
        raise VoiceNotFound(
            f"The voice {name!r} is not available: use a language such as 'en', 'en-us', "
            f"'de' or 'pt-br'."
        )

    def set_parameter(self, parameter: int, value: int) -> None:
        if self._lib.espeak_SetParameter(parameter, value, 0) != _EE_OK:
            raise SpeechError("The speech synthesizer refused a setting.")

    def list_voices(self, languages: bytes | None) -> list[str]:
        """The identifiers of the voices for ``languages`` (``None``: every voice but variants
        and MBROLA voices; ``b"variant"``: the variants)."""
        spec = None if languages is None else _VoiceEntry(languages=languages)
        entries = self._lib.espeak_ListVoices(spec)
        identifiers: list[str] = []
        index = 0
        while entries[index]:  # a NULL-terminated array, owned by the library
            identifier = entries[index].contents.identifier
            if identifier:
                identifiers.append(identifier.decode())
            index += 1
        # Listing by language goes through eSpeak's voice selection: choose the voice again on
        # the next synthesis rather than trust the cached name.
        self._voice = None
        return identifiers

    def speak(self, text: str) -> tuple[bytes, list[tuple[int, int, int]]]:
        """The audio of ``text`` and the word and clause-end events met on the way."""
        data = text.encode()
        self._chunks, self._marks = [], []
        try:
            result = self._lib.espeak_Synth(
                data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
            if result != _EE_OK:
                raise SpeechError("The speech synthesizer failed on this text.")
            return b"".join(self._chunks), self._marks
        finally:
            self._chunks, self._marks = [], []

    def phonemize(self, text: str) -> list[tuple[str, str]]:
        """`phonemize_blocking` with the voice set. eSpeak hands back one clause per call and
        moves the text pointer to the next; it reads one character past the clause's
        punctuation first, so a clause's text is cut after its last punctuation mark."""
        buffer = ctypes.create_string_buffer(text.encode())
        base = ctypes.addressof(buffer)
        pointer = ctypes.c_void_p(base)
        clauses: list[tuple[str, str]] = []
        carried = b""
        while pointer.value:
            start = pointer.value - base
            phonemes = self._lib.espeak_TextToPhonemes(ctypes.byref(pointer), _CHARS_UTF8, _IPA)
            stop = pointer.value - base if pointer.value else len(buffer.value)
            chunk = carried + buffer.value[start:stop]
            cut = _clause_cut(chunk) if pointer.value else 0
            clause, carried = (chunk[:cut], chunk[cut:]) if cut > 0 else (chunk, b"")
            spoken = (phonemes or b"").decode(errors="replace").strip()
            if spoken or clause.strip():
                clauses.append((clause.decode(errors="replace").strip(), spoken))
        if carried.strip() and clauses:
            last_text, last_phonemes = clauses[-1]
            clauses[-1] = (f"{last_text} {carried.decode(errors='replace').strip()}", last_phonemes)
        return clauses


_CLAUSE_MARKS = (b".", b",", b"?", b"!", b":", b";")


def _clause_cut(chunk: bytes) -> int:
    """Where a clause eSpeak read ends in ``chunk``: after its last punctuation mark, else (a
    dash, a bracket) before the first character of the next clause, which eSpeak read ahead."""
    mark = max(chunk.rfind(mark) for mark in _CLAUSE_MARKS)
    return mark + 1 if mark >= 0 else max(chunk.rstrip().rfind(b" "), 0)


def _words(text: str, marks: list[tuple[int, int, int]], pcm: bytes, rate: int) -> list[Word]:
    """The words of ``text`` where eSpeak said them: each starts at its first word event (a
    number spoken as several words has several); it ends where the next word starts, or, at the
    end of a clause, where the sound stops before the pause. A word eSpeak did not speak (a
    dash) takes no time, at the end of the word before it."""
    spans = text_words(text)
    starts: dict[int, int] = {}
    clause_ends: list[int] = []
    for kind, position, sample in marks:
        if kind == _EVENT_CLAUSE_END:
            clause_ends.append(sample)
            continue
        index = next((i for i, (_s, end, _w) in enumerate(spans) if position - 1 < end), None)
        if index is not None:
            starts.setdefault(index, sample)
    total = len(pcm) // SAMPLE_WIDTH
    words: list[Word] = []
    for index, (_start, _end, word) in enumerate(spans):
        if index not in starts:
            at = words[-1].end if words else 0
            words.append(Word(word, at, at))
            continue
        begin = starts[index]
        after = min((s for i, s in starts.items() if i > index), default=total)
        pause = min((s for s in clause_ends if begin < s <= after), default=None)
        end = after if pause is None else speech_end(pcm, rate, start=begin, stop=pause)
        words.append(Word(word, begin, max(begin, end)))
    return words


def _voice_candidates(name: str) -> list[str]:
    """``name``, then its primary language with the same variant (``en-nz+f3`` → ``en+f3``)."""
    name = name.strip()
    if not _VOICE_NAME.fullmatch(name):
        return []
    base, plus, variant = name.partition("+")
    primary = base.split("-")[0]
    candidates = [name, f"{primary}{plus}{variant}"]
    return list(dict.fromkeys(candidates))


def _speaks(engine: _Engine, voice: str) -> bool:
    """Whether ``voice`` makes a sound at eSpeak's default settings (call with `_LOCK` held)."""
    try:
        engine.set_voice(voice)
        defaults = ((_RATE, DEFAULT_RATE), (_PITCH, DEFAULT_PITCH), (_VOLUME, DEFAULT_VOLUME))
        for parameter, value in defaults:
            engine.set_parameter(parameter, value)
        return rms(engine.speak("a")[0]) > 0
    except SpeechError:
        return False


def _file_name(identifier: str) -> str:
    """``gmw/en-US`` → ``en-US``, ``!v/f3`` → ``f3``."""
    return identifier.rsplit("/", 1)[-1]


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _number(value: Any, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return default
    return float(value)


def _clamp(value: float, low: int, high: int) -> int:
    return max(low, min(high, round(value)))

"""Rules for what clients may write, with messages that name the field (SPEC §4 BAD_USER_INPUT).

Pure functions, no database: the GraphQL inputs call them before anything is written, so a
rejected request changes nothing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from app.errors import BadUserInput
from app.pipeline import speech
from db.models import DEFAULT_TARGET_DURATION_SECONDS, TARGET_DURATION_RANGE

TITLE_MAX = 200
DESCRIPTION_MAX = 10_000
NAME_MAX = 100
URL_MAX = 2048
# BCP 47 in practice: "en", "en-US", "pt-BR", "zh-Hans-CN".
_LANGUAGE = re.compile(r"^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8}){0,3}$")


@dataclass(frozen=True)
class Range:
    low: float
    high: float


AUDIO_RANGES = {
    "speed": Range(0.5, 2.0),
    "pitch": Range(0.5, 2.0),
    "volume": Range(0.0, 2.0),
}

#: eSpeak NG's own ranges, the ones synthesis clamps to (`app.pipeline.speech`).
ENGINE_RANGES = {
    "rate": Range(speech.MIN_RATE, speech.MAX_RATE),  # words per minute
    "pitch": Range(0, 100),
    "volume": Range(0, speech.MAX_VOLUME),
}


def text(value: str, *, field: str, max_length: int, required: bool = True) -> str:
    """Trimmed text; blank is refused when ``required``."""
    cleaned = value.strip()
    if required and not cleaned:
        raise BadUserInput(f"`{field}` must not be blank.", field=field)
    if len(cleaned) > max_length:
        raise BadUserInput(f"`{field}` is limited to {max_length} characters.", field=field)
    if "\x00" in cleaned:
        raise BadUserInput(f"`{field}` must not contain NUL characters.", field=field)
    return cleaned


def target_duration(value: int | None, *, field: str) -> int:
    """Seconds of narration a video asks for; ``None`` is the default."""
    if value is None:
        return DEFAULT_TARGET_DURATION_SECONDS
    low, high = TARGET_DURATION_RANGE
    if not low <= value <= high:
        raise BadUserInput(
            f"`{field}` must be between {low} and {high} seconds (got {value}).", field=field
        )
    return value


def optional_text(value: str | None, *, field: str, max_length: int) -> str | None:
    if value is None:
        return None
    return text(value, field=field, max_length=max_length, required=False) or None


def web_url(value: str, *, field: str) -> str:
    """An absolute http(s) URL with a host (what the script stage may fetch)."""
    cleaned = value.strip()
    if len(cleaned) > URL_MAX:
        raise BadUserInput(f"`{field}` is limited to {URL_MAX} characters.", field=field)
    try:
        parts = urlsplit(cleaned)
        hostname, _ = parts.hostname, parts.port  # parsed on access: "http://[::1" fails here
    except ValueError:  # an unbalanced "[" or "]", a port out of range …
        raise BadUserInput(f"`{field}` is not a valid URL.", field=field) from None
    if parts.scheme not in ("http", "https") or not hostname:
        raise BadUserInput(f"`{field}` must be an http:// or https:// URL.", field=field)
    if parts.username or parts.password:
        raise BadUserInput(f"`{field}` must not contain credentials.", field=field)
    return cleaned


def language(value: str, *, field: str) -> str:
    cleaned = value.strip()
    if not _LANGUAGE.match(cleaned):
        raise BadUserInput(
            f"`{field}` must be a language tag such as 'en' or 'pt-BR'.", field=field
        )
    return cleaned


def audio_settings(
    current: dict[str, Any], changes: dict[str, Any], *, field: str
) -> dict[str, Any]:
    """``current`` with ``changes`` applied, every value checked against its range."""
    merged = dict(current)
    for key, value in changes.items():
        if value is None:
            continue
        name = f"{field}.{key}"
        if key == "language":
            merged[key] = language(value, field=name)
            continue
        bounds = AUDIO_RANGES[key]
        number = float(value)
        if not math.isfinite(number) or not bounds.low <= number <= bounds.high:
            raise BadUserInput(
                f"`{name}` must be between {bounds.low:g} and {bounds.high:g}.", field=name
            )
        merged[key] = number
    return merged


def engine_settings(
    changes: Mapping[str, Any],
    *,
    field: str,
    voices: Collection[str] = (),
    variants: Collection[str] = (),
) -> dict[str, Any]:
    """``changes`` to a voice profile's engine settings, each checked: ``voice`` and
    ``variant`` among those eSpeak has (``voices``, ``variants``; returned as eSpeak spells
    them), numbers within `ENGINE_RANGES`. ``None`` (clear the key) passes through."""
    checked: dict[str, Any] = {}
    for key, value in changes.items():
        name = f"{field}.{key}"
        if value is None:
            checked[key] = None
        elif key == "voice":
            checked[key] = _voice(value, voices, field=name, variant_field=f"{field}.variant")
        elif key == "variant":
            checked[key] = _listed(value, variants, field=name, kind="variant", such_as=_VARIANTS)
        else:
            bounds = ENGINE_RANGES[key]
            if not bounds.low <= value <= bounds.high:
                raise BadUserInput(
                    f"`{name}` must be between {bounds.low:g} and {bounds.high:g}.", field=name
                )
            checked[key] = int(value)
    return checked


def _voice(value: str, voices: Collection[str], *, field: str, variant_field: str) -> str:
    if "+" in value:
        raise BadUserInput(f"`{field}` names the voice alone; set `{variant_field}`.", field=field)
    base = value.strip().split("-")[0].lower()
    hint = f" ('{base}' is)" if base in voices and base != value.strip().lower() else ""
    return _listed(value, voices, field=field, kind="voice", such_as=_VOICES, hint=hint)


_VOICES = "'en', 'en-us', 'de' or 'pt-br'"
_VARIANTS = "'f3', 'm2' or 'klatt'"


def _listed(
    value: str, names: Collection[str], *, field: str, kind: str, such_as: str, hint: str = ""
) -> str:
    """``value`` as spelled in ``names``, matched without regard to case."""
    cleaned = text(value, field=field, max_length=64)
    found = {name.casefold(): name for name in names}.get(cleaned.casefold())
    if found is None:
        raise BadUserInput(
            f"`{field}` must be an eSpeak NG {kind} such as {such_as}; "
            f"{cleaned!r} is not one{hint}.",
            field=field,
        )
    return found

"""Rules for what clients may write, with messages that name the field (SPEC §4 BAD_USER_INPUT).

Pure functions, no database: the GraphQL inputs call them before anything is written, so a
rejected request changes nothing.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from app.errors import BadUserInput

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


def optional_text(value: str | None, *, field: str, max_length: int) -> str | None:
    if value is None:
        return None
    return text(value, field=field, max_length=max_length, required=False) or None


def web_url(value: str, *, field: str) -> str:
    """An absolute http(s) URL with a host (what the script stage may fetch)."""
    cleaned = value.strip()
    if len(cleaned) > URL_MAX:
        raise BadUserInput(f"`{field}` is limited to {URL_MAX} characters.", field=field)
    parts = urlsplit(cleaned)
    if parts.scheme not in ("http", "https") or not parts.hostname:
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

"""The compiled path's ``data``: JSON text made by PostgreSQL, spliced into the response as is.

Parsing it into Python objects only to serialise them again would cost what the compiled path
saves; `RawJSON` carries the text through Strawberry's result to the view's `encode_response`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True)
class RawJSON:
    """A JSON value, already encoded."""

    text: str


def encode_response(data: object) -> str:
    """``data`` as JSON text, as the view writes responses, with a `RawJSON` ``data`` verbatim.

    orjson writes it (UTF-8 as it is, as PostgreSQL's text has it, several times faster than
    ``json`` on a large page); a value orjson refuses (an integer past 64 bits in a JSON-backed
    field) is written by ``json``."""
    if isinstance(data, dict) and isinstance(data.get("data"), RawJSON):
        raw: RawJSON = data["data"]
        rest: dict[str, Any] = {key: value for key, value in data.items() if key != "data"}
        tail = _dumps(rest)[1:]  # "}" or '"errors":…}'
        return '{"data":' + raw.text + ("," + tail if rest else "}")
    return _dumps(data)


def _dumps(value: object) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

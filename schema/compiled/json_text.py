"""The compiled path's ``data``: JSON text made by PostgreSQL, spliced into the response as is.

Parsing it into Python objects only to serialise them again would cost what the compiled path
saves; `RawJSON` carries the text through Strawberry's result to the view's `encode_response`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RawJSON:
    """A JSON value, already encoded."""

    text: str


def encode_response(data: object) -> str:
    """``json.dumps(data)`` as the view writes responses, with a `RawJSON` ``data`` verbatim."""
    if isinstance(data, dict) and isinstance(data.get("data"), RawJSON):
        raw: RawJSON = data["data"]
        rest: dict[str, Any] = {key: value for key, value in data.items() if key != "data"}
        tail = json.dumps(rest, separators=(",", ":"))[1:]  # "}" or '"errors":…}'
        return '{"data":' + raw.text + ("," + tail if rest else "}")
    return json.dumps(data, separators=(",", ":"))

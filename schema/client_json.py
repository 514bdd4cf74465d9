"""JSON sent by clients, parsed with a bound on how deeply it nests.

Python's ``json`` module descends one level of the interpreter's stack per nested array or
object, so 2 KB of ``[`` exhaust the recursion limit (`RecursionError`, a crash rather than a
refusal). Every JSON the server reads from a client goes through `loads`: HTTP bodies, a GET's
``variables`` and ``extensions``, a multipart request's ``operations`` and ``map`` (all through
`schema.transport.view.GraphQLView.decode_json`) and websocket messages
(`schema.transport.websocket_messages.SizeLimitedWebSocket`). It measures the nesting first, outside
strings, with a few passes of C-speed string functions, and refuses anything deeper than the
bound (``STUDIO_MAX_JSON_DEPTH``) before ``json.loads`` runs.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate

#: The ``extensions.limit`` of a refusal for nesting.
DEPTH_LIMIT = "json_depth"

# A string, escapes included; an unterminated one runs to the end of the text (which
# ``json.loads`` then reports). Written as "unrolled loop" so that it never backtracks.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class ClientJSONError(ValueError):
    """JSON that is well-formed, or may be, but that the server will not parse; ``message``
    is for the client, ``limit`` names the limit it is over (``extensions.limit``), if one."""

    def __init__(self, message: str, *, limit: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.limit = limit


def loads(text: str, *, max_depth: int) -> object:
    """``json.loads(text)``, or `ClientJSONError` when ``text`` nests arrays and objects more
    than ``max_depth`` deep (or holds a number Python will not convert); a syntax error is
    ``json.JSONDecodeError`` as usual."""
    if text.count("[") + text.count("{") > max_depth and nesting_depth(text) > max_depth:
        raise ClientJSONError(
            f"The JSON is nested more than {max_depth} levels deep.", limit=DEPTH_LIMIT
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # an integer of more digits than `sys.get_int_max_str_digits()`
        raise ClientJSONError("The JSON holds a number with too many digits.") from exc


def nesting_depth(text: str) -> int:
    """How deeply arrays and objects nest in ``text`` (brackets inside strings do not count)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets), initial=0))

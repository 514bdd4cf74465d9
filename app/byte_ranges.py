"""Which bytes of a served file a ``Range`` header asks for, read as RFC 9110 §14 says.

Starlette's `FileResponse` serves ranges, but it refuses with 400 what the RFC says to ignore
(a range unit it does not know, §14.2: "An origin server MUST ignore a Range header field that
contains a range unit it does not understand"; a ranges-specifier that does not parse, which a
server "MAY ignore"), and with 416 a request whose ranges are satisfiable but for one. Here:

* the header is ignored (the whole file, 200) when its unit is not ``bytes``, when any of its
  range-specs is invalid (not ``first-last``, ``first-`` or ``-suffix``, or ``last < first``),
  or when it lists more than `MAX_RANGES` ranges;
* a range is satisfiable when it starts inside the file (``-suffix`` when the suffix is not 0);
  the unsatisfiable ones are dropped, and only when none is left is the answer 416;
* an empty file is served whole.

`satisfiable_ranges` says which; `as_header` writes what is left back as a header Starlette
reads exactly so (the media routes hand it that one instead of the client's).
"""

from __future__ import annotations

import re

#: More ranges than this in one header: the whole file instead (RFC 9110 §14.2 "MAY ignore").
MAX_RANGES = 100
#: Positions with more digits than this are past any file (and not worth converting).
_MAX_DIGITS = 18

_RANGE_SPEC = re.compile(r"([0-9]*)-([0-9]*)")


class RangeNotSatisfiable(Exception):
    """No range of the header overlaps the file: 416, with ``Content-Range: bytes */<size>``."""


def satisfiable_ranges(header: str | None, size: int) -> list[tuple[int, int]] | None:
    """The ``(first, last)`` byte positions (inclusive, inside the file) that ``header`` asks
    for, in its order; None to ignore it and serve the whole file; `RangeNotSatisfiable`."""
    if header is None or size == 0:
        return None
    unit, equals, range_set = header.partition("=")
    if not equals or unit.strip().lower() != "bytes":
        return None
    specs = [spec.strip() for spec in range_set.split(",")]
    specs = [spec for spec in specs if spec]  # the list rule allows empty elements
    if not specs or len(specs) > MAX_RANGES:
        return None
    ranges: list[tuple[int, int]] = []
    for spec in specs:
        match = _RANGE_SPEC.fullmatch(spec)
        if match is None or match.group(1) == match.group(2) == "":
            return None  # an invalid range-spec makes the whole ranges-specifier invalid
        first, last = _position(match.group(1)), _position(match.group(2))
        if first is None:  # "-suffix": the last bytes
            if last:
                ranges.append((max(size - last, 0), size - 1))
        elif last is not None and last < first:
            return None
        elif first < size:
            ranges.append((first, size - 1 if last is None else min(last, size - 1)))
    if not ranges:
        raise RangeNotSatisfiable(size)
    return ranges


def as_header(ranges: list[tuple[int, int]]) -> str:
    return "bytes=" + ",".join(f"{first}-{last}" for first, last in ranges)


def _position(digits: str) -> int | None:
    if not digits:
        return None
    return int(digits) if len(digits) <= _MAX_DIGITS else 10**_MAX_DIGITS

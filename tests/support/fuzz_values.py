"""The values the fuzz strategies (`tests.support.fuzz`) put into requests.

Strings of odd unicode (lone surrogates, NUL, controls, bidi marks) and at and past the
documented limits; a small dictionary keyed by argument name (URLs for ``sourceUrl``, tags for
``language`` …), valid words first; numbers at the edges of their types and past them; IDs and
cursors mostly from `Seeds` (real ones) and tampered copies of them, since random text rarely
gets past the first check; and wrong values of every JSON shape for where any type is expected.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from schema.relay import to_global_id

NODE_TYPE_NAMES = ("User", "Video", "VoiceProfile", "GenerationJob", "AuditEvent")


@dataclass(frozen=True)
class Seeds:
    """Real values worth trying where the schema asks for an ID or a cursor."""

    ids: Mapping[str, tuple[str, ...]]  # by type name
    cursors: tuple[str, ...]

    def every_id(self) -> tuple[str, ...]:
        return tuple(global_id for ids in self.ids.values() for global_id in ids)


@dataclass(frozen=True)
class EnumValue:
    """An enum value: bare in a document, a string in variables."""

    name: str


_ODD_CHARACTERS = st.characters(categories=["Cs", "Cc", "Cf", "Zs", "Zl", "Mn", "So", "Co"])
_DICTIONARY = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "\udfff\ud800",
    "\u202egnp.exe",
    "\ufeff",
    "😀" * 3,
    "' OR 1=1 --",
    "%s%n",
    "\\",
    '"',
    "null",
    "DRAFT",
    "__proto__",
)
TEXT = st.one_of(
    st.text(max_size=16),
    st.text(_ODD_CHARACTERS, max_size=8),
    st.sampled_from(_DICTIONARY),
    # At and past the documented limits (titles 200, names 100, URLs 2048, descriptions 10 000).
    st.builds(
        lambda unit, count: unit * count,
        st.sampled_from(("x", "é", "😀", " ")),
        st.sampled_from((100, 101, 200, 201, 2049, 10_001)),
    ),
)
SHORT_TEXT = st.text(max_size=12)
PUNCTUATION = st.sampled_from(list('{}()[]:$@!.,"#=|&\\\x00\ud800\u2028...'))

# Values that names call for, valid ones first (what failures shrink to).
STRING_HINTS: dict[str, tuple[str, ...]] = {
    "title": ("How solar panels work", " Padded ", "Ünïcödé 😀", "x" * 200),
    "description": ("Sunlight knocks electrons loose.", "", "Zwei Wörter."),
    "name": ("Narrator", "Ada", "名前"),
    "sourceUrl": (
        "https://example.com/solar",
        "http://127.0.0.1:8000/",
        "http://169.254.169.254/latest/meta-data",
        "ftp://example.com/x",
        "javascript:alert(1)",
        "https://user:pw@example.com/",
        "http://",
        "https://",
        "http://[::1]/",
        "http://[::1",
        "http://]/",
        "http://exa mple.com/",
        "https://example.com:99999/",
        "https://xn--nxasmq6b.com/",
        "//example.com/",
    ),
    "language": ("en", "en-GB", "pt-BR", "zh-Hans-CN", "english", "e", "en_US", "xx-aaaaaaaaa"),
    "target": ("local", " LOCAL ", "youtube", ""),
    "provider": ("google", "local", ""),
    "idToken": ("", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "x" * 20_000),
    "search": ("sol pan", "&|!:*()", "a:* | b", "'", "-", "é"),
}

ID_TYPES = (
    ("voiceprofile", "VoiceProfile"),
    ("video", "Video"),
    ("job", "GenerationJob"),
    ("audit", "AuditEvent"),
)

_FINITE_FLOATS = st.floats(allow_nan=False, allow_infinity=False)
SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "Int": st.one_of(
        st.integers(-3, 120),
        st.sampled_from((0, -1, 100, 101, 2**31 - 1, -(2**31))),
    ),
    "Float": st.one_of(
        st.sampled_from((1.0, 0.5, 2.0, 0.0, 2.0000001, -0.0)),
        st.floats(),
        st.sampled_from((10**400, -(10**400))),  # ints too large for a float
    ),
    "Boolean": st.booleans(),
    "DateTime": st.one_of(
        st.builds(
            lambda moment, hours: moment.replace(tzinfo=hours).isoformat(),
            st.datetimes(),
            st.sampled_from(
                (None, UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12)))
            ),
        ),
        st.sampled_from(
            (
                "",
                "now",
                "2026-02-30T00:00:00Z",
                "2026-01-01T25:00:00",
                "0001-01-01T00:00:00+14:00",
                "9999-12-31T23:59:59.999999-12:00",
                "2026-01-01",
                "1e9",
            )
        ),
    ),
    "JSON": st.one_of(st.none(), st.integers(), SHORT_TEXT, st.just({"a": [1]})),
    "Upload": st.one_of(st.none(), SHORT_TEXT, st.just({"name": "x"})),
}

WRONG_VALUES: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.sampled_from((2**31, -(2**31) - 1, 2**63, 10**30, 10**400, -1)),
    st.booleans(),
    _FINITE_FLOATS,
    st.floats(),
    st.sampled_from((EnumValue("BOGUS"), EnumValue("draft"), EnumValue("true"))),
    SHORT_TEXT,
    st.just([]),
    st.just({}),
    st.just({"id": "x", "title": 1}),
    st.lists(st.integers(-2, 2), max_size=2),
)

OTHER_TYPE_NAMES = st.sampled_from(
    ("Int", "String!", "ID", "[ID!]!", "Float", "Boolean!", "VideoFilter", "Upload", "Nope")
)
INVALID_SELECTIONS = st.sampled_from(
    ("nope", "__schema { types { name } }", "...Missing", "... on Nope { id }", "id(x: 1)")
)

JSON_BODIES: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.integers(),
    SHORT_TEXT,
    st.lists(st.integers(), max_size=2),
    st.fixed_dictionaries(
        {},
        optional={
            "query": st.one_of(
                st.none(), st.integers(), SHORT_TEXT, st.just(["{ viewer { id } }"])
            ),
            "variables": st.one_of(st.none(), st.integers(), SHORT_TEXT, st.just({"a": 1})),
            "operationName": st.one_of(st.none(), st.integers(), SHORT_TEXT),
            "extensions": st.one_of(st.none(), SHORT_TEXT, st.just({"persistedQuery": 1})),
        },
    ),
)
CONTENT_TYPES = st.sampled_from(
    (
        "",
        "application/json",
        "application/json; charset=latin-1",
        "application/graphql",
        "application/graphql-response+json",
        "text/plain",
        "multipart/form-data",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "image/png",
    )
)


def global_ids(seeds: Seeds, type_name: str | None) -> st.SearchStrategy[Any]:
    """Mostly real ids of the type asked for (the viewer's, a stranger's, deleted ones), now
    and then one of another type, else anything id-like."""
    every = st.sampled_from(seeds.every_id())
    known = seeds.ids.get(type_name or "")
    typed = st.sampled_from(known) if known else every
    return mostly(typed, mostly(every, _id_like(seeds), one_in=2), one_in=4)


def _id_like(seeds: Seeds) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.builds(_tamper, st.sampled_from(seeds.every_id()), st.integers(0, 64), PUNCTUATION),
        st.builds(
            lambda type_name, row_id: to_global_id(type_name, row_id),
            st.sampled_from((*NODE_TYPE_NAMES, "Nope", "")),
            st.uuids(),
        ),
        st.builds(_b64, st.binary(max_size=40)),
        st.sampled_from(
            (
                "",
                "=",
                "====",
                _b64(b"Video:"),
                _b64(b"Video:not-a-uuid"),
                _b64(b"Video:{12345678-1234-5678-1234-567812345678}"),
                _b64(b":"),
                _b64("Vidéo:00000000-0000-0000-0000-000000000000".encode()),
                _b64(b"\xff\xfe"),
                "Video:00000000-0000-0000-0000-000000000000",
                "x" * 5000,
            )
        ),
        TEXT,
        st.integers(-1, 2**40),  # IDs may be written as Int literals
    )


def cursor_values(seeds: Seeds) -> st.SearchStrategy[str]:
    return mostly(st.sampled_from(seeds.cursors), _cursor_like(seeds), one_in=2)


def _cursor_like(seeds: Seeds) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(_tamper, st.sampled_from(seeds.cursors), st.integers(0, 200), PUNCTUATION),
        st.builds(_b64, st.binary(max_size=80)),
        st.builds(
            lambda body: _b64(b"\x00" * 12 + json.dumps(body).encode()),
            st.sampled_from(
                (
                    ["videos:CREATED_AT:DESC", "x", "y"],
                    ["videos:TITLE:ASC", "a", str(uuid.UUID(int=0))],
                    {"a": 1},
                    [],
                )
            ),
        ),
    )


# --- helpers ------------------------------------------------------------------------------


def chance(draw: st.DrawFn, one_in: int) -> bool:
    """True about once in ``one_in`` draws; shrinks to False."""
    return bool(draw(st.integers(1, one_in)) == one_in)


def mostly(
    usual: st.SearchStrategy[Any], other: st.SearchStrategy[Any], *, one_in: int
) -> st.SearchStrategy[Any]:
    """``other`` about once in ``one_in`` draws, else ``usual`` (what failures shrink to)."""
    return st.integers(1, one_in).flatmap(lambda n: other if n == one_in else usual)


#: How deeply `nested_json` nests: mostly a little, now and then at and past
#: STUDIO_MAX_JSON_DEPTH (64), and past what Python's json module parses at all (about 1,000).
JSON_DEPTHS = mostly(st.integers(1, 8), st.sampled_from((63, 64, 65, 200, 1100, 5000)), one_in=3)
#: Nestings of arrays and objects, one level per character: ``[`` an array, ``{`` an object.
_NESTINGS = st.text(alphabet="[{", min_size=1, max_size=3)


@st.composite
def nested_json(draw: st.DrawFn) -> str:
    """JSON text that nests arrays and objects `JSON_DEPTHS` deep, written out by hand
    (``json.dumps`` cannot write what Python cannot parse); now and then left unclosed."""
    depth, nesting = draw(JSON_DEPTHS), draw(_NESTINGS)
    levels = [nesting[index % len(nesting)] for index in range(depth)]
    opening = "".join("[" if level == "[" else '{"a": ' for level in levels)
    closing = "".join("]" if level == "[" else "}" for level in reversed(levels))
    return opening + "1" + ("" if chance(draw, 8) else closing)


def _tamper(text: str, position: int, replacement: str) -> str:
    """``text`` with one character changed, or cut short (positions past its end)."""
    if position < len(text):
        return text[:position] + replacement + text[position + 1 :]
    return text[: position % (len(text) + 1)]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")

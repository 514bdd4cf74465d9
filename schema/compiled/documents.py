"""The JSON-backed types in SQL: `AudioSettings`, `Script`, `CaptionTrack`, `Publication` and
`VoiceEngineSettings`, read from their ``jsonb`` columns as their ``from_json`` reads them.

The Python readers are tolerant (a missing key takes its default, a value of the wrong kind is
converted or dropped), and a few of their conversions have no exact SQL twin (``float("1.5")``,
``str(None)``, Unicode whitespace in ``str.strip``). What every writer of these columns stores
(numbers as numbers, text as text, timestamps from ``isoformat``) is translated; anything else
stops the statement with `resolve_instead`, and the operation is resolved as before. So the
compiled answer is the resolvers' answer, or there is none.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from graphql import FieldNode, GraphQLObjectType

from db.models import DEFAULT_AUDIO_SETTINGS
from schema.compiled.sql import Fallback, key_literal, media_url, public_link, text_literal

if TYPE_CHECKING:
    from schema.compiled.plan import Builder

#: The text that marks a statement `resolve_instead` stopped (in PostgreSQL's error message).
RESOLVE_INSTEAD = "studio: resolve instead"

#: A jsonb value's expression -> the field's JSON.
Value = Callable[[str], str]

_INT_RANGE = 2**31  # GraphQL's Int is 32-bit


def resolve_instead(row_expression: str) -> str:
    """A json expression that, when evaluated, fails the statement with an error whose message
    carries `RESOLVE_INSTEAD` (an integer cast of text; ``row_expression`` keeps PostgreSQL
    from folding it while planning, so it fails only on a row that reaches it)."""
    reached = f"COALESCE(CAST({row_expression} AS text), 'absent')"
    return f"to_json(CAST('{RESOLVE_INSTEAD} ' || {reached} AS integer))"


def stopped_to_resolve(error: BaseException) -> bool:
    """Whether a statement failed at `resolve_instead` (not in any other way)."""
    return RESOLVE_INSTEAD in str(error)


def _guarded(condition: str, value: str, row: str) -> str:
    return f"(CASE WHEN {condition} THEN {value} ELSE {resolve_instead(row)} END)"


def _is(j: str, kind: str) -> str:
    return f"jsonb_typeof({j}) = '{kind}'"


def _python_float(j: str) -> str:
    """``float(n)`` of a JSON number as Python's float serialises (``1.0``, not ``1``), for the
    finite range a double holds (outside it, or ``-0``, the statement resolves instead)."""
    n = f"CAST({j} AS numeric)"
    fits = f"(abs({n}) < 1e300 AND ({n} <> 0 OR left(CAST({j} AS text), 1) <> '-')"
    fits += f" AND ({n} = 0 OR abs({n}) > 1e-300))"
    shortest = f"CAST(CAST({n} AS double precision) AS text)"
    text = f"regexp_replace({shortest}, '^(-?[0-9]+)$', '\\1.0')"
    return _guarded(f"{_is(j, 'number')} AND {fits}", f"CAST({text} AS json)", j)


def _python_int(j: str, *, truncate: bool) -> str:
    """A JSON number as a GraphQL Int: whole, within 32 bits; ``truncate`` for ``int(n)``."""
    n = f"CAST({j} AS numeric)"
    whole = f"trunc({n})" if truncate else n
    condition = f"{_is(j, 'number')} AND abs({whole}) < {_INT_RANGE}"
    if not truncate:
        condition += f" AND {n} = trunc({n})"
    return _guarded(condition, f"to_json(CAST({whole} AS integer))", j)


def _text(j: str, default: str | None = None) -> str:
    """A JSON string as it is; absent, the ``default`` (text) if there is one."""
    value = _guarded(_is(j, "string"), f"CAST({j} AS json)", j)
    if default is None:
        return value
    return f"(CASE WHEN {j} IS NULL THEN {_json_literal(default)} ELSE {value} END)"


def _nullable(j: str, value: str) -> str:
    """``value`` of ``j``, or JSON null when the key is absent or null."""
    return f"(CASE WHEN {j} IS NULL OR {_is(j, 'null')} THEN 'null'::json ELSE {value} END)"


def _json_literal(value: object) -> str:
    literal = json.dumps(value)
    if "'" in literal:
        raise Fallback("a default with a quote")
    return f"'{literal}'::json"


_CANONICAL_MOMENT = (
    "'^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{6})?[+-][0-9]{2}:[0-9]{2}$'"
)


def _moment(j: str) -> str:
    """A stored ``isoformat()`` string as ``datetime.fromisoformat(...).isoformat()`` gives it
    back: the canonical form only (no zero microseconds); PostgreSQL's cast checks it names a
    real moment (a stored string that does not fails the statement, as it fails the resolver)."""
    text = f"({j} #>> '{{}}')"
    canonical = f"{_is(j, 'string')} AND {text} ~ {_CANONICAL_MOMENT}"
    canonical += f" AND {text} !~ '\\.000000' AND CAST({text} AS timestamptz) IS NOT NULL"
    return _guarded(canonical, f"CAST({j} AS json)", j)


def _short_text(j: str) -> str:
    """`schema.types.voice_profile._text`: a string that is not blank, else null. A string with
    a visible ASCII character is not blank; one of ASCII whitespace only is; any other (Unicode
    whitespace is Python's to judge) resolves instead."""
    text = f"({j} #>> '{{}}')"
    blank = f"{text} ~ '^[\\x09-\\x0d\\x1c-\\x20]*$'"
    string = (
        f"(CASE WHEN {text} ~ '[\\x21-\\x7e]' THEN CAST({j} AS json)"
        f" WHEN {blank} THEN 'null'::json ELSE {resolve_instead(j)} END)"
    )
    return f"(CASE WHEN {_is(j, 'string')} THEN {string} ELSE 'null'::json END)"


def _whole(j: str) -> str:
    """`schema.types.voice_profile._whole`: a number rounded half to even (as Python's
    ``round`` of a float, and PostgreSQL's of a double), null outside 32 bits or for any
    other kind of value."""
    n = f"CAST({j} AS numeric)"
    rounded = (
        f"(CASE WHEN {n} = trunc({n}) THEN {n} WHEN abs({n}) < 1e-300 THEN 0"
        f" ELSE CAST(round(CAST({n} AS double precision)) AS numeric) END)"
    )
    number = (
        f"(CASE WHEN abs({rounded}) < {_INT_RANGE} THEN to_json(CAST({rounded} AS integer))"
        " ELSE 'null'::json END)"
    )
    return f"(CASE WHEN {_is(j, 'number')} THEN {number} ELSE 'null'::json END)"


# --- the types ------------------------------------------------------------------------------

_ROOT = "'{}'"  # `#>> '{}'`: a jsonb string's text


def _float_or(default: float) -> Value:
    literal = _json_literal(float(default))
    return lambda j: f"(CASE WHEN {j} IS NULL THEN {literal} ELSE {_python_float(j)} END)"


def _linked_url(j: str) -> str:
    """A stored URL, null or a string (`Settings.public_link` of it)."""
    linked = f"to_json({public_link(f'({j} #>> {_ROOT})')})"
    return _nullable(j, _guarded(_is(j, "string"), linked, j))


#: `AudioSettings.from_json`: ``DEFAULT_AUDIO_SETTINGS | data``, then ``float``/``str``.
_AUDIO_SETTINGS: dict[str, Value] = {
    "speed": _float_or(DEFAULT_AUDIO_SETTINGS["speed"]),
    "pitch": _float_or(DEFAULT_AUDIO_SETTINGS["pitch"]),
    "volume": _float_or(DEFAULT_AUDIO_SETTINGS["volume"]),
    "language": lambda j: _text(j, str(DEFAULT_AUDIO_SETTINGS["language"])),
}

#: `VoiceEngineSettings.from_json`.
_ENGINE_SETTINGS: dict[str, Value] = {
    "voice": _short_text,
    "variant": _short_text,
    "rate": _whole,
    "pitch": _whole,
    "volume": _whole,
}

#: `Publication.from_json`.
_PUBLICATION: dict[str, Value] = {"target": _text, "url": _linked_url, "publishedAt": _moment}


@dataclass(frozen=True)
class Element:
    """A jsonb value being read: the value, and its 1-based position in its list (if any)."""

    value: str
    position: str = "NULL"

    def member(self, key: str) -> str:
        if not key.isidentifier():
            raise Fallback(f"member {key!r}")
        return f"({self.value} -> '{key}')"


#: (field name, its nodes, the element) -> the field's JSON.
FieldValue = Callable[[str, list[FieldNode], Element], str]


def _members(table: dict[str, Value]) -> FieldValue:
    return lambda name, nodes, element: table[name](element.member(name))


class Documents:
    """The SQL of the JSON-backed fields of `Video` and `VoiceProfile`, for `Builder.field`."""

    def __init__(self, builder: Builder) -> None:
        self.builder = builder

    def field(self, type_name: str, name: str, column: str, nodes: list[FieldNode]) -> str:
        data = Element(column)
        match type_name, name:
            case "Video", "audioSettings":
                return self.settings("AudioSettings", data, nodes, _members(_AUDIO_SETTINGS))
            case "VoiceProfile", "engineSettings":
                return self.settings("VoiceEngineSettings", data, nodes, _members(_ENGINE_SETTINGS))
            case "Video", "script":
                return self.script(data, nodes)
            case "Video", "captionTracks":
                return self.listed(data, "CaptionTrack", nodes, self.caption_track, kept=_has_file)
            case "Video", "publishedTo":
                return self.listed(data, "Publication", nodes, _members(_PUBLICATION))
        raise Fallback(f"{type_name}.{name}")

    def object(
        self, type_name: str, nodes: Sequence[FieldNode], value: FieldValue, element: Element
    ) -> str:
        """``json_build_object`` of the fields selected on ``type_name`` from ``element``."""
        graphql_type = self.builder.schema.get_type(type_name)
        assert isinstance(graphql_type, GraphQLObjectType)
        sets = [node.selection_set for node in nodes if node.selection_set]
        parts: list[str] = []
        for key, field_nodes in self.builder.collect(graphql_type, sets).items():
            name = field_nodes[0].name.value
            sql = (
                text_literal(type_name)
                if name == "__typename"
                else value(name, field_nodes, element)
            )
            parts += [key_literal(key), sql]
        return f"json_build_object({', '.join(parts)})"

    def settings(
        self, type_name: str, data: Element, nodes: Sequence[FieldNode], value: FieldValue
    ) -> str:
        """An object read as ``data or {}`` (JSON null: every default); anything but an object
        or null resolves instead."""
        body = self.object(type_name, nodes, value, data)
        return _guarded(f"jsonb_typeof({data.value}) IN ('object', 'null')", body, data.value)

    def listed(
        self,
        data: Element,
        type_name: str,
        nodes: Sequence[FieldNode],
        value: FieldValue,
        *,
        kept: Callable[[str], str] | None = None,
        null: str = "'[]'::json",
    ) -> str:
        """A list read as ``data or []`` (JSON null: ``null``), each element an object of
        ``type_name``; an element of any other kind resolves instead, and ``kept`` (a boolean
        over an object element) filters them."""
        alias = self.builder.alias()
        element = Element(f"{alias}.e", f"{alias}.p")
        body = self.object(type_name, nodes, value, element)
        is_object = _is(element.value, "object")
        checked = f"(CASE WHEN {is_object} THEN {body} ELSE {resolve_instead(element.value)} END)"
        condition = f"(CASE WHEN {is_object} THEN {kept(element.value) if kept else 'true'}"
        condition += f" ELSE {resolve_instead(element.value)} IS NULL END)"
        aggregated = (
            f"(SELECT COALESCE(json_agg({checked} ORDER BY {element.position})"
            f" FILTER (WHERE {condition}), '[]'::json)"
            f" FROM jsonb_array_elements({data.value}) WITH ORDINALITY AS {alias}(e, p))"
        )
        return (
            f"(CASE WHEN {_is(data.value, 'null')} THEN {null}"
            f" WHEN {_is(data.value, 'array')} THEN {aggregated}"
            f" ELSE {resolve_instead(data.value)} END)"
        )

    def caption_track(self, name: str, nodes: list[FieldNode], element: Element) -> str:
        """`CaptionTrack.from_json` and `CaptionTrack.url`: a stored ``path`` signed now, else
        the stored ``url`` made absolute."""
        if name != "url":
            return _text(element.member(name))
        path, url = element.member("path"), element.member("url")
        signed = f"to_json({media_url(f'({path} #>> {_ROOT})')})"
        linked = f"to_json({public_link(f'({url} #>> {_ROOT})')})"
        return (
            f"(CASE WHEN {path} IS NOT NULL THEN {_guarded(_is(path, 'string'), signed, path)}"
            f" ELSE {_guarded(_is(url, 'string'), linked, url)} END)"
        )

    def script(self, data: Element, nodes: Sequence[FieldNode]) -> str:
        """`Script.from_json`: null for none; ``segments`` absent is an empty list."""

        def segments(name: str, field_nodes: list[FieldNode], script: Element) -> str:
            member = script.member("segments")
            null = resolve_instead(member)  # `enumerate(None)` fails on the resolver path
            listed = self.listed(Element(member), "ScriptSegment", field_nodes, _segment, null=null)
            return f"(CASE WHEN {member} IS NULL THEN '[]'::json ELSE {listed} END)"

        body = self.object("Script", nodes, segments, data)
        return (
            f"(CASE WHEN {data.value} IS NULL OR {_is(data.value, 'null')} THEN 'null'::json"
            f" WHEN {_is(data.value, 'object')} THEN {body} ELSE {resolve_instead(data.value)} END)"
        )


def _segment(name: str, nodes: list[FieldNode], element: Element) -> str:
    """`Script.from_json`'s segment: ``index`` defaults to the position (from 0), ``text`` to
    the empty string; ``startMs``/``endMs`` are passed through as GraphQL Ints."""
    j = element.member(name)
    if name == "index":
        position = f"to_json({element.position} - 1)"
        return f"(CASE WHEN {j} IS NULL THEN {position} ELSE {_python_int(j, truncate=True)} END)"
    if name == "text":
        return _text(j, "")
    return _nullable(j, _python_int(j, truncate=False))


def _has_file(element: str) -> str:
    return f"({element} ? 'path' OR {element} ? 'url')"

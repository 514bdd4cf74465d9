"""Hypothesis strategies for GraphQL requests, written by walking the schema itself.

`graphql_requests` draws whole requests for the fuzz test (``tests/schema/test_fuzz.py``):
queries, mutations and now and then a subscription (refused over HTTP), with fields, aliases,
inline and named fragments, ``@include``/``@skip``, arguments written inline or as variables,
nested selections down to a drawn depth, and a few documents broken on purpose. `raw_requests`
draws what a client could send that is not a GraphQL request at all (bad JSON, JSON nested
deeper than anything parses, odd content types, multipart uploads with any bytes).

Values are usually right for their type and now and then wrong: null for a non-null, a string for
an `Int`, an `Int` past 32 bits or past a float, an unknown enum value, a variable declared with
another type or left out. About a third of the documents make such mistakes, which GraphQL itself
refuses; the others reach the resolvers. What goes into values (odd strings, real and tampered
IDs and cursors, words a field's name calls for) is in `tests.support.fuzz_values`.

Every "go wrong" choice is the top of an integer range, so that Hypothesis shrinks a failure
toward a valid request and reports the smallest one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from graphql import (
    GraphQLArgument,
    GraphQLBoolean,
    GraphQLError,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    get_named_type,
    is_composite_type,
    is_enum_type,
    is_input_object_type,
    is_interface_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
    is_required_argument,
    is_required_input_field,
    parse,
)
from hypothesis import strategies as st

from tests.support.fuzz_values import (
    CONTENT_TYPES,
    ID_TYPES,
    INVALID_SELECTIONS,
    JSON_BODIES,
    OTHER_TYPE_NAMES,
    PUNCTUATION,
    SCALARS,
    SHORT_TEXT,
    STRING_HINTS,
    TEXT,
    WRONG_VALUES,
    EnumValue,
    Seeds,
    chance,
    cursor_values,
    global_ids,
    mostly,
    nested_json,
)


@dataclass(frozen=True)
class FuzzRequest:
    """One GraphQL request, as a client sends it over HTTP."""

    query: str
    variables: Any  # usually a dict; sometimes not, on purpose
    operation_name: str | None
    method: str  # "POST" (JSON body) or "GET" (query parameters)
    is_mutation: bool  # whether the document asks for a mutation (it may still be refused)

    def json_body(self) -> str:
        """The body as JSON, ASCII-escaped: lone surrogates travel as ``\\udXXX`` escapes and
        NaN/Infinity as Python's json writes them (the server's parser reads both)."""
        body: dict[str, Any] = {"query": self.query, "variables": self.variables}
        if self.operation_name is not None:
            body["operationName"] = self.operation_name
        return json.dumps(body)

    def query_params(self) -> dict[str, str]:
        params = {"query": _escape_surrogates(self.query), "variables": json.dumps(self.variables)}
        if self.operation_name is not None:
            params["operationName"] = _escape_surrogates(self.operation_name)
        return params


@dataclass(frozen=True)
class RawRequest:
    """A request to ``/graphql`` that is not necessarily GraphQL at all."""

    method: str
    headers: Mapping[str, str]
    content: bytes | None = None
    params: Mapping[str, str] | None = None
    files: Mapping[str, tuple[str, bytes, str]] | None = None
    data: Mapping[str, str] | None = None


# --- the entry points ---------------------------------------------------------------------


@st.composite
def graphql_requests(draw: st.DrawFn, schema: GraphQLSchema, seeds: Seeds) -> FuzzRequest:
    kind = draw(st.sampled_from(("query", "query", "query", "mutation", "mutation", "other")))
    if kind == "other":
        kind = draw(st.sampled_from(("broken", "broken", "broken", "subscription")))
    if kind == "broken":
        return _broken(draw, schema, seeds)
    writer = _DocumentWriter(draw, schema, seeds)
    document, operation_name = writer.document(kind)
    variables: Any = writer.variables
    if writer.mistake(20):
        variables = draw(st.sampled_from(([], "{}", 1, None, [writer.variables])))
    if operation_name is not None and writer.mistake(15):
        operation_name = draw(st.sampled_from(("Other", "", operation_name.lower())))
    # GET only for short requests (a URL has a length limit; a body has a larger one).
    short = len(document) + len(json.dumps(variables)) < 4000
    return FuzzRequest(
        query=document,
        variables=variables,
        operation_name=operation_name,
        method="GET" if short and chance(draw, 8) else "POST",
        is_mutation=kind == "mutation",
    )


@st.composite
def raw_requests(draw: st.DrawFn) -> RawRequest:
    kind = draw(st.sampled_from(("json", "bytes", "multipart", "form", "get", "nested")))
    csrf = {} if chance(draw, 5) else {"Apollo-Require-Preflight": "true"}
    if kind == "nested":
        return _nested_json_request(draw, csrf)
    if kind == "json":
        content = json.dumps(draw(JSON_BODIES)).encode()
        return RawRequest("POST", {"Content-Type": "application/json"}, content=content)
    if kind == "bytes":
        content_type = draw(CONTENT_TYPES)
        headers = {"Content-Type": content_type} if content_type else {}
        return RawRequest("POST", headers | csrf, content=draw(st.binary(max_size=200)))
    if kind == "form":
        data = draw(st.dictionaries(st.sampled_from(("query", "variables", "x")), SHORT_TEXT))
        return RawRequest("POST", csrf, data=data)
    if kind == "get":
        params = draw(
            st.dictionaries(
                st.sampled_from(("query", "variables", "operationName", "extensions")),
                st.one_of(SHORT_TEXT, JSON_BODIES.map(json.dumps)),
            )
        )
        return RawRequest("GET", {}, params={k: _escape_surrogates(v) for k, v in params.items()})
    return _multipart_upload(draw, csrf)


# --- documents ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Variable:
    name: str


@dataclass(frozen=True)
class _Position:
    """Where a value goes: an argument of a field, or a field of an input type."""

    owner: str  # the field's name (`video`, `deleteVoiceProfile`) or the input type's
    name: str

    def id_type(self) -> str | None:
        """The type of object an ID here names, guessed from the names (`videoId`, `jobId`,
        `UpdateVideoInput.id`, `restoreVideo(id:)`); None for `node`/`nodes` (any)."""
        words = self.name if self.name != "id" else self.owner
        for fragment, type_name in ID_TYPES:
            if fragment in words.lower():
                return type_name
        return None


@dataclass
class _DocumentWriter:
    draw: st.DrawFn
    schema: GraphQLSchema
    seeds: Seeds
    variables: dict[str, Any] = field(default_factory=dict)
    _definitions: list[str] = field(default_factory=list)
    _fragments: list[str] = field(default_factory=list)
    _aliases: int = 0
    max_depth: int = 0
    #: Whether this document makes mistakes GraphQL itself refuses (wrong types, unknown
    #: fields, missing arguments …); about a third do, the others reach the resolvers.
    careless: bool = False

    def __post_init__(self) -> None:
        self.careless = chance(self.draw, 3)

    def mistake(self, one_in: int) -> bool:
        """True about once in ``one_in`` draws when careless; shrinks to False."""
        return self.careless and chance(self.draw, one_in)

    def document(self, kind: str) -> tuple[str, str | None]:
        root = {
            "query": self.schema.query_type,
            "mutation": self.schema.mutation_type,
            "subscription": self.schema.subscription_type,
        }[kind]
        assert root is not None
        # Mostly shallow; now and then past the depth limit (12).
        self.max_depth = self.draw(st.sampled_from((2, 3, 4, 5, 6, 14)))
        names = sorted(root.fields)
        count = 1 if kind != "query" else self.draw(st.integers(1, 3))
        if kind == "mutation" and chance(self.draw, 4):
            count = 2
        chosen = self._some(names, count)
        fields = " ".join(self._field(root, name, depth=0) for name in chosen)
        operation_name = None if chance(self.draw, 3) else "Fuzz"
        header = kind if operation_name is None else f"{kind} {operation_name}"
        if self._definitions:
            header += "(" + ", ".join(self._definitions) + ")"
        elif operation_name is None and kind == "query" and chance(self.draw, 2):
            header = ""  # the shorthand `{ … }`
        return " ".join([f"{header} {{ {fields} }}".strip(), *self._fragments]), operation_name

    # --- selections ---

    def _some(self, names: list[str], count: int) -> list[str]:
        """``count`` different names, each drawn from those left (a unique list would reject
        its duplicates, and Hypothesis would count those examples as invalid)."""
        left, chosen = list(names), []
        for _ in range(min(count, len(left))):
            chosen.append(left.pop(self.draw(st.integers(0, len(left) - 1))))
        return chosen

    def _selection_set(self, parent: GraphQLNamedType, depth: int) -> str:
        assert isinstance(parent, GraphQLObjectType | GraphQLInterfaceType)
        names = sorted(parent.fields)
        if depth >= self.max_depth:
            leaves = [
                name for name in names if is_leaf_type(get_named_type(parent.fields[name].type))
            ]
            names = leaves or names
        # Fewer fields further down (one below depth 4: a deep document is a chain), so that a
        # document stays a few hundred tokens.
        most = min(3 if depth < 2 else 2 if depth < 4 else 1, len(names))
        chosen = self._some(names, self.draw(st.integers(1, most)))
        parts = [self._field(parent, name, depth) for name in chosen]
        if chance(self.draw, 10):
            parts.append("__typename")
        if is_interface_type(parent) and not chance(self.draw, 4):
            possible = self.schema.get_possible_types(parent)
            target = self.draw(st.sampled_from(sorted(possible, key=lambda t: t.name)))
            parts.append(f"... on {target.name} {self._selection_set(target, depth)}")
        if is_object_type(parent) and chance(self.draw, 10):
            parts.append(self._fragment_spread(parent, depth))
        if self.mistake(20):
            parts.append(self.draw(INVALID_SELECTIONS))
        return "{ " + " ".join(parts) + " }"

    def _fragment_spread(self, parent: GraphQLObjectType, depth: int) -> str:
        name = f"F{len(self._fragments)}"
        self._fragments.append("")  # the name is taken before the body draws more fragments
        index = len(self._fragments) - 1
        self._fragments[index] = f"fragment {name} on {parent.name} " + self._selection_set(
            parent, depth
        )
        return f"...{name}"

    def _field(
        self, parent: GraphQLObjectType | GraphQLInterfaceType, name: str, depth: int
    ) -> str:
        definition: GraphQLField = parent.fields[name]
        alias = ""
        if chance(self.draw, 6):
            if self.mistake(4):  # may clash with another field of the same name
                alias = self.draw(st.sampled_from(sorted(parent.fields))) + ": "
            else:
                self._aliases += 1
                alias = f"a{self._aliases}: "
        arguments = self._arguments(name, definition.args)
        directive = self._directive() if chance(self.draw, 15) else ""
        named = get_named_type(definition.type)
        selection = ""
        if is_composite_type(named):
            selection = " " + self._selection_set(named, depth + 1)
        return f"{alias}{name}{arguments}{directive}{selection}"

    def _arguments(self, field_name: str, arguments: dict[str, GraphQLArgument]) -> str:
        parts = []
        for name, argument in arguments.items():
            required = is_required_argument(argument)
            wanted = not self.mistake(12) if required else chance(self.draw, 3)
            if wanted:
                at = _Position(field_name, name)
                value = self._value(argument.type, hint=at, variables_allowed=True)
                parts.append(f"{name}: {_literal(value)}")
        if self.mistake(20):
            parts.append("unknownArgument: 1")
        return "(" + ", ".join(parts) + ")" if parts else ""

    def _directive(self) -> str:
        name = self.draw(st.sampled_from(("include", "skip")))
        at = _Position(name, "if")
        value = self._value(GraphQLNonNull(GraphQLBoolean), hint=at, variables_allowed=True)
        return f" @{name}(if: {_literal(value)})"

    # --- values ---

    def _value(self, type_: GraphQLInputType, *, hint: _Position, variables_allowed: bool) -> Any:
        """A value for a position of ``type_``: a tree of Python values, `EnumValue`s and (when
        ``variables_allowed``) `_Variable`s."""
        if variables_allowed and chance(self.draw, 4):
            return self._variable(type_, hint)
        if self.mistake(6):
            return self.draw(WRONG_VALUES)
        if is_non_null_type(type_):
            type_ = type_.of_type
        elif chance(self.draw, 10):
            return None
        if is_list_type(type_):
            if chance(self.draw, 6):  # a single value stands for a list of one
                return self._value(type_.of_type, hint=hint, variables_allowed=variables_allowed)
            size = self.draw(st.integers(0, 3))
            return [
                self._value(type_.of_type, hint=hint, variables_allowed=variables_allowed)
                for _ in range(size)
            ]
        if is_input_object_type(type_):
            return self._input_object(type_, variables_allowed)
        if is_enum_type(type_):
            return EnumValue(self.draw(st.sampled_from(sorted(type_.values))))
        return self.draw(self._scalar(get_named_type(type_).name, hint))

    def _input_object(self, type_: GraphQLInputObjectType, variables_allowed: bool) -> Any:
        value: dict[str, Any] = {}
        for name, input_field in type_.fields.items():
            required = is_required_input_field(input_field)
            wanted = not self.mistake(12) if required else chance(self.draw, 2)
            if wanted:
                value[name] = self._value(
                    input_field.type,
                    hint=_Position(type_.name, name),
                    variables_allowed=variables_allowed,
                )
        if self.mistake(15):
            value["unknownField"] = 1
        return value

    def _variable(self, type_: GraphQLInputType, hint: _Position) -> _Variable:
        name = f"v{len(self._definitions)}"
        declared = str(type_)
        if self.mistake(8):
            declared = self.draw(OTHER_TYPE_NAMES)
        default = ""
        if chance(self.draw, 10):
            default = " = " + _literal(self._value(type_, hint=hint, variables_allowed=False))
        self._definitions.append(f"${name}: {declared}{default}")
        left_out = self.mistake(8) if is_non_null_type(type_) else chance(self.draw, 10)
        if not left_out:
            self.variables[name] = _json_value(
                self._value(type_, hint=hint, variables_allowed=False)
            )
        return _Variable(name)

    def _scalar(self, name: str, at: _Position) -> st.SearchStrategy[Any]:
        if name == "ID":
            return global_ids(self.seeds, at.id_type())
        if name == "String":
            if at.name in ("after", "before"):
                return mostly(cursor_values(self.seeds), TEXT, one_in=4)
            if at.name in STRING_HINTS:
                return mostly(st.sampled_from(STRING_HINTS[at.name]), TEXT, one_in=3)
            return TEXT
        if name == "Float" and at.name in ("speed", "pitch", "volume"):
            return mostly(st.floats(0.5, 2.0), SCALARS["Float"], one_in=3)
        if name == "Int" and at.name in ("first", "last"):
            return mostly(st.integers(0, 5), SCALARS["Int"], one_in=3)
        return SCALARS.get(name, TEXT)


# --- broken documents and uploads ---------------------------------------------------------


def _broken(draw: st.DrawFn, schema: GraphQLSchema, seeds: Seeds) -> FuzzRequest:
    kind = draw(st.sampled_from(("query", "mutation")))
    document, _ = _DocumentWriter(draw, schema, seeds).document(kind)
    how = draw(st.sampled_from(("truncate", "delete", "insert", "replace")))
    at = draw(st.integers(0, len(document)))
    if how == "truncate":
        document = document[:at]
    elif how == "delete":
        document = document[:at] + document[at + 1 :]
    elif how == "insert":
        document = document[:at] + draw(PUNCTUATION) + document[at:]
    else:
        document = draw(st.one_of(TEXT, st.text(PUNCTUATION, max_size=30)))
    return FuzzRequest(document, {}, None, "POST", _asks_for_mutation(document))


def _asks_for_mutation(document: str) -> bool:
    try:
        parsed = parse(document)
    except (GraphQLError, RecursionError):
        return False
    return any(
        isinstance(definition, OperationDefinitionNode)
        and definition.operation is OperationType.MUTATION
        for definition in parsed.definitions
    )


def _multipart_upload(draw: st.DrawFn, csrf: dict[str, str]) -> RawRequest:
    operations = {
        "query": "mutation($input: CreateVoiceProfileInput!) { createVoiceProfile(input: $input)"
        " { voiceProfile { id name sampleUrl } } }",
        "variables": {"input": {"name": draw(SHORT_TEXT) or "Narrator", "sample": None}},
    }
    target = draw(
        st.sampled_from(
            ("variables.input.sample",) * 3
            + ("variables.input.name", "variables.nope", "variables", "query", "x.y")
        )
    )
    file_map: Any = {"0": [target]}
    if chance(draw, 10):
        file_map = draw(st.sampled_from(({}, [], {"0": "variables.input.sample"}, {"1": [target]})))
    prefix = draw(st.sampled_from((b"", b"RIFF", b"RIFF\x24\x00\x00\x00WAVEfmt ", b"OggS", b"ID3")))
    prefix += draw(st.sampled_from((b"", b"fLaC", b"\xff\xfb", b"\xff\xf3\x90")))
    data = {
        "operations": json.dumps(operations) if not chance(draw, 15) else draw(SHORT_TEXT),
        "map": json.dumps(file_map),
    }
    files = {"0": ("take.wav", prefix + draw(st.binary(max_size=120)), "audio/wav")}
    return RawRequest("POST", csrf, files=files, data=data)


#: The longest URL httpx sends.
_MAX_URL_CHARACTERS = 60_000


def _nested_json_request(draw: st.DrawFn, csrf: dict[str, str]) -> RawRequest:
    """JSON nested a drawn depth (`nested_json`) wherever the server parses a client's JSON: a
    POST body or a value in it, a GET's ``variables``/``extensions``, a multipart field."""
    nested = draw(nested_json())
    where = draw(st.sampled_from(("body", "variables", "extensions", "operations", "map")))
    query = '"query": "{ __typename }"'
    if where == "body":
        return RawRequest("POST", {"Content-Type": "application/json"}, content=nested.encode())
    if where in ("operations", "map"):
        fields = {"operations": "{" + query + "}", "map": "{}"} | {where: nested}
        files = {"0": ("take.wav", b"RIFF", "audio/wav")}
        return RawRequest("POST", csrf, files=files, data=fields)
    parameter = '{"a": ' + nested + "}"
    if chance(draw, 2) and len(quote(parameter)) < _MAX_URL_CHARACTERS:
        return RawRequest("GET", {}, params={"query": "{ __typename }", where: parameter})
    content = ("{" + query + f', "{where}": {{"a": {nested}}}}}').encode()
    return RawRequest("POST", {"Content-Type": "application/json"}, content=content)


def _escape_surrogates(text: str) -> str:
    """Query parameters are UTF-8, which cannot carry a lone surrogate: it goes as ``?``."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _literal(value: Any) -> str:
    """``value`` written as a GraphQL literal."""
    if isinstance(value, _Variable):
        return f"${value.name}"
    if isinstance(value, EnumValue):
        return value.name
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"  # not a GraphQL number: an enum value where a Float is expected
        return repr(value) if math.isfinite(value) else ("1e999" if value > 0 else "-1e999")
    if isinstance(value, str):
        return json.dumps(value)  # JSON's escapes are GraphQL's
    if isinstance(value, list):
        return "[" + ", ".join(_literal(item) for item in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{key}: {_literal(item)}" for key, item in value.items()) + "}"


def _json_value(value: Any) -> Any:
    """``value`` as a variable's JSON (enums are their names)."""
    if isinstance(value, EnumValue):
        return value.name
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    return value

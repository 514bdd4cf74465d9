"""Hypothesis strategy for query documents within what the compiled read path translates.

The fields come from the live schema, kept to those `schema.compiled` has a translation for
(a field whose source declaration is a column or a global id, the relations and connections the
plan names, ``__typename``), so that most drawn documents compile and the differential test
compares the two paths on them; arguments are drawn from real ids and cursors, some of another
user, deleted, or of another ordering, whose answers (errors included) must match too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from graphql import (
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    get_named_type,
)
from hypothesis import strategies as st

from schema.mapping import Column, Computed, GlobalId, SignedMedia, mapping_of
from schema.types.generation_job import GenerationJob
from schema.types.user import User
from schema.types.video import Video
from schema.types.voice_profile import VoiceProfile

_MAPPED = {
    "User": mapping_of(User),
    "Video": mapping_of(Video),
    "GenerationJob": mapping_of(GenerationJob),
    "VoiceProfile": mapping_of(VoiceProfile),
}
_OBJECT_FIELDS = {
    "Video": ("owner", "voiceProfile", "latestJob", "jobs"),
    "VoiceProfile": ("owner",),
    "GenerationJob": ("video",),
    "User": ("videos", "voiceProfiles"),
}
_ROOTS = (
    "viewer",
    "video",
    "generationJob",
    "node",
    "nodes",
    "videos",
    "voiceProfiles",
    "__typename",
)
#: The JSON-backed types (`schema.compiled.documents`): every field compiles.
_DOCUMENT_TYPES = frozenset(
    {
        "AudioSettings",
        "Script",
        "ScriptSegment",
        "CaptionTrack",
        "Publication",
        "VoiceEngineSettings",
    }
)
_NODE_TYPES = ("User", "Video", "GenerationJob", "VoiceProfile")
_CONNECTION_FIELDS = ("edges", "pageInfo", "totalCount", "__typename")
_EDGE_FIELDS = ("node", "cursor", "__typename")
_PAGE_SIZES = (None, 0, 1, 2, 3, 5, 100)
_MOMENTS = ("2026-03-01T12:00:00+00:00", "2026-03-01T12:01:00.001", "2026-03-01T13:00:00+01:00")
_SEARCHES = ("plain", "about pl", "ünï", "", "%", "x" * 201, 'Quote "this"')


def compilable_fields(graphql_type: GraphQLObjectType) -> list[str]:
    """The fields of ``graphql_type`` the compiled path translates."""
    name = graphql_type.name
    if name == "Query":
        return list(_ROOTS)
    if name.endswith("Connection"):
        return list(_CONNECTION_FIELDS)
    if name.endswith("Edge"):
        return list(_EDGE_FIELDS)
    if name == "PageInfo":
        return [*graphql_type.fields, "__typename"]
    if name in _DOCUMENT_TYPES:
        return [*graphql_type.fields, "__typename"]
    mapped = _MAPPED[name]
    compiled = Column | GlobalId | SignedMedia | Computed
    plain = [f for f, source in mapped.items() if isinstance(source, compiled)]
    return [*plain, *_OBJECT_FIELDS[name], "__typename"]


class _Writer:
    def __init__(
        self,
        draw: st.DrawFn,
        schema: GraphQLSchema,
        ids: Mapping[str, Sequence[str]],
        cursors: Sequence[str],
    ) -> None:
        self.draw, self.schema, self.ids, self.cursors = draw, schema, ids, cursors
        self.variables: dict[str, tuple[str, Any]] = {}  # name -> (type, value)
        self.aliases = 0

    def value(self, type_name: str, value: Any) -> str:
        """``value`` inline, or as a variable now and then."""
        if self.draw(st.booleans()):
            name = f"v{len(self.variables)}"
            self.variables[name] = (type_name, value)
            return f"${name}"
        return json.dumps(value) if not isinstance(value, dict) else _object_literal(value)

    def selection(self, graphql_type: GraphQLObjectType, depth: int) -> str:
        names = compilable_fields(graphql_type)
        if depth >= 4:  # leaves only
            names = [n for n in names if _is_leaf(graphql_type, n)] or ["__typename"]
        chosen = self.draw(st.lists(st.sampled_from(names), min_size=1, max_size=4, unique=True))
        parts = [self.field(graphql_type, name, depth) for name in chosen]
        if self.draw(st.integers(0, 4)) == 0:  # a fragment around some of them
            parts = [f"... on {graphql_type.name} {{ {' '.join(parts)} }}"]
        elif self.draw(st.integers(0, 6)) == 0:
            parts = [f"... {{ {' '.join(parts)} }}"]
        return "{ " + " ".join(parts) + " }"

    def field(self, parent: GraphQLObjectType, name: str, depth: int) -> str:
        self.aliases += 1
        alias = f"a{self.aliases}: " if self.draw(st.integers(0, 3)) == 0 else ""
        directive = ""
        if self.draw(st.integers(0, 4)) == 0:
            which = self.draw(st.sampled_from(("include", "skip")))
            directive = f" @{which}(if: {self.value('Boolean!', self.draw(st.booleans()))})"
        if name == "__typename":
            return f"{alias}__typename{directive}"
        definition = parent.fields[name]
        arguments = self.arguments(parent.name, name, definition)
        named = get_named_type(definition.type)
        sub = ""
        if isinstance(named, GraphQLObjectType):
            sub = " " + self.selection(named, depth + 1)
        elif isinstance(named, GraphQLInterfaceType):  # `node`: fragments on its types
            types = self.draw(st.lists(st.sampled_from(_NODE_TYPES), max_size=2, unique=True))
            parts = ["id", "__typename"][: self.draw(st.integers(1, 2))]
            for type_name in types:
                object_type = self.schema.get_type(type_name)
                assert isinstance(object_type, GraphQLObjectType)
                parts.append(f"... on {type_name} {self.selection(object_type, depth + 1)}")
            sub = " { " + " ".join(parts) + " }"
        return f"{alias}{name}{arguments}{directive}{sub}"

    def arguments(self, parent: str, name: str, definition: GraphQLField) -> str:
        given: list[str] = []
        if name in ("video", "generationJob", "node"):
            type_name = {"video": "Video", "generationJob": "GenerationJob"}.get(name)
            # Mostly the viewer's (those compile); now and then anyone's, or no id at all.
            visible = self.ids["visible"] if type_name is None else self.ids[type_name][:1]
            choices = [*(i for v in self.ids.values() for i in v), "bm90IGFuIGlk"]
            pool = visible if self.draw(st.integers(0, 3)) else choices
            global_id = self.draw(st.sampled_from(pool))
            given.append(f"id: {self.value('ID!', global_id)}")
        elif name == "nodes":
            # Mostly the viewer's, repeats and all; now and then anyone's (an error at its index).
            choices = [*(i for v in self.ids.values() for i in v), "bm90IGFuIGlk"]
            pool = self.ids["visible"] if self.draw(st.integers(0, 3)) else choices
            global_ids = self.draw(st.lists(st.sampled_from(pool), max_size=4))
            given.append(f"ids: {self.value('[ID!]!', global_ids)}")
        elif "first" in definition.args:
            size = self.draw(st.sampled_from(_PAGE_SIZES))
            backward = self.draw(st.integers(0, 3)) == 0
            if size is not None:
                given.append(f"{'last' if backward else 'first'}: {self.value('Int', size)}")
            if self.cursors and self.draw(st.integers(0, 3)) == 0:
                cursor = self.draw(st.sampled_from(list(self.cursors)))
                given.append(f"{'before' if backward else 'after'}: {self.value('String', cursor)}")
            if "orderBy" in definition.args and self.draw(st.booleans()):
                order = {
                    "field": self.draw(st.sampled_from(("CREATED_AT", "UPDATED_AT", "TITLE"))),
                    "direction": self.draw(st.sampled_from(("ASC", "DESC"))),
                }
                given.append(f"orderBy: {self.value('VideoOrder', order)}")
            if "filter" in definition.args and self.draw(st.integers(0, 2)) == 0:
                given.append(f"filter: {self.value('VideoFilter', self.video_filter())}")
        return f"({', '.join(given)})" if given else ""

    def video_filter(self) -> dict[str, Any]:
        drawn: dict[str, Any] = {}
        if self.draw(st.booleans()):
            statuses = ("DRAFT", "READY", "ERROR", "QUEUED")
            drawn["status"] = self.draw(st.lists(st.sampled_from(statuses), max_size=3))
        if self.draw(st.integers(0, 2)) == 0:
            drawn["inputType"] = self.draw(st.sampled_from(("URL", "DESCRIPTION")))
        if self.draw(st.integers(0, 2)) == 0:
            drawn["createdAfter"] = self.draw(st.sampled_from(_MOMENTS))
        if self.draw(st.integers(0, 2)) == 0:
            drawn["createdBefore"] = self.draw(st.sampled_from(_MOMENTS))
        if self.draw(st.integers(0, 2)) == 0:
            drawn["search"] = self.draw(st.sampled_from(_SEARCHES))
        return drawn


@st.composite
def compilable_requests(
    draw: st.DrawFn,
    schema: GraphQLSchema,
    ids: Mapping[str, Sequence[str]],
    cursors: Sequence[str],
) -> tuple[str, dict[str, Any]]:
    """(document, variables) of one query within the compiled path's fields."""
    writer = _Writer(draw, schema, ids, cursors)
    query = schema.query_type
    assert query is not None
    body = writer.selection(query, 0)
    declared = ", ".join(f"${name}: {type_}" for name, (type_, _) in writer.variables.items())
    header = f"query Drawn({declared})" if declared else "query Drawn"
    return f"{header} {body}", {name: value for name, (_, value) in writer.variables.items()}


def _is_leaf(graphql_type: GraphQLObjectType, name: str) -> bool:
    if name == "__typename":
        return True
    return not isinstance(get_named_type(graphql_type.fields[name].type), GraphQLObjectType)


_ENUM_KEYS = ("field", "direction", "inputType", "status")


def _object_literal(value: dict[str, Any]) -> str:
    """An input object as a GraphQL literal: enum values (and lists of them) unquoted."""

    def one(key: str, item: Any) -> str:
        if isinstance(item, list):
            return "[" + ", ".join(one(key, element) for element in item) + "]"
        return str(item) if key in _ENUM_KEYS else json.dumps(item)

    return "{" + ", ".join(f"{key}: {one(key, item)}" for key, item in value.items()) + "}"

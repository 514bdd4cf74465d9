"""graphql-core calls the declared fields' own functions, not Strawberry's wrapper around them."""

from __future__ import annotations

from graphql import GraphQLObjectType
from strawberry.schema.schema_converter import GraphQLCoreConverter

from schema import create_schema
from schema.mapping import Column, Computed, GlobalId, mapping_of
from schema.plain_fields import plain_resolver
from schema.types.generation_job import GenerationJob
from schema.types.user import User
from schema.types.video import Video
from schema.types.voice_profile import VoiceProfile


def test_declared_fields_resolve_without_strawberrys_wrapper() -> None:
    graphql_schema = create_schema()._schema
    graphql_types: list[type] = [User, Video, VoiceProfile, GenerationJob]
    for graphql_type in graphql_types:
        name = graphql_type.__strawberry_definition__.name  # type: ignore[attr-defined]
        object_type = graphql_schema.type_map[name]
        assert isinstance(object_type, GraphQLObjectType)
        for field_name, source in mapping_of(graphql_type).items():
            graphql_field = object_type.fields[field_name]
            field = graphql_field.extensions[GraphQLCoreConverter.DEFINITION_BACKREF]
            if isinstance(source, Column | Computed | GlobalId):
                assert graphql_field.resolve is plain_resolver(field), (name, field_name)
            else:  # loaders and signed URLs keep Strawberry's resolver (and its `Info`)
                assert plain_resolver(field) is None, (name, field_name)


def test_fields_without_resolvers_read_the_attribute() -> None:
    edge = create_schema()._schema.type_map["VideoEdge"]
    assert isinstance(edge, GraphQLObjectType)
    node = object()
    source = type("Edge", (), {"node": node, "encode_cursor": lambda _self: "c"})()
    assert edge.fields["node"].resolve is not None
    assert edge.fields["node"].resolve(source, None) is node
    assert edge.fields["cursor"].resolve is not None
    assert edge.fields["cursor"].resolve(source, None) == "c"  # made when asked for

"""The GraphQL↔database mapping is declared for every field, and every declaration is real."""

from __future__ import annotations

import pytest

from db import models
from schema.loaders import Loaders, SessionGate
from schema.mapping import (
    Column,
    Computed,
    ConnectionOf,
    GlobalId,
    Relation,
    SignedMedia,
    mapping_of,
)
from schema.types.audit_event import AuditEvent
from schema.types.generation_job import GenerationJob
from schema.types.user import User
from schema.types.video import Video
from schema.types.voice_profile import VoiceProfile

TYPES: list[tuple[type, type[models.Base]]] = [
    (User, models.User),
    (Video, models.Video),
    (VoiceProfile, models.VoiceProfile),
    (GenerationJob, models.GenerationJob),
    (AuditEvent, models.AuditEvent),
]

# Fields with no declared source: derived in ways no `schema.mapping` helper declares.
NOT_STORED_YET = {
    # previewUrl is a path derived from several columns (the preview's recipe), signed per
    # request: no `schema.mapping` helper declares it.
    "VoiceProfile": {"previewUrl"},
    # Derived from two columns (object_type, object_id): no single source to declare.
    "AuditEvent": {"objectId"},
}


@pytest.mark.parametrize(("graphql_type", "model"), TYPES)
def test_every_field_declares_its_source(graphql_type: type, model: type[models.Base]) -> None:
    name = graphql_type.__strawberry_definition__.name  # type: ignore[attr-defined]
    undeclared = {field for field, source in mapping_of(graphql_type).items() if source is None}
    assert undeclared == NOT_STORED_YET.get(name, set())


@pytest.mark.parametrize(("graphql_type", "model"), TYPES)
async def test_declared_sources_exist(graphql_type: type, model: type[models.Base]) -> None:
    loaders = set(dir(Loaders(SessionGate(None), viewer_id=None)))  # type: ignore[arg-type]
    for field, source in mapping_of(graphql_type).items():
        match source:
            case (
                Column(attribute)
                | Computed(attribute, _)
                | GlobalId(attribute, _)
                | SignedMedia(attribute)
            ):
                assert attribute.class_ is model, field
            case Relation(local, _, loader):
                assert local.class_ is model, field
                assert loader in loaders, field
            case ConnectionOf(local, _, loader, count_loader):
                assert local.class_ is model, field
                assert {loader, count_loader} <= loaders, field
            case None:
                pass


def test_global_id_names_are_the_graphql_type_names() -> None:
    for graphql_type, _ in TYPES:
        source = mapping_of(graphql_type)["id"]
        assert isinstance(source, GlobalId)
        assert source.type_name == graphql_type.__strawberry_definition__.name  # type: ignore[attr-defined]


def test_every_node_type_can_be_loaded_by_its_global_id() -> None:
    from schema import NODE_TYPES
    from schema.queries import _NODE_TYPES

    names = {node_type.__strawberry_definition__.name for node_type in NODE_TYPES}  # type: ignore[attr-defined]
    assert set(_NODE_TYPES) == names

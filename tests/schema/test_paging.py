"""Every connection field is made one way (`schema.paging`): the same four arguments, checked
the same way, and pages that a cursor of their own continues."""

from __future__ import annotations

import inspect
from datetime import datetime
from typing import Any

import pytest
from graphql import GraphQLObjectType, Undefined, get_named_type
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.schema.schema_converter import GraphQLCoreConverter

from db import models
from db.queries.audit import record_event
from db.queries.videos import VideoFilter as VideoFilterQuery
from db.queries.videos import VideoOrder as VideoOrderQuery
from schema import create_schema
from schema.paging import Pages, paged
from schema.relay import ConnectionArgs, to_global_id
from schema.types.audit_event import AUDIT_EVENT_PAGES
from schema.types.generation_job import JOB_PAGES
from schema.types.video import video_pages
from schema.types.voice_profile import VOICE_PROFILE_PAGES
from tests.factories import make_job, make_user, make_video, make_voice_profile
from tests.support.graphql import GraphQLClient

# Each connection field, as a document taking the page's arguments and the video's id.
CONNECTIONS = {
    "Query.videos": ("{ videos(%s) { %s } }", ["videos"]),
    "Query.voiceProfiles": ("{ voiceProfiles(%s) { %s } }", ["voiceProfiles"]),
    "User.videos": ("{ viewer { videos(%s) { %s } } }", ["viewer", "videos"]),
    "User.voiceProfiles": ("{ viewer { voiceProfiles(%s) { %s } } }", ["viewer", "voiceProfiles"]),
    "User.auditEvents": ("{ viewer { auditEvents(%s) { %s } } }", ["viewer", "auditEvents"]),
    "Video.jobs": ('{ video(id: "$video") { jobs(%s) { %s } } }', ["video", "jobs"]),
}
PAGE = "totalCount edges { cursor } pageInfo { hasNextPage hasPreviousPage endCursor }"


@pytest.fixture
async def owner_rows(session: AsyncSession) -> tuple[models.User, models.Video]:
    """An owner with three of everything a connection lists (three videos, their first with
    three jobs, three profiles, three audit events)."""
    owner = await make_user(session)
    videos = [await make_video(session, owner, title=f"Video {n}") for n in range(3)]
    for _ in range(3):
        await make_job(session, videos[0], status=models.JobStatus.SUCCEEDED, attempt=1)
        await make_voice_profile(session, owner)
        await record_event(
            session,
            actor_id=owner.id,
            action="video.update",
            object_type="Video",
            object_id=videos[0].id,
            request_id=None,
        )
    return owner, videos[0]


def test_every_connection_field_is_made_by_paged() -> None:
    """The four arguments come first, in SPEC §4's order and without defaults, on every field
    of a connection type, and each such field's resolver is a `paged` one (its arguments are
    checked by `ConnectionArgs.page_request`)."""
    graphql_schema = create_schema()._schema
    found = set()
    for graphql_type in graphql_schema.type_map.values():
        if not isinstance(graphql_type, GraphQLObjectType):
            continue
        for name, graphql_field in graphql_type.fields.items():
            if not get_named_type(graphql_field.type).name.endswith("Connection"):
                continue
            found.add(f"{graphql_type.name}.{name}")
            arguments = [
                (name, str(argument.type), argument.default_value)
                for name, argument in list(graphql_field.args.items())[:4]
            ]
            assert arguments == [
                ("first", "Int", Undefined),
                ("after", "String", Undefined),
                ("last", "Int", Undefined),
                ("before", "String", Undefined),
            ]
            field = graphql_field.extensions[GraphQLCoreConverter.DEFINITION_BACKREF]
            assert field.base_resolver is not None
            written = inspect.unwrap(field.base_resolver.wrapped_func)
            assert list(inspect.signature(written).parameters)[2] == "page"
    assert found == set(CONNECTIONS)


def test_a_resolver_without_a_page_is_refused() -> None:
    async def listing(self: object, info: object, first: int) -> None:
        return None

    with pytest.raises(TypeError, match="page"):
        paged(listing)


async def test_paged_hands_the_resolver_one_connection_args() -> None:
    seen: list[tuple[object, ConnectionArgs, str]] = []

    async def listing(self: object, info: object, page: ConnectionArgs, order: str = "") -> str:
        seen.append((self, page, order))
        return "page"

    resolver = paged(listing)
    assert list(inspect.signature(resolver).parameters) == [
        "self",
        "info",
        "first",
        "after",
        "last",
        "before",
        "order",
    ]
    assert await resolver("root", None, first=2, after="c", order="asc") == "page"
    assert seen == [("root", ConnectionArgs(first=2, after="c"), "asc")]


@pytest.mark.parametrize(
    ("pages", "ordering", "value_type"),
    [
        (JOB_PAGES, "jobs:QUEUED_AT:DESC", datetime),
        (VOICE_PROFILE_PAGES, "voice_profiles:CREATED_AT:DESC", datetime),
        (AUDIT_EVENT_PAGES, "audit:CREATED_AT:DESC", datetime),
        *(
            (
                video_pages(VideoFilterQuery(), VideoOrderQuery(field, descending)),
                f"videos:{field}:{'DESC' if descending else 'ASC'}",
                str if field == "TITLE" else datetime,
            )
            for field in ("CREATED_AT", "UPDATED_AT", "TITLE")
            for descending in (True, False)
        ),
    ],
)
def test_cursors_are_signed_for_the_orderings_they_always_were(
    pages: Pages[Any, Any], ordering: str, value_type: type
) -> None:
    """A cursor a client holds stays good across a release: its ordering names the list, the
    column and the direction as they always did (and as the compiled path signs them,
    `schema.compiled.connections`)."""
    codec = pages.codec(b"k")
    assert (codec.ordering, codec.value_type) == (ordering, value_type)


@pytest.mark.parametrize("name", CONNECTIONS)
@pytest.mark.parametrize(
    ("arguments", "field"),
    [("first: 101", "first"), ("last: -1", "last"), ('after: "garbage"', "after")],
    ids=["first-over-100", "last-negative", "bad-cursor"],
)
async def test_every_connection_checks_its_arguments(
    graphql: GraphQLClient,
    owner_rows: tuple[models.User, models.Video],
    name: str,
    arguments: str,
    field: str,
) -> None:
    owner, video = owner_rows
    response = await graphql.as_user(owner.id).execute(_document(name, video, arguments))
    assert response.codes == ["BAD_USER_INPUT"]
    assert response.errors[0]["extensions"]["field"] == field


@pytest.mark.parametrize("name", CONNECTIONS)
async def test_every_connection_pages_on_with_its_own_cursor(
    graphql: GraphQLClient, owner_rows: tuple[models.User, models.Video], name: str
) -> None:
    owner, video = owner_rows
    viewer = graphql.as_user(owner.id)
    first = _connection(name, (await viewer.execute(_document(name, video, "first: 2"))).ok())
    assert (first["totalCount"], len(first["edges"])) == (3, 2)
    assert first["pageInfo"] == {
        "hasNextPage": True,
        "hasPreviousPage": False,
        "endCursor": first["edges"][-1]["cursor"],
    }
    after = f'first: 2, after: "{first["pageInfo"]["endCursor"]}"'
    rest = _connection(name, (await viewer.execute(_document(name, video, after))).ok())
    assert (rest["totalCount"], len(rest["edges"])) == (3, 1)
    assert rest["pageInfo"]["hasNextPage"] is False
    assert rest["pageInfo"]["hasPreviousPage"] is True


def _document(name: str, video: models.Video, arguments: str) -> str:
    template, _ = CONNECTIONS[name]
    document = template % (arguments, PAGE)
    return document.replace("$video", to_global_id("Video", video.id))


def _connection(name: str, data: dict[str, Any]) -> dict[str, Any]:
    for key in CONNECTIONS[name][1]:
        data = data[key]
    return data

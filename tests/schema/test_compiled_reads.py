"""The compiled read path answers exactly what the resolvers answer (schema/compiled/)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from app import media
from app.main import create_app
from app.settings import Settings, load_settings
from db import models
from db.models import JobStage, JobStatus, User, VideoStatus
from schema import create_schema
from schema.compiled import PlanCache
from schema.compiled.plan import Plan
from schema.compiled.sql import MEDIA_PARAMETERS, iso_datetime, json_ascii, media_parameters
from schema.compiled.sql import global_id as global_id_sql
from schema.compiled.sql import media_url as media_url_sql
from schema.relay import from_global_id, to_global_id
from tests.factories import make_job, make_user, make_video, make_voice_profile
from tests.schema.test_batching import NESTED_QUERY
from tests.support.compiled_fuzz import compilable_requests
from tests.support.graphql import GraphQLClient, count_statements

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
#: At most one active job per video (a unique index): the last of four.
JOB_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.RUNNING)


class Paths:
    """One app per path, on the test's sessions: the same data seen both ways."""

    def __init__(self, compiled: GraphQLClient, resolver: GraphQLClient) -> None:
        self.compiled, self.resolver = compiled, resolver
        self.served: list[str] = []  # the access log's `path` of each request, in order

    def emit(self, record: logging.LogRecord) -> None:
        self.served.append(getattr(record, "path", "?"))

    async def both(
        self, user: User | None, query: str, variables: dict[str, Any] | None = None
    ) -> tuple[str, str]:
        answers = []
        for client in (self.compiled, self.resolver):
            signed = client if user is None else client.as_user(user.id)
            headers = {"Content-Type": "application/json"}
            if signed.token is not None:
                headers["Authorization"] = f"Bearer {signed.token}"
            body = {"query": query, "variables": variables or {}}
            response = await signed.http.post("/graphql", json=body, headers=headers)
            answers.append(json.dumps(response.json(), sort_keys=True))
        return answers[0], answers[1]

    async def same(
        self,
        user: User | None,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        path: str = "compiled",
    ) -> Any:
        """Both answers, equal after key-order normalisation; ``path``: what served the first."""
        self.served.clear()
        compiled, resolver = await self.both(user, query, variables)
        assert compiled == resolver, query
        assert self.served == [path, "resolver"], query
        return json.loads(resolver)


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    """The module's `app` (and `graphql`) has the compiled path on whatever the environment says:
    CI also runs the read tests with ``STUDIO_COMPILED_READS=false``."""
    return load_settings(database_url=settings.database_url, compiled_reads=True)


@pytest.fixture(autouse=True)
def media_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Media URLs expire at a moment rounded up to a step: both paths sign with one clock, so a
    step that ends between the two answers cannot tell them apart."""
    expiry, moment = media.expiry, time.time()
    monkeypatch.setattr(media, "expiry", lambda settings, now=None: expiry(settings, now=moment))


@pytest.fixture
async def paths(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Paths]:
    clients = []
    async with contextlib.AsyncExitStack() as stack:
        for compiled in (True, False):
            app_settings = load_settings(
                database_url=settings.database_url, compiled_reads=compiled
            )
            app = create_app(app_settings, sessionmaker=sessionmaker)
            await stack.enter_async_context(app.router.lifespan_context(app))
            http = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://studio.test"
                )
            )
            clients.append(GraphQLClient(http, app_settings))
        paths = Paths(*clients)
        handler = logging.Handler()
        handler.emit = paths.emit  # type: ignore[method-assign]
        access = logging.getLogger("studio.access")
        access.addHandler(handler)
        try:
            yield paths
        finally:
            access.removeHandler(handler)


@dataclass
class World:
    owner: User
    other: User
    ids: dict[str, str]
    cursors: list[str] = field(default_factory=list)


#: Rendered and not: server names, and a path that needs quoting (spaces, `?`, `&`, accents).
_MEDIA: list[dict[str, Any]] = [
    {"media_path": "videos/a/render.mp4", "poster_path": "videos/a/poster.png", "duration_ms": 1},
    {},
    {"media_path": "odd/ü name?&#%.mp4", "poster_path": None, "duration_ms": 9},
]


#: What the writers of the JSON columns store, and what the readers tolerate (missing keys, ints
#: for floats, tracks without a file, JSON null).
_DOCUMENTS: list[dict[str, Any]] = [
    {},
    {
        "audio_settings": {"speed": 1.25, "pitch": 2, "volume": 0.0001, "language": "de"},
        "script": {
            "segments": [
                {"index": 0, "text": 'Hallo "Welt"', "startMs": 0, "endMs": 1500},
                {"text": "ünï ✓", "startMs": 1500.0},
                {"index": 7.9},
            ]
        },
        "caption_tracks": [
            {"language": "de", "format": "vtt", "path": "videos/a/captions.vtt"},
            {"language": "en", "format": "srt", "url": "/published/x.srt"},
            {"language": "fr", "format": "vtt", "url": "https://cdn.example/f.vtt"},
            {"language": "xx", "format": "none"},
        ],
        "published_to": [
            {
                "target": "local",
                "url": "/published/a.mp4",
                "publishedAt": "2026-03-01T12:00:00+00:00",
            },
            {"target": "s3", "url": None, "publishedAt": "2026-03-01T12:00:00.123456+01:00"},
        ],
    },
    {"audio_settings": {"speed": 1e-05}, "script": {}, "caption_tracks": None, "published_to": []},
]


async def make_world(session: AsyncSession) -> World:
    """Two users; videos with equal timestamps, unicode and quoting titles, nulls, soft-deleted
    videos and voice profiles, jobs with and without stages, microseconds and whole seconds."""
    owner = await make_user(session, display_name='Zoë "Z" Ünal', avatar_url=None)
    other = await make_user(session, display_name=None)
    voice = await make_voice_profile(
        session, owner, name="Erzähler", created_at=T0, sample_path="voice-samples/x/a1.wav"
    )
    gone_voice = await make_voice_profile(
        session, owner, name="Gone", created_at=T0, deleted_at=T0 + timedelta(days=1)
    )
    await make_voice_profile(
        session,
        owner,
        name="Plain",
        language=None,
        description="d",
        engine_settings={"voice": "en-us", "variant": " ", "rate": 180.5, "pitch": 2.5, "x": 1},
    )
    titles = ["Ünïcödé ✓ 日本語", 'Quote "this" \\ back', "plain", "plain", "Émoji 🎬", "z"]
    videos = []
    for index, title in enumerate(titles):
        stamp = T0 + timedelta(minutes=index // 2, microseconds=(index % 3) * 1000)
        videos.append(
            await make_video(
                session,
                owner,
                title=title,
                description=None if index % 2 else f"About {title}",
                created_at=stamp,
                updated_at=stamp,
                voice_profile_id=(voice.id, gone_voice.id, None)[index % 3],
                status=(VideoStatus.DRAFT, VideoStatus.READY, VideoStatus.ERROR)[index % 3],
                error_message="Broke\nline" if index == 2 else None,
                **_MEDIA[index % len(_MEDIA)],
                **_DOCUMENTS[index % len(_DOCUMENTS)],
            )
        )
    deleted = await make_video(session, owner, title="Deleted", deleted_at=T0)
    await make_job(session, deleted, queued_at=T0)
    for index, video in enumerate(videos[:4]):
        for n in range(index + 1):
            await make_job(
                session,
                video,
                queued_at=T0 + timedelta(seconds=n // 2),
                status=JOB_STATUSES[n],
                stage=JobStage.VOICE if n % 2 else None,
                started_at=T0 + timedelta(seconds=1, microseconds=n) if n else None,
                execution_time_ms=n * 10 if n else None,
                error="x" if n == 2 else None,
            )
    theirs = await make_video(session, other, title="Theirs")
    their_job = await make_job(session, theirs)
    await make_voice_profile(session, other, name="Theirs")
    await session.commit()
    first_job = await make_job(session, videos[0], queued_at=T0 - timedelta(days=1))
    await session.commit()
    ids: dict[str, str] = {
        "video": to_global_id("Video", videos[0].id),
        "video3": to_global_id("Video", videos[3].id),
        "deleted": to_global_id("Video", deleted.id),
        "theirs": to_global_id("Video", theirs.id),
        "job": to_global_id("GenerationJob", first_job.id),
        "theirJob": to_global_id("GenerationJob", their_job.id),
        "voice": to_global_id("VoiceProfile", voice.id),
        "goneVoice": to_global_id("VoiceProfile", gone_voice.id),
        "me": to_global_id("User", owner.id),
        "them": to_global_id("User", other.id),
        "event": to_global_id("AuditEvent", owner.id),
    }
    return World(owner, other, ids)


@pytest.fixture
async def world(session: AsyncSession) -> World:
    return await make_world(session)


VIDEO_FIELDS = """id __typename title description inputType sourceUrl status progress
  errorMessage"""
JOB_FIELDS = """id status stage progress attempt error queuedAt startedAt finishedAt
  executionTimeMs"""
VOICE_FIELDS = "id name description language createdAt updatedAt"
USER_FIELDS = "id email displayName avatarUrl createdAt updatedAt"

#: Queries answered by the compiled path: (document, variables).
COMPILED: list[tuple[str, dict[str, Any]]] = [
    ("{ __typename viewer { " + USER_FIELDS + " __typename } }", {}),
    ("{ me: viewer { mail: email ID: id } again: viewer { email } }", {}),
    ("query($id: ID!) { video(id: $id) { " + VIDEO_FIELDS + " } }", {"id": "video"}),
    ('{ video(id: "@video3") { title owner { email } voiceProfile { name } } }', {}),
    (
        "query($id: ID!) { video(id: $id) { latestJob { " + JOB_FIELDS + " } "
        "jobs(first: 5) { totalCount pageInfo { hasNextPage hasPreviousPage startCursor "
        "endCursor } edges { cursor node { id queuedAt video { id title } } } } } }",
        {"id": "video3"},
    ),
    *(
        (
            "query($id: ID!) { node(id: $id) { __typename id ... on Video { title "
            "owner { email } } ... on GenerationJob { status video { id } } "
            "... on VoiceProfile { name owner { id } } ... on User { email } } }",
            {"id": name},
        )
        for name in ("video", "job", "voice", "me")
    ),
    ("{ nodes(ids: []) { id } }", {}),
    ("query($id: ID!) { video(id: $id) { audioSettings { speed } } }", {"id": "video"}),
    ("{ videos { edges { node { publishedTo { url } } } } }", {}),  # links, no media URL
    (
        "{ videos { edges { node { audioSettings { __typename speed pitch volume language } "
        "script { __typename segments { __typename index text startMs endMs } "
        "again: segments { text } } captionTracks { language format url } "
        "publishedTo { target url publishedAt __typename } } } } "
        "voiceProfiles { edges { node { engineSettings { voice variant rate pitch volume } } } } }",
        {},
    ),
    ("query($id: ID!) { video(id: $id) { title mediaUrl posterUrl } }", {"id": "video"}),
    ("query($id: ID!) { node(id: $id) { ... on Video { mediaUrl } } }", {"id": "video3"}),
    (
        "{ videos { edges { node { mediaUrl durationMs posterUrl voiceProfile { sampleUrl } } } }"
        " voiceProfiles { edges { node { sampleUrl } } } }",
        {},
    ),
    (
        "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id ... on Video { title "
        "latestJob { status } } ... on GenerationJob { status video { id } } "
        "... on VoiceProfile { name } ... on User { email videos(first: 1) { totalCount } } } "
        "again: nodes(ids: $ids) { id } }",
        {"ids": ["voice", "video", "job", "me", "video", "video3"]},
    ),
    (
        "query($id: ID!) { generationJob(id: $id) { " + JOB_FIELDS + " video { title } } }",
        {"id": "job"},
    ),
    (
        "fragment V on Video { title ... on Node { id } }\n"
        "fragment U on User { email videos(first: 2) { edges { node { ...V } } } }\n"
        "query Q { viewer { ...U ... on User { displayName } ... { avatarUrl } } }",
        {},
    ),
    (
        "query($yes: Boolean!, $no: Boolean = false) { viewer { email @include(if: $yes) "
        "id @skip(if: $yes) displayName @include(if: $no) createdAt @skip(if: false) "
        "updatedAt @include(if: true) @skip(if: $no) } }",
        {"yes": True},
    ),
    (
        "query($yes: Boolean!) { viewer { email @include(if: $yes) id @skip(if: $yes) } }",
        {"yes": False},
    ),
    (
        "{ viewer { voiceProfiles { totalCount edges { cursor node { "
        + VOICE_FIELDS
        + " owner { id } } } pageInfo { hasNextPage hasPreviousPage } } } }",
        {},
    ),
    (
        "{ voiceProfiles(first: 1) { edges { node { name } } "
        "pageInfo { hasNextPage endCursor } } }",
        {},
    ),
    ("{ voiceProfiles(last: 1) { edges { node { name } } pageInfo { hasPreviousPage } } }", {}),
    (
        "{ videos(first: 0) { totalCount edges { cursor } pageInfo { hasNextPage startCursor } } }",
        {},
    ),
    ("{ videos(first: 100) { edges { cursor node { " + VIDEO_FIELDS + " } } } }", {}),
    (
        "{ videos(last: 3) { edges { cursor node { title } } pageInfo { hasNextPage "
        "hasPreviousPage startCursor endCursor } } }",
        {},
    ),
    (
        "{ videos(filter: {status: [READY, ERROR, READY]}) { totalCount "
        "edges { node { title } } } }",
        {},
    ),
    ("{ videos(filter: {status: []}) { totalCount } }", {}),
    (
        "query($f: VideoFilter) { videos(filter: $f, first: 2) { totalCount "
        "edges { cursor node { title } } pageInfo { hasNextPage endCursor } } }",
        {
            "f": {
                "inputType": "DESCRIPTION",
                "createdAfter": "2026-03-01T12:01:00+00:00",
                "createdBefore": "2026-03-01T14:02:00+01:00",
            }
        },
    ),
    (
        "query($f: VideoFilter) { videos(filter: $f) { totalCount edges { node { title } } } }",
        {"f": {"search": "plain"}},
    ),
    (
        "query($f: VideoFilter) { videos(filter: $f) { totalCount edges { node { title } } } }",
        {"f": {"search": "émoji ünï"}},
    ),
    ("query($f: VideoFilter) { videos(filter: $f) { totalCount } }", {"f": {"search": "  %  "}}),
    (
        "query($f: VideoFilter) { videos(filter: $f) { totalCount } }",
        {"f": {"createdAfter": "2026-03-01T12:01:00"}},
    ),
    ('{ viewer { videos(filter: {search: "about", status: [DRAFT]}) { totalCount } } }', {}),
    (
        "{ videos(orderBy: {field: TITLE, direction: ASC}) { edges { node { title } } "
        "pageInfo { hasNextPage } totalCount } }",
        {},
    ),
    (
        "query($o: VideoOrder) { videos(orderBy: $o, first: 3) { edges { cursor node { title } } "
        "pageInfo { hasNextPage endCursor } } }",
        {"o": {"field": "UPDATED_AT", "direction": "ASC"}},
    ),
    (
        "{ videos(first: 4) { edges { node { __typename title jobs(last: 2) { "
        "__typename totalCount edges { __typename cursor node { status } } "
        "pageInfo { __typename hasNextPage hasPreviousPage } } } } } }",
        {},
    ),
    (
        "query($n: Int) { viewer { videos(first: $n) { totalCount edges { node { title "
        "owner { email videos(first: 1) { totalCount } } voiceProfile { name owner { id } } "
        "latestJob { status progress } jobs(first: 5) { totalCount pageInfo { hasNextPage "
        "endCursor } edges { node { status queuedAt video { title } } } } } } } } }",
        {"n": 10},
    ),
]


def _variables(world: World, variables: dict[str, Any]) -> dict[str, Any]:
    def given(value: Any) -> Any:
        if isinstance(value, list):
            return [given(item) for item in value]
        return world.ids.get(value, value) if isinstance(value, str) else value

    return {name: given(value) for name, value in variables.items()}


def _document(world: World, query: str) -> str:
    for name, global_id in world.ids.items():
        query = query.replace(f'"@{name}"', json.dumps(global_id))
    return query


@pytest.mark.parametrize(("query", "variables"), COMPILED)
async def test_compiled_answers_as_the_resolvers_do(
    paths: Paths, world: World, query: str, variables: dict[str, Any]
) -> None:
    await paths.same(world.owner, _document(world, query), _variables(world, variables))


#: Queries (or variables) the compiled path leaves to the resolvers; the answers still match.
RESOLVED: list[tuple[str, dict[str, Any]]] = [
    ("query($id: ID!) { video(id: $id) { title } }", {"id": "theirs"}),  # NOT_FOUND
    ("query($id: ID!) { video(id: $id) { title } }", {"id": "deleted"}),
    ("query($id: ID!) { video(id: $id) { title } }", {"id": "job"}),  # another type's id
    ("query($id: ID!) { video(id: $id) { title } }", {"id": "not an id"}),
    ("query($id: ID!) { generationJob(id: $id) { status } }", {"id": "theirJob"}),
    ("query($id: ID!) { node(id: $id) { id } }", {"id": "theirs"}),
    ("query($id: ID!) { node(id: $id) { id } }", {"id": "goneVoice"}),
    ("query($id: ID!) { node(id: $id) { id } }", {"id": "them"}),
    ("query($id: ID!) { node(id: $id) { id } }", {"id": "event"}),  # not compiled
    ("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ["video", "theirs"]}),
    ("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ["goneVoice"]}),
    ("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ["me", "event"]}),
    ("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ["job", "not an id"]}),
    ("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ["video"] * 101}),
    ("{ viewer { auditEvents { totalCount } } }", {}),
    ("{ voiceProfiles { edges { node { previewUrl engineSettings { rate } } } } }", {}),
    ('{ videos(filter: {search: "%s"}) { totalCount } }' % ("x" * 201), {}),
    ("{ videos(first: 101) { totalCount } }", {}),
    ("{ videos(first: 1, last: 1) { totalCount } }", {}),
    ('{ videos(after: "junk") { totalCount } }', {}),
    ("{ __schema { queryType { name } } }", {}),
    ("{ viewer { email @deprecated } }", {}),  # validation refuses it, both ways
    ("query($n: Int) { videos(first: $n) { totalCount } }", {"n": "ten"}),
]


@pytest.mark.parametrize(("query", "variables"), RESOLVED)
async def test_what_does_not_compile_is_resolved(
    paths: Paths, world: World, query: str, variables: dict[str, Any]
) -> None:
    await paths.same(
        world.owner,
        _document(world, query),
        _variables(world, variables),
        path="resolver",
    )


async def test_another_users_ids_answer_the_same(paths: Paths, world: World) -> None:
    """Theirs is NOT_FOUND to the owner; the owner's is NOT_FOUND to them (both resolved)."""
    query = "query($id: ID!) { video(id: $id) { title } }"
    answer = await paths.same(world.owner, query, {"id": world.ids["theirs"]}, path="resolver")
    assert answer["data"] == {"video": None}
    assert [e["extensions"]["code"] for e in answer["errors"]] == ["NOT_FOUND"]
    mine = await paths.same(world.other, query, {"id": world.ids["video"]}, path="resolver")
    assert mine["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    theirs = await paths.same(world.other, query, {"id": world.ids["theirs"]})
    assert theirs["data"] == {"video": {"title": "Theirs"}}


async def test_signed_out_reads_are_resolved(paths: Paths, world: World) -> None:
    answer = await paths.same(None, "{ viewer { email } }", path="resolver")
    assert answer == {"data": {"viewer": None}}


PAGE = """query($first: Int, $after: String, $last: Int, $before: String, $o: VideoOrder) {
  videos(first: $first, after: $after, last: $last, before: $before, orderBy: $o) {
    edges { cursor node { title createdAt } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""


@pytest.mark.parametrize("field", ["CREATED_AT", "UPDATED_AT"])
@pytest.mark.parametrize("direction", ["ASC", "DESC"])
async def test_cursors_page_through_both_ways(
    paths: Paths, world: World, field: str, direction: str
) -> None:
    """Cursors the compiled path signs are the resolvers' own: walk forward page by page
    (equal timestamps straddle pages), then back from the end."""
    order = {"field": field, "direction": direction}
    seen: list[str] = []
    after = None
    for _ in range(10):
        page = await paths.same(world.owner, PAGE, {"first": 2, "after": after, "o": order})
        videos = page["data"]["videos"]
        seen += [edge["node"]["title"] for edge in videos["edges"]]
        if not videos["pageInfo"]["hasNextPage"]:
            break
        after = videos["pageInfo"]["endCursor"]
    assert len(seen) == 6
    before = after
    for _ in range(10):
        page = await paths.same(world.owner, PAGE, {"last": 2, "before": before, "o": order})
        videos = page["data"]["videos"]
        if not videos["pageInfo"]["hasPreviousPage"]:
            break
        before = videos["pageInfo"]["startCursor"]


@pytest.mark.parametrize("direction", ["ASC", "DESC"])
async def test_title_cursors_page_through_both_ways(
    paths: Paths, world: World, direction: str
) -> None:
    """A TITLE cursor carries the title, escaped as `json.dumps` escapes it: the world's titles
    have quotes, a backslash, accents, CJK and an emoji past U+FFFF, and two are equal."""
    order = {"field": "TITLE", "direction": direction}
    seen: list[str] = []
    after = None
    for _ in range(10):
        page = await paths.same(world.owner, PAGE, {"first": 1, "after": after, "o": order})
        videos = page["data"]["videos"]
        seen += [edge["node"]["title"] for edge in videos["edges"]]
        if not videos["pageInfo"]["hasNextPage"]:
            break
        after = videos["pageInfo"]["endCursor"]
    assert len(seen) == 6
    before = after
    for _ in range(10):
        page = await paths.same(world.owner, PAGE, {"last": 2, "before": before, "o": order})
        if not page["data"]["videos"]["pageInfo"]["hasPreviousPage"]:
            break
        before = page["data"]["videos"]["pageInfo"]["startCursor"]


@pytest.mark.parametrize("public_url", [None, "https://studio.example/base"])
async def test_sql_media_urls_are_pythons(
    session: AsyncSession, settings: Settings, public_url: str | None
) -> None:
    """`media_url` against `Context.media_url` (`app.media.signed_url` under `public_link`) on
    server-made names and on paths that need quoting: spaces, reserved and non-ASCII
    characters, astral ones, and the characters `quote` leaves alone."""
    signing = load_settings(database_url=settings.database_url, public_url=public_url)
    rng = random.Random(5)
    alphabet = [chr(c) for c in range(32, 127)] + ["ü", "日", "\U0001f3ac", "\u00a0", "\t"]
    paths = ["videos/a/render.mp4", "", "~x/y-z_.wav", "a b/ü?&#%+=.mp4"] + [
        "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 16))) for _ in range(200)
    ]
    rows = await session.execute(
        text(f"SELECT {media_url_sql('x')} FROM unnest(CAST(:p AS text[])) AS x"),  # noqa: S608
        {"p": paths, **media_parameters(signing)},
    )
    expected = [signing.public_link(media.signed_url(signing, p, viewer_id=None)) for p in paths]
    assert [row[0] for row in rows] == expected
    # What `Plan` looks for in a statement to bind them is what they are.
    assert set(media_parameters(signing)) == MEDIA_PARAMETERS


async def test_media_urls_answer_alike_under_a_public_url(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], world: World
) -> None:
    """``STUDIO_PUBLIC_URL`` makes media URLs absolute on both paths."""
    query = "{ videos { edges { node { mediaUrl posterUrl } } } }"
    answers = []
    served: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: served.append(getattr(record, "path", "?"))  # type: ignore[method-assign]
    access = logging.getLogger("studio.access")
    access.addHandler(handler)
    try:
        for compiled in (True, False):
            configured = load_settings(
                database_url=settings.database_url,
                compiled_reads=compiled,
                public_url="https://studio.example",
            )
            app = create_app(configured, sessionmaker=sessionmaker)
            transport = httpx.ASGITransport(app=app)
            async with (
                app.router.lifespan_context(app),
                httpx.AsyncClient(transport=transport, base_url="http://studio.test") as http,
            ):
                client = GraphQLClient(http, configured).as_user(world.owner.id)
                answers.append((await client.execute(query)).ok())
    finally:
        access.removeHandler(handler)
    assert served == ["compiled", "resolver"]
    assert answers[0] == answers[1]
    urls = [edge["node"]["mediaUrl"] for edge in answers[0]["videos"]["edges"]]
    assert any(url and url.startswith("https://studio.example/media/") for url in urls)


async def test_sql_json_escaping_is_pythons(session: AsyncSession) -> None:
    """`json_ascii` against `json.dumps` on text PostgreSQL can hold: every control character,
    quotes and backslashes, DEL, Latin-1, the BMP's edges and astral characters (surrogate
    pairs), in random strings."""
    rng = random.Random(11)
    alphabet = [chr(c) for c in range(1, 160)] + ["\u00e9", "\u65e5", "\uffff", "\U0001f3ac"]
    alphabet += [chr(0x10000), chr(0x10FFFF), chr(0xD7FF), chr(0xE000), "\u2028"]
    samples = ["", "plain", '"', "\\", "\x7f"] + [
        "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 12))) for _ in range(300)
    ]
    rows = await session.execute(
        text(f"SELECT {json_ascii('x')} FROM unnest(CAST(:s AS text[])) AS x"),  # noqa: S608
        {"s": samples},
    )
    assert [row[0] for row in rows] == [json.dumps(sample)[1:-1] for sample in samples]


@pytest.mark.parametrize("n", [1, 10, 100])
async def test_a_compiled_read_is_one_statement(
    n: int, session: AsyncSession, connection: AsyncConnection, graphql: GraphQLClient
) -> None:
    """The nested query of test_batching.py, which the resolvers answer with 7 statements
    counted the same way (neither path sends transaction statements of its own: the session's
    BEGIN is implicit, and the test's savepoints are left out)."""
    user = await make_user(session)
    voices = [await make_voice_profile(session, user, name=f"Voice {i}") for i in range(3)]
    for index in range(n):
        video = await make_video(
            session, user, title=f"Video {index}", voice_profile_id=voices[index % 3].id
        )
        for status in JOB_STATUSES[: index % 4]:
            await make_job(session, video, status=status, attempt=1)
    await session.commit()
    with count_statements(connection) as counter:
        data = (await graphql.as_user(user.id).execute(NESTED_QUERY, {"n": n})).ok()
    assert len(data["viewer"]["videos"]["edges"]) == n
    assert counter.count == 1, "\n\n".join(counter.statements)


async def test_the_setting_turns_the_compiled_path_off(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    world: World,
) -> None:
    monkeypatch.setenv("STUDIO_COMPILED_READS", "false")
    off = load_settings(database_url=settings.database_url)
    assert off.compiled_reads is False
    app = create_app(off, sessionmaker=sessionmaker)
    served: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: served.append(getattr(record, "path", "?"))  # type: ignore[method-assign]
    access = logging.getLogger("studio.access")
    access.addHandler(handler)
    transport = httpx.ASGITransport(app=app)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://studio.test") as http,
        ):
            client = GraphQLClient(http, off).as_user(world.owner.id)
            for query, variables in COMPILED:
                document, values = _document(world, query), _variables(world, variables)
                assert (await client.execute(document, values)).errors == []
    finally:
        access.removeHandler(handler)
    assert served == ["resolver"] * len(COMPILED)


# --- differential fuzzing ---------------------------------------------------------------------

DIFF_EXAMPLES = 100
_ON_DEMAND = os.environ.get("STUDIO_FUZZ_EXAMPLES")
SCHEMA = create_schema()._schema


async def _cursors(paths: Paths, world: World) -> list[str]:
    """Real cursors of every ordering, and of the jobs and voice profiles."""
    client = paths.resolver.as_user(world.owner.id)
    found: list[str] = []
    for order_field in ("CREATED_AT", "UPDATED_AT", "TITLE"):
        order = {"field": order_field, "direction": "ASC"}
        page = (await client.execute(PAGE, {"first": 3, "o": order})).ok()
        found += [edge["cursor"] for edge in page["videos"]["edges"]]
    more = """{ voiceProfiles { edges { cursor } }
      videos { edges { node { jobs { edges { cursor } } } } } }"""
    data = (await client.execute(more)).ok()
    found += [edge["cursor"] for edge in data["voiceProfiles"]["edges"]][:2]
    for video in data["videos"]["edges"]:
        found += [edge["cursor"] for edge in video["node"]["jobs"]["edges"]][:1]
    return found


@settings(
    max_examples=int(_ON_DEMAND) if _ON_DEMAND else DIFF_EXAMPLES,
    derandomize=not _ON_DEMAND,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_drawn_queries_answer_the_same_both_ways(
    data: st.DataObject, paths: Paths, world: World
) -> None:
    if not world.cursors:
        world.cursors = await _cursors(paths, world)
    ids = {
        "Video": [world.ids[k] for k in ("video", "video3", "deleted", "theirs")],
        "GenerationJob": [world.ids[k] for k in ("job", "theirJob")],
        "Other": [world.ids[k] for k in ("goneVoice", "them", "event")],
        "visible": [world.ids[k] for k in ("video", "job", "voice", "me")],
    }
    query, variables = data.draw(compilable_requests(SCHEMA, ids, world.cursors))
    paths.served.clear()
    compiled, resolver = await paths.both(world.owner, query, variables)
    assert compiled == resolver, (query, variables)
    event(f"served by {paths.served[0]}")
    DRAWN[paths.served[0]] = DRAWN.get(paths.served[0], 0) + 1


_JSON_TEXT = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=6
) | st.sampled_from(
    [
        "",
        " ",
        "\t\n",
        "\u00a0",
        "en",
        "/published/x",
        "//cdn/x",
        "2026-03-01T12:00:00+00:00",
        "2026-03-01T12:00:00.000000+00:00",
        "2026-13-01T12:00:00+00:00",
        "2026-03-01T12:00:00Z",
    ]
)
_JSON_NUMBERS = (
    st.integers(-(2**40), 2**40)
    | st.sampled_from([0, 2**31 - 1, 2**31, -(2**31), 2**70, 0.5, 1.5, 2.5, -0.0, 1e-320, 1e300])
    | st.floats(allow_nan=False, allow_infinity=False)
)
_JSON_SCALARS = st.none() | st.booleans() | _JSON_NUMBERS | _JSON_TEXT
_JSON = st.recursive(
    _JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_JSON_TEXT, inner, max_size=3),
    max_leaves=6,
)


def _mostly(typical: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """What a writer stores, and one time in twenty anything at all."""
    return st.integers(0, 19).flatmap(lambda n: _JSON if n == 0 else typical)


def _object_of(
    required: dict[str, st.SearchStrategy[Any]] | None = None, **keys: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """An object with the ``required`` keys and these (each maybe left out), each value mostly
    typical."""
    return _mostly(
        st.fixed_dictionaries(
            {key: _mostly(value) for key, value in (required or {}).items()},
            optional={key: _mostly(value) for key, value in keys.items()},
        )
    )


_FACTORS = st.floats(0.1, 4) | st.integers(0, 3) | st.sampled_from([1e-05, 1e16, 1e15, 2.5])
_NAMES = (
    st.sampled_from(["en", "de", "pt-BR", "", " ", "\u00a0x", "\t", "ü"])
    | st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=6)
    | _JSON_TEXT
)
_MOMENTS = st.datetimes(
    min_value=datetime(1990, 1, 1), timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))])
).map(datetime.isoformat)
_PATHS = st.sampled_from(["videos/a/captions.vtt", "odd/ü ?.vtt", "/published/x.srt"])
_URLS = st.none() | st.sampled_from(["/published/x.srt", "//cdn/x", "https://cdn.example/f"])
_WHOLE = st.integers(0, 450) | st.floats(0, 450) | st.sampled_from([0.5, 2.5, 2**31, True])

_COLUMNS: dict[str, st.SearchStrategy[Any]] = {
    "audio_settings": _object_of(speed=_FACTORS, pitch=_FACTORS, volume=_FACTORS, language=_NAMES),
    "script": st.none()
    | _object_of(
        segments=st.lists(
            _object_of(
                index=st.integers(0, 9) | st.floats(0, 9),
                text=_JSON_TEXT,
                startMs=st.integers(0, 10**6) | st.none(),
                endMs=st.integers(0, 10**6) | st.floats(0, 10),
            ),
            max_size=3,
        )
    ),
    "caption_tracks": _mostly(
        st.lists(
            _object_of({"language": _NAMES, "format": _NAMES}, path=_PATHS, url=_URLS),
            max_size=3,
        )
    ),
    "published_to": _mostly(
        st.lists(_object_of({"target": _NAMES, "publishedAt": _MOMENTS}, url=_URLS), max_size=3)
    ),
}
_ENGINE = _object_of(voice=_NAMES, variant=_NAMES, rate=_WHOLE, pitch=_WHOLE, volume=_WHOLE)

DOCUMENT_QUERY = """query($id: ID!, $voice: ID!) {
  video(id: $id) { audioSettings { speed pitch volume language }
    script { segments { index text startMs endMs } }
    captionTracks { language format url } publishedTo { target url publishedAt } }
  voice: node(id: $voice) { ... on VoiceProfile { engineSettings { voice variant rate pitch
    volume } } }
}"""


@settings(
    max_examples=int(_ON_DEMAND) if _ON_DEMAND else DIFF_EXAMPLES,
    derandomize=not _ON_DEMAND,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_stored_documents_answer_the_same_both_ways(
    data: st.DataObject, paths: Paths, world: World, session: AsyncSession
) -> None:
    """Whatever the JSON columns hold, the compiled path answers as the readers read it, or
    leaves it to them (a value the SQL does not translate stops the statement)."""
    values = {column: data.draw(strategy, label=column) for column, strategy in _COLUMNS.items()}
    engine = data.draw(_ENGINE, label="engine_settings")
    if values["audio_settings"] is None:
        values["audio_settings"] = {}  # NOT NULL in SQL; JSON null is drawn as `_JSON`'s None
    video_id = from_global_id(world.ids["video"])[1]
    voice_id = from_global_id(world.ids["voice"])[1]
    await session.execute(update(models.Video).where(models.Video.id == video_id).values(values))
    await session.execute(
        update(models.VoiceProfile)
        .where(models.VoiceProfile.id == voice_id)
        .values(engine_settings=engine)
    )
    await session.commit()
    variables = {"id": world.ids["video"], "voice": world.ids["voice"]}
    paths.served.clear()
    compiled, resolver = await paths.both(world.owner, DOCUMENT_QUERY, variables)
    # An error the readers raise is INTERNAL, with each request's own id.
    assert _without_request_ids(compiled) == _without_request_ids(resolver)
    event(f"served by {paths.served[0]}")


async def test_a_stored_value_the_sql_does_not_translate_is_resolved(
    paths: Paths, world: World, session: AsyncSession, caplog: pytest.LogCaptureFixture
) -> None:
    """``float("1.5")`` has no SQL twin here: the statement stops at that row, quietly, and the
    resolvers answer (the other videos' settings alone still compile)."""
    video_id = from_global_id(world.ids["video"])[1]
    await session.execute(
        update(models.Video)
        .where(models.Video.id == video_id)
        .values(audio_settings={"speed": "1.5"})
    )
    await session.commit()
    query = "{ videos { edges { node { title audioSettings { speed } } } } }"
    with caplog.at_level(logging.INFO, logger="schema.compiled"):
        answer = await paths.same(world.owner, query, path="resolver")
    speeds = [edge["node"]["audioSettings"]["speed"] for edge in answer["data"]["videos"]["edges"]]
    assert 1.5 in speeds
    logged = [r for r in caplog.records if r.name.startswith("schema.compiled")]
    assert [r.getMessage() for r in logged if r.levelno >= logging.INFO] == []
    await paths.same(world.owner, query.replace("videos {", "videos(first: 1) {", 1))


def _without_request_ids(answer: str) -> Any:
    body = json.loads(answer)
    for error in body.get("errors", []):
        error.get("extensions", {}).pop("requestId", None)
    return body


#: How many drawn queries each path served (printed with -s; Hypothesis also reports events).
DRAWN: dict[str, int] = {}


async def test_the_json_text_is_passed_through(graphql: GraphQLClient, world: World) -> None:
    """The body carries PostgreSQL's own JSON text (its `" : "` spacing): never re-encoded."""
    client = graphql.as_user(world.owner.id)
    headers = {"Authorization": f"Bearer {client.token}"}
    body = {"query": "{ viewer { email } }"}
    response = await client.http.post("/graphql", json=body, headers=headers)
    assert (
        response.content == b'{"data":{"viewer" : {"email" : "%s"}}}' % world.owner.email.encode()
    )


async def test_sql_global_ids_and_timestamps_are_pythons(session: AsyncSession) -> None:
    """The SQL forms of `to_global_id` and `datetime.isoformat` on many values: every type
    name, uuids whose base64 crosses PostgreSQL's 76-character line breaks, timestamps with and
    without microseconds, midnight and the last microsecond of a year (asyncpg sends
    the ends of `datetime`'s range as infinities, which no column holds)."""
    rng = random.Random(7)
    ids = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(200)]
    moments = [
        datetime(
            2000 + rng.randrange(60),
            1 + rng.randrange(12),
            1 + rng.randrange(28),
            rng.randrange(24),
            rng.randrange(60),
            rng.randrange(60),
            rng.choice((0, 0, 1, 999_999, rng.randrange(1_000_000))),
            tzinfo=UTC,
        )
        for _ in range(200)
    ] + [datetime(1970, 1, 1, tzinfo=UTC), datetime(2099, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)]
    for type_name in ("User", "Video", "GenerationJob", "VoiceProfile", "AuditEvent"):
        expression = global_id_sql(type_name, "x")
        rows = await session.execute(
            text(f"SELECT {expression} FROM unnest(CAST(:ids AS uuid[])) AS x"),  # noqa: S608
            {"ids": ids},
        )
        assert [row[0] for row in rows] == [to_global_id(type_name, i) for i in ids]
    rows = await session.execute(
        text(f"SELECT {iso_datetime('x')} FROM unnest(CAST(:m AS timestamptz[])) AS x"),  # noqa: S608
        {"m": moments},
    )
    assert [row[0] for row in rows] == [moment.isoformat() for moment in moments]


async def test_the_operation_named_is_the_one_compiled(paths: Paths, world: World) -> None:
    document = "query A { viewer { email } } query B { videos(first: 1) { totalCount } }"
    for name in ("A", "B"):
        paths.served.clear()
        answers = []
        for client in (paths.compiled, paths.resolver):
            signed = client.as_user(world.owner.id)
            body = {"query": document, "operationName": name}
            headers = {"Authorization": f"Bearer {signed.token}"}
            response = await signed.http.post("/graphql", json=body, headers=headers)
            answers.append(json.dumps(response.json(), sort_keys=True))
        assert answers[0] == answers[1]
        assert ("email" in answers[0]) == (name == "A")
        assert paths.served == ["compiled", "resolver"]


def test_the_plan_cache_is_bounded_and_keeps_the_recent() -> None:
    cache = PlanCache(size=2)
    plan = Plan("'{}'", "true", ())
    cache.put("a", plan)
    cache.put("b", None)  # a document that does not compile is remembered too
    assert cache.get("a") == (True, plan)  # "a" is now the most recent
    cache.put("c", plan)
    assert len(cache) == 2
    assert cache.get("b") == (False, None)
    assert cache.get("a") == (True, plan)

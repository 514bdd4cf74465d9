"""An operation answered on the compiled path before is answered again without the extensions
(`schema.compiled.known`): the same bytes, headers, log line and metrics, the same limits, and
anything unusual handed to the full path, which answers as it always did."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from graphql import OperationDefinitionNode, parse
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from starlette.applications import Starlette
from starlette.routing import Route

from app.auth import issue_access_token
from app.settings import Settings, load_settings
from db.models import User
from schema import StudioSchema
from schema.compiled import KnownReads
from schema.compiled.known import KnownOperation
from schema.relay import to_global_id
from schema.transport.view import GraphQLView
from tests.factories import make_job, make_user, make_video, make_voice_profile
from tests.support.graphql import count_statements

PAGE = """query Page($n: Int!, $after: String) {
  viewer { email videos(first: $n, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { id title status voiceProfile { name } latestJob { status progress } } }
  } }
}"""
SMALL = "query Small($id: ID!) { video(id: $id) { title jobs(first: 5) { edges { node { status } } } } }"  # noqa: E501


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    return load_settings(database_url=settings.database_url, compiled_reads=True)


def known_reads(app: Starlette) -> KnownReads:
    for route in app.routes:
        if isinstance(route, Route) and isinstance(route.endpoint, GraphQLView):
            schema = route.endpoint.schema
            assert isinstance(schema, StudioSchema)
            assert schema.known_reads is not None
            return schema.known_reads
    raise AssertionError("no GraphQL route")


@pytest.fixture
async def owner(session: AsyncSession) -> User:
    user = await make_user(session, email="known@example.com")
    voice = await make_voice_profile(session, user, name="Narrator")
    for index in range(3):
        video = await make_video(session, user, title=f"Video {index}", voice_profile_id=voice.id)
        await make_job(session, video)
    await session.flush()
    return user


@pytest.fixture
def access_log() -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign, assignment]
    logger = logging.getLogger("studio.access")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def post(
    http: httpx.AsyncClient,
    settings: Settings,
    user: User | None,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    accept: str = "application/json",
    operation_name: str | None = None,
) -> httpx.Response:
    headers = {"Content-Type": "application/json", "Accept": accept}
    if user is not None:
        headers["Authorization"] = f"Bearer {issue_access_token(settings, user.id).token}"
    body: dict[str, Any] = {"query": query, "variables": variables or {}}
    if operation_name is not None:
        body["operationName"] = operation_name
    return await http.post("/graphql", json=body, headers=headers)


def comparable(response: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    headers = sorted((k, v) for k, v in response.headers.items() if k != "x-request-id")
    return response.status_code, response.content, headers


@pytest.mark.parametrize("accept", ["application/json", "application/graphql-response+json"])
async def test_the_second_request_is_answered_alike_without_the_extensions(
    app: Starlette,
    http: httpx.AsyncClient,
    app_settings: Settings,
    owner: User,
    connection: AsyncConnection,
    access_log: list[logging.LogRecord],
    accept: str,
) -> None:
    known = known_reads(app)
    first = await post(http, app_settings, owner, PAGE, {"n": 2}, accept=accept)
    assert known.answered == 0
    assert len(known) == 2  # by its name, and without it (the document has one operation)
    with count_statements(connection) as counted:
        second = await post(http, app_settings, owner, PAGE, {"n": 2}, accept=accept)
    assert known.answered == 1
    assert counted.count == 1  # the one compiled statement
    assert comparable(second) == comparable(first)
    assert first.json()["data"]["viewer"]["videos"]["totalCount"] == 3
    # Other values of the same variables: planned alike, answered alike.
    cursor = first.json()["data"]["viewer"]["videos"]["pageInfo"]["endCursor"]
    resolved = await post(http, app_settings, owner, PAGE, {"n": 2, "after": cursor})
    assert known.answered == 1  # a cursor given: another plan, made on the full path first
    again = await post(http, app_settings, owner, PAGE, {"n": 2, "after": cursor})
    assert known.answered == 2
    assert comparable(again) == comparable(resolved)
    lines = [(r.getMessage().split(" in ")[0], r.path, r.viewer_id) for r in access_log]  # type: ignore[attr-defined]
    assert lines == [("query Page ok", "compiled", str(owner.id))] * 4


async def test_another_viewer_gets_their_own_answer(
    app: Starlette,
    http: httpx.AsyncClient,
    app_settings: Settings,
    owner: User,
    session: AsyncSession,
) -> None:
    other = await make_user(session, email="other@example.com")
    video = await make_video(session, other, title="Theirs")
    await session.flush()
    variables = {"id": to_global_id("Video", video.id)}
    theirs = await post(http, app_settings, other, SMALL, variables)
    assert theirs.json() == {"data": {"video": {"title": "Theirs", "jobs": {"edges": []}}}}
    # The owner asks for the other user's video: NOT_FOUND on the full path, never their data.
    mine = await post(http, app_settings, owner, SMALL, variables)
    assert mine.json()["data"] == {"video": None}
    assert [e["extensions"]["code"] for e in mine.json()["errors"]] == ["NOT_FOUND"]
    assert known_reads(app).answered == 0


async def test_the_same_body_from_another_viewer_is_answered_with_their_rows(
    app: Starlette,
    http: httpx.AsyncClient,
    app_settings: Settings,
    owner: User,
    session: AsyncSession,
) -> None:
    """What is remembered of a body (`KnownReads._prepare`) is what the body alone decides:
    the caller, and so the statement's parameters, are settled per request."""
    other = await make_user(session, email="other@example.com")
    await make_video(session, other, title="Theirs")
    await session.flush()
    known = known_reads(app)
    await post(http, app_settings, owner, PAGE, {"n": 2})  # known from now on
    mine = await post(http, app_settings, owner, PAGE, {"n": 2})  # the body remembered
    theirs = await post(http, app_settings, other, PAGE, {"n": 2})
    assert known.answered == 2
    assert mine.json()["data"]["viewer"]["email"] == "known@example.com"
    assert mine.json()["data"]["viewer"]["videos"]["totalCount"] == 3
    videos = theirs.json()["data"]["viewer"]["videos"]
    assert theirs.json()["data"]["viewer"]["email"] == "other@example.com"
    assert [edge["node"]["title"] for edge in videos["edges"]] == ["Theirs"]


@pytest.mark.parametrize(
    "variables",
    [{"n": "two"}, {"n": -1}, {"n": 1000}, {}],
    ids=["not-an-int", "negative", "over-the-cost", "missing"],
)
async def test_values_the_full_path_refuses_get_its_answer(
    app: Starlette,
    http: httpx.AsyncClient,
    app_settings: Settings,
    owner: User,
    variables: dict[str, Any],
) -> None:
    await post(http, app_settings, owner, PAGE, {"n": 2})  # known from now on
    refused = await post(http, app_settings, owner, PAGE, variables)
    codes = [error["extensions"]["code"] for error in refused.json()["errors"]]
    assert codes == ["BAD_USER_INPUT"], refused.json()
    assert known_reads(app).answered == 0


async def test_a_list_variable_is_costed_by_its_length(
    app: Starlette, http: httpx.AsyncClient, app_settings: Settings, owner: User
) -> None:
    """``nodes(ids:)`` costs its selection once per id: a verdict for one id is no verdict for
    a hundred (ID variables are otherwise costless)."""
    query = """query Many($ids: [ID!]!) { nodes(ids: $ids) { id ... on User {
      videos(first: 100) { edges { node { title } } } } } }"""
    me = [to_global_id("User", owner.id)]
    for _ in range(2):
        answered = await post(http, app_settings, owner, query, {"ids": me})
        assert answered.json()["data"]["nodes"][0]["id"] == me[0]
    assert known_reads(app).answered == 1
    refused = await post(http, app_settings, owner, query, {"ids": me * 100})
    assert [e["extensions"].get("limit") for e in refused.json()["errors"]] == ["cost"]
    assert known_reads(app).answered == 1
    # The verdict itself tells the lengths apart (each length also has its own plan).
    (operation,) = parse(query).definitions
    assert isinstance(operation, OperationDefinitionNode)
    known = KnownOperation.of(parse(query), operation)
    assert known.cost_key({"ids": me}) != known.cost_key({"ids": me * 100})


async def test_signed_out_deleted_or_refused_callers_get_the_full_path(
    app: Starlette,
    http: httpx.AsyncClient,
    app_settings: Settings,
    owner: User,
    session: AsyncSession,
) -> None:
    await post(http, app_settings, owner, PAGE, {"n": 2})
    signed_out = await post(http, app_settings, None, PAGE, {"n": 2})
    assert signed_out.json()["data"] == {"viewer": None}
    bad = await http.post(
        "/graphql",
        json={"query": PAGE, "variables": {"n": 2}},
        headers={"Authorization": "Bearer not.a.token"},
    )
    assert [e["extensions"]["code"] for e in bad.json()["errors"]] == ["UNAUTHENTICATED"]
    gone = await make_user(session, email="gone@example.com")
    await post(http, app_settings, gone, PAGE, {"n": 2})  # known for this shape already
    await session.delete(gone)
    await session.flush()
    deleted = await post(http, app_settings, gone, PAGE, {"n": 2})
    assert [e["extensions"]["code"] for e in deleted.json()["errors"]] == ["UNAUTHENTICATED"]
    assert known_reads(app).answered == 1  # the live `gone`'s second request only


@pytest.mark.parametrize(
    "body",
    [
        b'{"query": "%s", "variables": {"n": 2}, "extensions": {}}',
        b'{"query": "%s", "variables": [1]}',
        b'{"query": "%s", "variables": {"n": 2}, "operationName": 7}',
        b'{"query": "%s", "variables": {"n": 2}, "operationName": "Other"}',
    ],
    ids=["extensions", "variables-not-an-object", "name-not-a-string", "unknown-operation"],
)
async def test_bodies_of_another_shape_get_the_full_path(
    app: Starlette, http: httpx.AsyncClient, app_settings: Settings, owner: User, body: bytes
) -> None:
    token = issue_access_token(app_settings, owner.id).token
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    await post(http, app_settings, owner, PAGE, {"n": 2})
    query = PAGE.replace("\n", "\\n").encode()
    response = await http.post("/graphql", content=body.replace(b"%s", query), headers=headers)
    assert response.status_code in (200, 400)
    assert known_reads(app).answered == 0


async def test_a_statement_that_fails_in_the_database_is_resolved_instead(
    app: Starlette,
    http: httpx.AsyncClient,
    app_settings: Settings,
    owner: User,
    caplog: pytest.LogCaptureFixture,
) -> None:
    expected = await post(http, app_settings, owner, PAGE, {"n": 2})
    known = known_reads(app)
    for plan in known.plans.plans():
        assert plan is not None
        # The statement now divides by zero in PostgreSQL, on both paths.
        broken = plan.positional_sql.replace("SELECT", "SELECT 1/0 AS broken,", 1)
        object.__setattr__(plan, "positional_sql", broken)  # this test's app only
    with caplog.at_level(logging.WARNING, logger="schema.compiled.extension"):
        answered = await post(http, app_settings, owner, PAGE, {"n": 2})
    assert answered.json() == expected.json()
    assert known.answered == 0
    assert "a compiled statement failed, resolving instead" in caplog.text

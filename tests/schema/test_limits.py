"""Abusive documents are refused before they run (SPEC §5 Limits; README "Limits").

Each limit has a test at the limit (the document runs) and just over it (refused with
``BAD_USER_INPUT`` and ``extensions.limit`` naming the limit, and not one SQL statement sent),
through fragments where fragments can hide what a document asks for. Most tests use an app with
small limits (`SMALL`), so that the documents stay readable; the defaults are checked to let real
clients through (GraphiQL's introspection query, the README's batching query).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from app.auth import issue_access_token
from app.main import create_app
from app.settings import Settings
from schema.relay import to_global_id
from tests.factories import make_user, make_video
from tests.support.graphql import GraphQLClient, GraphQLResponse, count_statements
from tests.support.websocket import bearer, open_websocket

SMALL: dict[str, Any] = {
    "max_query_depth": 6,
    "max_aliases": 4,
    "max_directives": 3,
    "max_cost": 200,
    "max_tokens": 100,
    "max_characters": 2000,
}

#: A document at a limit (``over`` 0: it runs) and one just over it (``over`` 1: refused).
at_and_over = pytest.mark.parametrize(("over", "runs"), [(0, True), (1, False)], ids=["at", "over"])


@pytest.fixture
async def user_id(session: AsyncSession) -> uuid.UUID:
    user = await make_user(session)
    await make_video(session, user)
    return user.id


@pytest.fixture
def viewer(graphql: GraphQLClient, user_id: uuid.UUID) -> GraphQLClient:
    """Signed in, on an app with the default limits."""
    return graphql.as_user(user_id)


@pytest.fixture
async def small(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], user_id: uuid.UUID
) -> AsyncIterator[GraphQLClient]:
    """Signed in, on an app with the `SMALL` limits."""
    small_settings = settings.model_copy(update=SMALL)
    async with _client(create_app(small_settings, sessionmaker=sessionmaker)) as http:
        yield GraphQLClient(http, small_settings).as_user(user_id)


# --- depth ---------------------------------------------------------------------------------------


async def test_depth_at_the_limit_runs(small: GraphQLClient) -> None:
    assert (await small.execute(_nested(SMALL["max_query_depth"]))).ok()["viewer"]


async def test_depth_over_the_limit_is_refused_before_sql(
    small: GraphQLClient, connection: AsyncConnection
) -> None:
    await _assert_refused(small, connection, _nested(SMALL["max_query_depth"] + 1), "depth")


@at_and_over
async def test_depth_counts_through_fragments_and_inline_fragments(
    small: GraphQLClient, connection: AsyncConnection, over: int, runs: bool
) -> None:
    query = _nested_in_fragments(SMALL["max_query_depth"] + over)
    if runs:
        assert (await small.execute(query)).ok()["viewer"]
    else:
        await _assert_refused(small, connection, query, "depth")


async def test_a_reused_fragment_counts_at_its_deepest_spread(
    small: GraphQLClient, connection: AsyncConnection
) -> None:
    """``Jobs`` reaches 3 levels below where it is spread: from 3 to 6 (the limit), from 7 to 10."""
    fragment = "fragment Jobs on Video { jobs(first: 1) { edges { node { id } } } }"
    shallow = "{ videos(first: 1) { edges { node { ...Jobs } } } }"
    assert (await small.execute(f"{shallow} {fragment}")).ok()["videos"]
    deep = (
        "{ videos(first: 1) { edges { node { ...Jobs "
        "owner { videos(first: 1) { edges { node { ...Jobs } } } } } } } }"
    )
    await _assert_refused(small, connection, f"{deep} {fragment}", "depth")


async def test_the_depth_limit_does_not_count_introspection_but_nested_lists_are_refused(
    small: GraphQLClient, connection: AsyncConnection
) -> None:
    """The depth limit skips ``__`` fields (GraphiQL's own query nests ``ofType`` deeper than
    most limits); graphql-core's introspection-depth rule bounds what can grow: nested lists."""
    of_type = "ofType { " * 7 + "name" + " }" * 7
    chain = f'{{ __type(name: "Video") {{ fields {{ type {{ {of_type} }} }} }} }}'
    assert (await small.execute(chain)).ok()["__type"]["fields"]
    lists = '{ __type(name: "Video") { fields { type { fields { type { fields { name } } } } } } }'
    await _assert_refused(small, connection, lists, "introspection")


# --- aliases -------------------------------------------------------------------------------------


@at_and_over
async def test_aliases_up_to_the_limit(
    small: GraphQLClient, connection: AsyncConnection, over: int, runs: bool
) -> None:
    count = SMALL["max_aliases"] + over
    query = "{ " + " ".join(f"v{n}: videos(first: 1) {{ totalCount }}" for n in range(count)) + " }"
    if runs:
        assert len((await small.execute(query)).ok()) == count
    else:
        await _assert_refused(small, connection, query, "aliases")


async def test_aliases_in_a_fragment_count_each_time_it_is_spread(
    small: GraphQLClient, connection: AsyncConnection
) -> None:
    fragment = "fragment Two on Query { a: __typename b: __typename }"
    assert (await small.execute(f"{{ ...Two ... on Query {{ ...Two }} }} {fragment}")).ok()
    query = f"{{ ...Two ... on Query {{ ...Two }} ...Again }} {fragment} "
    query += "fragment Again on Query { ...Two }"
    await _assert_refused(small, connection, query, "aliases")


# --- directives ----------------------------------------------------------------------------------


@at_and_over
async def test_directives_up_to_the_limit(
    small: GraphQLClient, connection: AsyncConnection, over: int, runs: bool
) -> None:
    query = "{ " + "__typename @include(if: true) " * (SMALL["max_directives"] + over) + "}"
    if runs:
        assert (await small.execute(query)).ok() == {"__typename": "Query"}
    else:
        await _assert_refused(small, connection, query, "directives")


async def test_directives_in_a_fragment_count_each_time_it_is_spread(
    small: GraphQLClient, connection: AsyncConnection
) -> None:
    fragment = "fragment Id on User { id @include(if: true) email @skip(if: false) }"
    assert (await small.execute(f"{{ viewer {{ ...Id }} }} {fragment}")).ok()["viewer"]
    await _assert_refused(
        small, connection, f"{{ viewer {{ ...Id ...Id }} }} {fragment}", "directives"
    )


# --- tokens and characters -----------------------------------------------------------------------


@at_and_over
async def test_tokens_up_to_the_limit(
    small: GraphQLClient, connection: AsyncConnection, over: int, runs: bool
) -> None:
    query = "{ " + "__typename " * (SMALL["max_tokens"] - 2 + over) + "}"  # + 2 braces
    if runs:
        assert (await small.execute(query)).ok() == {"__typename": "Query"}
    else:
        await _assert_refused(small, connection, query, "tokens")


@at_and_over
async def test_characters_up_to_the_limit_count_what_tokens_do_not(
    small: GraphQLClient, connection: AsyncConnection, over: int, runs: bool
) -> None:
    """A comment is no token; a long one is still refused, before it is read."""
    query = "{ __typename }\n#"
    query += "x" * (SMALL["max_characters"] - len(query) + over)
    if runs:
        assert (await small.execute(query)).ok() == {"__typename": "Query"}
    else:
        await _assert_refused(small, connection, query, "characters")


# --- cost ----------------------------------------------------------------------------------------

PAGE = "query ($n: Int) { viewer { videos(first: $n) { edges { node { id } } } } }"


def _page_cost(n: int) -> int:
    return 2 + 3 * n  # viewer, videos, then edges, node and id once per video


@at_and_over
async def test_cost_multiplies_by_first(
    small: GraphQLClient, connection: AsyncConnection, over: int, runs: bool
) -> None:
    n = (SMALL["max_cost"] - 2) // 3 + over
    assert (_page_cost(n) <= SMALL["max_cost"]) is runs
    if runs:
        assert (await small.execute(PAGE, {"n": n})).ok()["viewer"]
    else:
        await _assert_refused(small, connection, PAGE, "cost", variables={"n": n})


async def test_cost_multiplies_by_last_and_by_the_default_page_size(
    small: GraphQLClient, connection: AsyncConnection
) -> None:
    over = (SMALL["max_cost"] - 2) // 3 + 1
    last = f"{{ viewer {{ videos(last: {over}) {{ edges {{ node {{ id }} }} }} }} }}"
    await _assert_refused(small, connection, last, "cost")
    # Without first/last a connection counts 20 items: 2 + 20 * 10 = 202.
    fields = "id title description status progress createdAt updatedAt inputType"
    default = f"{{ viewer {{ videos {{ edges {{ node {{ {fields} }} }} }} }} }}"
    await _assert_refused(small, connection, default, "cost")
    assert (await small.execute(default.replace(" inputType", ""))).ok()  # 2 + 20 * 9


async def test_cost_multiplies_nested_connections(
    small: GraphQLClient, connection: AsyncConnection
) -> None:
    """A connection inside a connection: its items count for each item of the outer one."""
    query = (
        "{ videos(first: 10) { edges { node { "
        "jobs(first: 10) { edges { node { id } } } } } } }"
    )  # 1 + 10 * (3 + 10 * 3) = 331
    await _assert_refused(small, connection, query, "cost")
    assert (await small.execute(query.replace("jobs(first: 10)", "jobs(first: 5)"))).ok()


async def test_cost_counts_each_id_of_nodes(
    small: GraphQLClient, connection: AsyncConnection
) -> None:
    video = to_global_id("Video", uuid.uuid4())
    query = "query ($ids: [ID!]!) { nodes(ids: $ids) { ... on Video { owner { videos { "
    query += "edges { node { id } } } } } } }"  # 1 + len(ids) * (2 + 20 * 3)
    await _assert_refused(small, connection, query, "cost", variables={"ids": [video] * 4})
    # 1 + 3 * 62 is within the limit: it runs (and the unknown video is not found).
    assert (await small.execute(query, {"ids": [video] * 3})).codes == ["NOT_FOUND"] * 3


# --- the defaults let real clients through -------------------------------------------------------


async def test_the_default_limits_let_graphiql_introspect(graphql: GraphQLClient) -> None:
    query = get_introspection_query(
        descriptions=True, specified_by_url=True, directive_is_repeatable=True
    )
    assert (await graphql.execute(query)).ok()["__schema"]["queryType"]["name"] == "Query"


async def test_the_default_limits_let_the_batching_query_through(viewer: GraphQLClient) -> None:
    query = """query ($n: Int!) { viewer { videos(first: $n) { totalCount edges { node {
        title owner { email } voiceProfile { name } latestJob { status progress }
        jobs(first: 5) { totalCount edges { node { status } } } } } } } }"""
    assert (await viewer.execute(query, {"n": 100})).ok()["viewer"]["videos"]["edges"]


# --- transports ----------------------------------------------------------------------------------


async def test_a_json_array_of_operations_is_refused(
    http: httpx.AsyncClient, viewer: GraphQLClient
) -> None:
    """Batching is off: one operation per request, whatever the limits of each."""
    assert viewer.token is not None
    response = await http.post(
        "/graphql",
        json=[{"query": "{ __typename }"}, {"query": "{ __typename }"}],
        headers=bearer(viewer.token),
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.fixture(scope="module")
def live_overrides() -> dict[str, Any]:
    """The live app (tests/schema/conftest.py) has the `SMALL` limits."""
    return SMALL


async def test_limits_apply_to_subscriptions_over_websockets(
    server: str, live_settings: Settings
) -> None:
    token = issue_access_token(live_settings, uuid.uuid4()).token
    deep = (
        "subscription { viewerJobs { video { owner { videos(first: 1) { edges { node { "
        "owner { id } } } } } } } }"
    )  # id at depth 7
    long = "subscription { viewerJobs { id } }\n#" + "x" * SMALL["max_characters"]
    async with open_websocket(server) as ws:
        assert (await ws.init(bearer(token)))["type"] == "connection_ack"
        await ws.subscribe("deep", deep)
        deep_refused = await ws.receive()
        # Refused while parsing: the error still reaches the client, and the socket stays open.
        await ws.subscribe("long", long)
        long_refused = await ws.receive()
    for refused, operation_id, limit in [
        (deep_refused, "deep", "depth"),
        (long_refused, "long", "characters"),
    ]:
        assert (refused["type"], refused["id"]) == ("error", operation_id), refused
        [error] = refused["payload"]
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "limit": limit}


# --- helpers -------------------------------------------------------------------------------------

# The levels of `_nested`: each a field of the previous level's type, and a leaf of that type.
_LEVELS = [
    ("User", "videos(first: 1)", "VideoConnection", "email"),
    ("VideoConnection", "edges", "VideoEdge", "totalCount"),
    ("VideoEdge", "node", "Video", "cursor"),
    ("Video", "owner", "User", "id"),
]


def _nested(depth: int) -> str:
    """``{ viewer { videos(first: 1) { edges { node { owner { … } } } } } }`` with a leaf
    ``depth`` levels below the root field (the root field is depth 0, as in graphql-depth-limit)."""
    fields, leaf = ["viewer"], "email"
    for level in range(depth - 1):
        _, field, _, _ = _LEVELS[level % len(_LEVELS)]
        fields.append(field)
        leaf = _LEVELS[(level + 1) % len(_LEVELS)][3]
    return "{ " + " { ".join([*fields, leaf]) + " }" * len(fields) + " }"


def _nested_in_fragments(depth: int) -> str:
    """`_nested`, each level in a fragment of its own: named fragments and inline ones in turn."""
    fragments = []
    body = _LEVELS[(depth - 1) % len(_LEVELS)][3]  # the leaf
    for level in reversed(range(depth - 1)):
        type_name, field, _, _ = _LEVELS[level % len(_LEVELS)]
        if level % 2:
            body = f"... on {type_name} {{ {field} {{ {body} }} }}"
        else:
            fragments.append(f"fragment L{level} on {type_name} {{ {field} {{ {body} }} }}")
            body = f"...L{level}"
    return f"{{ viewer {{ {body} }} }} " + " ".join(fragments)


async def _assert_refused(
    client: GraphQLClient,
    connection: AsyncConnection,
    query: str,
    limit: str,
    *,
    variables: dict[str, Any] | None = None,
) -> GraphQLResponse:
    with count_statements(connection) as counter:
        response = await client.execute(query, variables)
    assert "data" not in response.body or response.data is None, response.body
    assert set(response.codes) == {"BAD_USER_INPUT"}, response.errors
    limits = {error["extensions"].get("limit") for error in response.errors}
    assert limits == {limit}, response.errors
    assert counter.statements == []
    return response


@asynccontextmanager
async def _client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for ``app``, its lifespan running (as the ``http`` fixture's)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://studio.test") as http:
            yield http

"""One regression test per published strawberry-graphql advisory of 2026 (pyproject.toml requires
releases that carry the fixes; the project's own limits and masking must hold whatever Strawberry
does). Each test names its advisory and quotes what it is about.

The websocket tests run the app under uvicorn in a thread, on a database of this module's own,
with 2 operations per connection.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from strawberry.http.ides import get_graphql_ide_html

from app.settings import Settings
from db.queries import videos as video_queries
from schema.relay import to_global_id
from tests.factories import make_user
from tests.support.graphql import GraphQLClient, count_statements
from tests.support.live_jobs import JOB_PROGRESS, VIDEO_UPDATED, LiveJob
from tests.support.websocket import (
    LEGACY_WS,
    TRANSPORT_WS,
    GraphQLWebSocket,
    bearer,
    open_websocket,
)

MAX_OPERATIONS = 2
VIEWER_JOBS = "subscription { viewerJobs { id } }"


@pytest.fixture(scope="module")
def live_overrides() -> dict[str, Any]:
    return {"max_subscriptions_per_connection": MAX_OPERATIONS}


@pytest.fixture
async def viewer(session: AsyncSession, graphql: GraphQLClient) -> GraphQLClient:
    return graphql.as_user((await make_user(session)).id)


# --- GHSA-vpwc-v33q-mq89 (CVE-2026-35523), fixed in 0.312.3 ------------------------------------


async def test_legacy_protocol_runs_nothing_before_connection_init(
    server: str, job: LiveJob
) -> None:
    """The advisory: "The legacy graphql-ws subprotocol handler does not verify that a
    connection_init handshake has been completed before processing start (subscription)
    messages", which skipped ``on_ws_connect``, where the studio authenticates."""
    async with open_websocket(server, protocol=LEGACY_WS) as ws:
        await ws.subscribe("1", JOB_PROGRESS, {"id": job.job_gid})
        assert await ws.closed() == (4401, "Unauthorized")


# --- GHSA-hv3w-m4g2-5x77 (CVE-2026-35526), fixed in 0.312.3 ------------------------------------


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_operations_per_connection_are_capped(
    server: str, job: LiveJob, protocol: str
) -> None:
    """The advisory: "The WebSocket subscription handlers … allocate an asyncio.Task … for every
    incoming subscribe message without enforcing any limit on the number of active subscriptions
    per connection" (an attacker flooding one connection)."""
    async with open_websocket(server, protocol=protocol) as ws:
        await ws.init(bearer(job.token))
        for n in range(MAX_OPERATIONS):
            await ws.subscribe(f"s{n}", VIEWER_JOBS)
        for n in range(3):
            await ws.subscribe(f"flood{n}", VIEWER_JOBS)
            refused = await ws.receive()
            assert (refused["type"], refused["id"]) == ("error", f"flood{n}")
            [error] = refused["payload"] if protocol == TRANSPORT_WS else [refused["payload"]]
            assert error["extensions"]["code"] == "RATE_LIMITED"


# --- GHSA-m952-2w3f-6r8h (CVE-2026-107727), fixed in 0.327.2 -----------------------------------


async def test_legacy_protocol_frees_the_place_of_a_finished_operation(
    server: str, job: LiveJob
) -> None:
    """The advisory: "The legacy graphql-ws subscription handler … does not remove naturally
    completed operations", so one-shot operations filled the connection's places for good."""
    missing_job = to_global_id("GenerationJob", uuid.uuid4())
    async with open_websocket(server, protocol=LEGACY_WS) as ws:
        await ws.init(bearer(job.token))
        for n in range(MAX_OPERATIONS + 2):
            await ws.subscribe(f"once{n}", JOB_PROGRESS, {"id": missing_job})
            codes = await _codes_until_complete(ws, f"once{n}")
            assert codes == ["NOT_FOUND"]  # it ran, and ended: never RATE_LIMITED


# --- GHSA-fr49-mhgj-crfc (CVE-2026-47707), fixed in 0.315.7 ------------------------------------


async def test_aliases_in_fragments_count_each_time_they_are_spread(
    viewer: GraphQLClient, connection: AsyncConnection, settings: Settings
) -> None:
    """The advisory: "MaxAliasesLimiter … does not consider how many times a fragments internal
    aliases are expanded during execution." Here each spread stays under the limit, the whole is
    over it."""
    per_fragment = settings.max_aliases // 2 + 1
    aliases = " ".join(f"a{n}: __typename" for n in range(per_fragment))
    query = f"{{ ...Many ... on Query {{ ...Many }} }} fragment Many on Query {{ {aliases} }}"
    with count_statements(connection) as counter:
        response = await viewer.execute(query)
    [error] = response.errors
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "limit": "aliases"}
    assert counter.statements == []


# --- GHSA-qfwv-87qj-98xq (CVE-2026-47706), fixed in 0.315.7 ------------------------------------


async def test_a_cycle_of_fragments_is_refused_not_followed(viewer: GraphQLClient) -> None:
    """The advisory: "When a query contains circular fragment references the determine_depth
    function enters an infinite recursion, leading to a RecursionError and crashing the
    validation process" (here: refused by validation, as any cycle)."""
    query = (
        "{ viewer { ...A } } fragment A on User { videos { edges { node { owner { ...B } } } } } "
        "fragment B on User { ...A }"
    )
    response = await viewer.execute(query)
    assert response.codes == ["BAD_USER_INPUT"]
    assert "Cannot spread fragment" in response.errors[0]["message"]


async def test_a_long_chain_of_fragments_is_answered(viewer: GraphQLClient) -> None:
    """No recursion over fragments anywhere: a chain of hundreds of spreads (a recursive walk
    would need a frame or more for each) is refused cleanly, never an internal error."""
    length = 500
    chain = " ".join(f"fragment F{n} on Query {{ ...F{n + 1} }}" for n in range(length))
    query = f"{{ ...F0 }} {chain} fragment F{length} on Query {{ __typename }}"
    assert len(query) < viewer.settings.max_characters
    response = await viewer.execute(query)
    assert response.codes == ["BAD_USER_INPUT"], response.errors


# --- GHSA-x97m-qp5c-w9xj (CVE-2026-45739), fixed in 0.315.4 ------------------------------------


def test_graphiql_keeps_the_headers_out_of_the_url() -> None:
    """The advisory: "Strawberry's bundled GraphiQL template wrote values from the GraphiQL headers
    editor into the browser URL query string", and so an ``Authorization`` header into history
    and access logs. The studio serves that template (with its own assets)."""
    page = get_graphql_ide_html("graphiql")
    on_edit_headers = re.search(r"function onEditHeaders\([^)]*\) \{(.*?)\n\s*\}", page, re.S)
    assert on_edit_headers is not None, "the template changed: check the headers editor again"
    assert "updateURL" not in on_edit_headers.group(1)


# --- masking on every transport (no advisory id: strawberry-graphql issue #3680) ---------------

SECRET = "secret detail SELECT password_hash FROM users"


async def test_an_unexpected_error_in_a_subscription_is_masked(
    server: str, job: LiveJob, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``MaskErrors`` once left subscription errors unmasked; the studio masks them itself
    (`schema.transport.streaming`), as it does over HTTP."""

    async def fail(*args: object, **kwargs: object) -> object:
        raise RuntimeError(SECRET)

    monkeypatch.setattr(video_queries, "videos_by_ids", fail)  # the server runs in this process
    async with open_websocket(server) as ws:
        await ws.init(bearer(job.token))
        await ws.subscribe("v", VIDEO_UPDATED, {"id": job.video_gid})
        answer = await ws.receive()
    assert SECRET not in str(answer)
    errors = answer["payload"] if answer["type"] == "error" else answer["payload"]["errors"]
    assert [error["extensions"]["code"] for error in errors] == ["INTERNAL"]


async def _codes_until_complete(ws: GraphQLWebSocket, operation_id: str) -> list[str]:
    codes: list[str] = []
    while (message := await ws.receive())["type"] != "complete":
        assert message.get("id") == operation_id, message
        payload = message.get("payload") or {}
        errors = payload.get("errors", [payload] if message["type"] == "error" else [])
        codes += [error.get("extensions", {}).get("code") for error in errors]
    return codes

"""The websocket rules, one test per rule (graphql-transport-ws's PROTOCOL.md, and the studio's
own limits; README "Live progress" lists the close codes).

Each test quotes the rule it checks. Where a rule holds for the legacy ``graphql-ws`` too, the
test runs over both protocols. The app runs under uvicorn in a thread, with small limits so that
they can be reached: 2 operations per connection, 2 connections per user, 2048-byte messages, a
keep-alive every 0.2 s; a second app has a 0.2 s ``connection_init`` timeout. The last test
looks at one step in-process: the moment between a token's expiry and the close.
"""

from __future__ import annotations

import gc
import uuid
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.auth import Viewer, issue_access_token
from app.errors import Unauthenticated
from app.main import create_app
from app.settings import Settings
from schema.context import Context
from schema.transport.streaming import ShortSessionGate, operation_context
from tests.support.browser import serve
from tests.support.live_jobs import JOB_PROGRESS, LiveJob
from tests.support.websocket import LEGACY_WS, TRANSPORT_WS, bearer, open_websocket

MAX_OPERATIONS = 2
MAX_CONNECTIONS = 2
MAX_MESSAGE_BYTES = 2048
KEEP_ALIVE_SECONDS = 0.2
INIT_TIMEOUT_SECONDS = 0.2

both_protocols = pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
NO_ID = "subscribe needs a non-empty string id"
NO_QUERY = "subscribe needs a payload with a query string"


@pytest.fixture(scope="module")
def live_overrides() -> dict[str, Any]:
    return {
        "max_subscriptions_per_connection": MAX_OPERATIONS,
        "max_connections_per_user": MAX_CONNECTIONS,
        "ws_max_message_bytes": MAX_MESSAGE_BYTES,
        "ws_keep_alive_seconds": KEEP_ALIVE_SECONDS,
    }


@pytest.fixture(scope="module")
def impatient_server(live_settings: Settings) -> Iterator[str]:
    """An app that waits only `INIT_TIMEOUT_SECONDS` for ``connection_init``."""
    settings = live_settings.model_copy(
        update={"ws_connection_init_timeout_seconds": INIT_TIMEOUT_SECONDS}
    )
    with serve(create_app(settings)) as base_url:
        yield base_url


# --- connection_init ---------------------------------------------------------------------------


@both_protocols
async def test_no_connection_init_in_time_closes_with_4408(
    impatient_server: str, protocol: str
) -> None:
    """If the client does not request a connection within the allowed timeout, the server will
    close the socket with the event: `4408: Connection initialisation timeout`."""
    async with open_websocket(impatient_server, protocol=protocol) as ws:
        assert await ws.closed() == (4408, "Connection initialisation timeout")


async def test_a_second_connection_init_closes_with_4429(server: str, job: LiveJob) -> None:
    """If the server receives more than one `ConnectionInit` message at any given time, the
    server will close the socket with the event `4429: Too many initialisation requests`."""
    async with open_websocket(server) as ws:
        assert (await ws.init(bearer(job.token)))["type"] == "connection_ack"
        await ws.send({"type": "connection_init", "payload": bearer(job.token)})
        assert await ws.closed() == (4429, "Too many initialisation requests")


async def test_connection_init_payload_may_be_null(server: str, job: LiveJob) -> None:
    """`payload?: Record<string, unknown> | null` (the token then comes from the header)."""
    async with open_websocket(server, headers=bearer(job.token)) as ws:
        await ws.send({"type": "connection_init", "payload": None})
        assert (await ws.receive())["type"] == "connection_ack"


@both_protocols
@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"Authorization": "Bearer not-a-token"}, "Invalid access token"),
        ({}, "Missing access token"),
    ],
)
async def test_a_bad_or_missing_token_closes_with_4403(
    server: str, protocol: str, payload: dict[str, str], reason: str
) -> None:
    """If the server wishes to reject the connection, for example during authentication, it is
    recommended to close the socket with `4403: Forbidden`."""
    async with open_websocket(server, protocol=protocol) as ws:
        await ws.send({"type": "connection_init", "payload": payload})
        if protocol == LEGACY_WS:
            assert (await ws.receive())["type"] == "connection_error"
        assert await ws.closed() == (4403, reason)


# --- messages ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("{not json", "WebSocket message must be valid JSON"),
        ("[" * 1500, "WebSocket message must be valid JSON"),  # deeper than Python parses
        # Valid JSON, but nested deeper than STUDIO_MAX_JSON_DEPTH (`schema.client_json`).
        (
            '{"type": "ping", "payload": {"a": ' + "[" * 100 + "]" * 100 + "}}",
            "WebSocket message must be valid JSON",
        ),
        (b'{"type": "ping"}', "WebSocket message type must be text"),
        ('["subscribe"]', "Message must be a JSON object"),
        ("{}", "Unknown message type: None"),
        ('{"type": "hello"}', "Unknown message type: 'hello'"),
        ('{"type": "next", "id": "1", "payload": {}}', "Unknown message type: 'next'"),
        ('{"type": "ping", "payload": "x"}', "Invalid ping payload"),
        ('{"type": "subscribe", "payload": {"query": "{ __typename }"}}', NO_ID),
        ('{"type": "subscribe", "id": 1, "payload": {"query": "{ __typename }"}}', NO_ID),
        ('{"type": "subscribe", "id": "1", "payload": ["{ __typename }"]}', NO_QUERY),
        ('{"type": "subscribe", "id": "1", "payload": {"query": 1}}', NO_QUERY),
        (
            '{"type": "subscribe", "id": "1", "payload": {"query": "{ __typename }", '
            '"operationName": 1}}',
            "operationName must be a string or null",
        ),
        (
            '{"type": "subscribe", "id": "1", "payload": {"query": "{ __typename }", '
            '"variables": []}}',
            "variables must be an object or null",
        ),
        ('{"type": "complete"}', "complete needs a non-empty string id"),
    ],
)
async def test_a_message_the_protocol_does_not_describe_closes_with_4400(
    server: str, job: LiveJob, frame: str | bytes, reason: str
) -> None:
    """Receiving a message of a type or format which is not specified in this document will
    result in an immediate socket closure with the event `4400: <error-message>`."""
    async with open_websocket(server) as ws:
        await ws.init(bearer(job.token))
        await ws.send_raw(frame)
        code, sent_reason = await ws.closed()
    assert (code, sent_reason) == (4400, reason)


async def test_an_invalid_connection_init_payload_closes_with_4400(server: str) -> None:
    """`payload?: Record<string, unknown> | null`; anything else is a message of a format
    which is not specified: `4400: <error-message>`."""
    async with open_websocket(server) as ws:
        await ws.send({"type": "connection_init", "payload": "Bearer x"})
        assert await ws.closed() == (4400, "Invalid connection_init payload")


async def test_legacy_protocol_answers_a_malformed_message_with_connection_error(
    server: str, job: LiveJob
) -> None:
    """graphql-ws has no 4400: a message it cannot parse gets `connection_error`, and the
    connection goes on."""
    async with open_websocket(server, protocol=LEGACY_WS) as ws:
        await ws.init(bearer(job.token))
        for frame in ("[]", '{"type": "start", "payload": {"query": "{ __typename }"}}'):
            await ws.send_raw(frame)
            assert (await ws.receive())["type"] == "connection_error"
        await ws.subscribe("1", JOB_PROGRESS, {"id": job.job_gid})
        assert (await ws.next_data("1"))["data"]["jobProgress"]["id"] == job.job_gid


@both_protocols
@pytest.mark.parametrize("text", ["x" * MAX_MESSAGE_BYTES, "é" * (MAX_MESSAGE_BYTES // 2)])
async def test_a_message_over_the_size_limit_closes_with_1009(
    server: str, job: LiveJob, protocol: str, text: str
) -> None:
    """STUDIO_WS_MAX_MESSAGE_BYTES bounds a message in UTF-8 bytes; a larger one closes the
    socket with `1009: Message Too Big` (RFC 6455), as uvicorn's own limit does."""
    async with open_websocket(server, protocol=protocol) as ws:
        await ws.init(bearer(job.token))
        await ws.subscribe("1", "{ __typename }", {"padding": text})
        assert await ws.closed() == (1009, f"Message over {MAX_MESSAGE_BYTES} bytes")


# --- operations --------------------------------------------------------------------------------


@both_protocols
async def test_subscribing_before_the_ack_closes_with_4401(server: str, protocol: str) -> None:
    """Executing operations is allowed only after the server has acknowledged the connection
    through the `ConnectionAck` message, if the connection is not acknowledged, the socket will
    be closed immediately with the event `4401: Unauthorized`."""
    async with open_websocket(server, protocol=protocol) as ws:
        await ws.subscribe("1", "{ __typename }")
        assert await ws.closed() == (4401, "Unauthorized")


@pytest.mark.parametrize("operation_id", ["1", "x" * 200])
async def test_a_duplicate_operation_id_closes_with_4409(
    server: str, job: LiveJob, operation_id: str
) -> None:
    """If there is already an active subscriber for an operation matching the provided ID,
    regardless of the operation type, the server must close the socket immediately with the
    event `4409: Subscriber for <unique-operation-id> already exists`."""
    async with open_websocket(server) as ws:
        await ws.init(bearer(job.token))
        await ws.subscribe(operation_id, JOB_PROGRESS, {"id": job.job_gid})
        await ws.next_data(operation_id)
        await ws.subscribe(operation_id, JOB_PROGRESS, {"id": job.job_gid})
        code, reason = await ws.closed()
    assert code == 4409
    # A close frame holds 123 bytes of reason: a long id is cut, not a failed close.
    assert f"Subscriber for {operation_id} already exists".startswith(reason)
    assert reason.startswith("Subscriber for ")


@both_protocols
async def test_operations_per_connection_are_capped(
    server: str, job: LiveJob, protocol: str
) -> None:
    """More than STUDIO_MAX_SUBSCRIPTIONS_PER_CONNECTION operations at once: the extra one gets
    an `error` coded RATE_LIMITED, and the connection stays open."""
    async with open_websocket(server, protocol=protocol) as ws:
        await ws.init(bearer(job.token))
        for n in range(MAX_OPERATIONS):
            await ws.subscribe(f"s{n}", JOB_PROGRESS, {"id": job.job_gid})
            await ws.next_data(f"s{n}")
        await ws.subscribe("over", JOB_PROGRESS, {"id": job.job_gid})
        refused = await ws.receive()
        assert (refused["type"], refused["id"]) == ("error", "over")
        [error] = refused["payload"] if protocol == TRANSPORT_WS else [refused["payload"]]
        assert error["extensions"]["code"] == "RATE_LIMITED"
        await ws.stop("s0")
        if protocol == LEGACY_WS:  # graphql-ws confirms a `stop`
            assert await ws.receive() == {"type": "complete", "id": "s0"}
        await ws.subscribe("again", JOB_PROGRESS, {"id": job.job_gid})
        assert (await ws.next_data("again"))["data"]["jobProgress"]["id"] == job.job_gid


@both_protocols
async def test_connections_per_user_are_capped_with_4403(
    server: str, job: LiveJob, protocol: str
) -> None:
    """More than STUDIO_MAX_CONNECTIONS_PER_USER connections of one user to one process: the
    extra one is closed with `4403: Too many connections` (graphql-ws clients retry a 4403)."""
    async with open_websocket(server) as first, open_websocket(server) as second:
        for ws in (first, second):
            assert (await ws.init(bearer(job.token)))["type"] == "connection_ack"
        async with open_websocket(server, protocol=protocol) as third:
            answer = await third.init(bearer(job.token)) if protocol == LEGACY_WS else None
            if answer is not None:
                assert answer["payload"]["extensions"]["code"] == "RATE_LIMITED"
            else:
                await third.send({"type": "connection_init", "payload": bearer(job.token)})
            assert await third.closed() == (4403, "Too many connections")


# --- keep-alive and token expiry ---------------------------------------------------------------


async def test_the_server_pings_and_answers_pings(server: str, job: LiveJob) -> None:
    """`Ping`: a `Pong` must be sent in response from the receiving party as soon as possible.
    The server sends a `ping` every STUDIO_WS_KEEP_ALIVE_SECONDS once the connection is
    acknowledged."""
    async with open_websocket(server) as ws:
        await ws.init(bearer(job.token))
        assert await ws.receive_any() == {"type": "ping"}
        await ws.send({"type": "ping", "payload": {"sent": "now"}})
        while (message := await ws.receive_any())["type"] == "ping":
            pass
        assert message == {"type": "pong"}


async def test_the_legacy_protocol_sends_ka(server: str, job: LiveJob) -> None:
    """graphql-ws: the server sends `ka` (GQL_CONNECTION_KEEP_ALIVE) after the ack, and then
    every STUDIO_WS_KEEP_ALIVE_SECONDS."""
    async with open_websocket(server, protocol=LEGACY_WS) as ws:
        await ws.send({"type": "connection_init", "payload": bearer(job.token)})
        assert await ws.receive_any() == {"type": "connection_ack"}
        assert await ws.receive_any() == {"type": "ka"}
        assert await ws.receive_any() == {"type": "ka"}


@both_protocols
async def test_an_expired_token_ends_the_subscriptions_then_closes_with_4403(
    server: str, live_settings: Settings, job: LiveJob, protocol: str
) -> None:
    """When the connection's access token expires, each running subscription ends with
    UNAUTHENTICATED, then the socket is closed with `4403: Token expired` (graphql-ws clients
    reconnect after a 4403, with fresh connectionParams)."""
    # Issued times are whole seconds: it expires in 1 to 2 s, time for the first event even on a
    # busy machine (with 1 s it could expire before the connection was acknowledged).
    issued = datetime.now(UTC) - timedelta(seconds=live_settings.token_ttl_seconds - 2)
    token = issue_access_token(live_settings, job.user_id, now=issued).token
    async with open_websocket(server, protocol=protocol) as ws:
        assert (await ws.init(bearer(token)))["type"] == "connection_ack"
        await ws.subscribe("1", JOB_PROGRESS, {"id": job.job_gid})
        assert (await ws.next_data("1"))["data"]["jobProgress"]["status"] == "QUEUED"
        ended = await ws.next_data("1")
        assert ended["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert await ws.receive() == {"id": "1", "type": "complete"}
        assert await ws.closed() == (4403, "Token expired")


async def test_an_operation_after_the_token_expired_is_unauthenticated(
    live_settings: Settings,
) -> None:
    """Between the token's expiry and the close (operations get a moment to send their last
    message), a new operation on the connection reads as signed out."""
    gate = ShortSessionGate(async_sessionmaker())
    expired = Viewer(user_id=uuid.uuid4(), expires_at=datetime.now(UTC) - timedelta(seconds=1))
    connection = Context(settings=live_settings, request_id="", gate=gate, viewer=expired)
    operation = operation_context(connection, gate)
    assert operation.viewer is None
    with pytest.raises(Unauthenticated, match="expired"):
        await operation.require_viewer()


async def test_a_subscription_keeps_no_loaders_of_earlier_changes(
    live_settings: Settings,
) -> None:
    """A subscription makes new loaders for every change it re-reads (`Context.reset_loaders`):
    the ones before, and the rows they cached, are let go, not kept for the subscription's
    whole life (thousands of subscriptions each kept one set per change)."""
    gate = ShortSessionGate(async_sessionmaker())
    context = Context(settings=live_settings, request_id="", gate=gate, viewer=None)
    earlier = weakref.ref(context.loaders.job_by_id)
    context.reset_loaders()
    gc.collect()
    assert earlier() is None
    assert context.loaders.job_by_id is not None


@pytest.mark.parametrize("autocommit", [True, False])
async def test_a_subscriptions_reads_run_without_a_transaction(
    writer: AsyncEngine, autocommit: bool
) -> None:
    """A subscription only reads: each of its batches sends its statements alone, without
    ``BEGIN``/``ROLLBACK`` around them (each statement its own transaction), except where a
    transaction pooler needs the transaction for the statement timeout (``autocommit`` off)."""
    gate = ShortSessionGate(async_sessionmaker(writer), autocommit=autocommit)

    async def two_transaction_ids(session: AsyncSession) -> set[int]:
        txids = [await session.scalar(text("SELECT txid_current()")) for _ in range(2)]
        return {int(txid) for txid in txids if txid is not None}

    assert len(await gate.run(two_transaction_ids)) == (2 if autocommit else 1)

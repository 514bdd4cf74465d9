"""Request ids and request body limits (app/middleware.py, app/body_limit.py): every response
carries an id that logs and INTERNAL errors quote; oversized bodies are refused before the
application reads them."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.types import Message, Receive, Scope, Send

from app.body_limit import DRAIN_FACTOR
from app.main import create_app
from app.middleware import RequestMiddleware
from app.observability import Metrics
from app.settings import Settings, load_settings

GENERATED_REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


# --- request ids ------------------------------------------------------------------------------


@pytest.mark.parametrize("offered", ["a" * 300, "abc 123", "abc\t123", "<script>", "id;drop", ""])
async def test_unacceptable_request_id_is_replaced(http: httpx.AsyncClient, offered: str) -> None:
    response = await http.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"X-Request-ID": offered}
    )
    assert response.status_code == 200
    assert GENERATED_REQUEST_ID.match(response.headers["x-request-id"])


async def test_request_without_an_id_gets_a_generated_one(http: httpx.AsyncClient) -> None:
    first = await http.post("/graphql", json={"query": "{ __typename }"})
    second = await http.post("/graphql", json={"query": "{ __typename }"})
    assert GENERATED_REQUEST_ID.match(first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


# --- request body size ------------------------------------------------------------------------

BODY_LIMIT = 2048


@pytest.fixture
async def small_body_app(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app: Starlette = create_app(
        load_settings(database_url=settings.database_url, max_body_bytes=BODY_LIMIT)
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://studio.test") as client:
            yield client


def _body(size: int) -> bytes:
    prefix, suffix = b'{"query": "{ __typename }", "variables": {"pad": "', b'"}}'
    return prefix + b"x" * (size - len(prefix) - len(suffix)) + suffix


async def test_body_within_the_limit_is_served(small_body_app: httpx.AsyncClient) -> None:
    response = await small_body_app.post(
        "/graphql", content=_body(BODY_LIMIT), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_body_over_the_limit_is_413_with_a_json_error(
    small_body_app: httpx.AsyncClient,
) -> None:
    response = await small_body_app.post(
        "/graphql", content=_body(BODY_LIMIT + 1), headers={"Content-Type": "application/json"}
    )
    _assert_too_large(response)


async def test_chunked_body_over_the_limit_is_413_with_a_json_error(
    small_body_app: httpx.AsyncClient,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        body = _body(BODY_LIMIT * 3)
        for start in range(0, len(body), 512):
            yield body[start : start + 512]

    response = await small_body_app.post(
        "/graphql", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    _assert_too_large(response)


def _assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json"
    assert GENERATED_REQUEST_ID.match(response.headers["x-request-id"])
    [error] = response.json()["errors"]
    assert str(BODY_LIMIT) in error["message"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


# --- what is left of a refused body -------------------------------------------------------------


async def _refuse(
    chunks: list[bytes], headers: dict[str, str], *, app_reads: bool = False
) -> tuple[int, dict[str, str], int]:
    """A JSON body sent in ``chunks`` to `RequestMiddleware` (limit `BODY_LIMIT`) in front of
    an app that reads it (or not): the status, the response headers, and how many chunks the
    middleware and the app took from the client."""
    messages: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks)
    ]
    taken = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal taken
        taken += 1
        return messages[taken - 1] if taken <= len(messages) else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        while app_reads and (await receive()).get("more_body"):
            pass
        await PlainTextResponse("read")(scope, receive, send)

    headers = {"Content-Type": "application/json", **headers}
    raw_headers = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    scope: Scope = {"type": "http", "method": "POST", "path": "/", "headers": raw_headers}
    settings = load_settings(max_body_bytes=BODY_LIMIT)
    await RequestMiddleware(app, settings=settings, metrics=Metrics(settings))(scope, receive, send)
    start = sent[0]
    response_headers = {name.decode(): value.decode() for name, value in start["headers"]}
    return start["status"], response_headers, taken


@pytest.mark.parametrize(
    ("declared", "app_reads"),
    [(True, False), (True, True), (False, True)],
    ids=["declared", "declared-app-reading", "chunked"],
)
async def test_a_refused_body_is_read_to_its_end_before_the_413(
    declared: bool, app_reads: bool
) -> None:
    """The client can read the 413: the server does not close while the body is arriving (a
    declared length is refused before the app runs; a chunked body once the app reads it)."""
    chunks = [b"x" * 1024] * (3 * BODY_LIMIT // 1024)
    headers = {"Content-Length": str(3 * BODY_LIMIT)} if declared else {}
    status, response_headers, taken = await _refuse(chunks, headers, app_reads=app_reads)
    assert status == 413
    assert taken == len(chunks)
    assert "connection" not in response_headers  # the connection may go on


@pytest.mark.parametrize("declared", [True, False])
async def test_a_body_far_over_the_limit_is_answered_at_once_and_the_connection_closed(
    declared: bool,
) -> None:
    chunks = [b"x" * 1024] * (DRAIN_FACTOR * BODY_LIMIT // 1024 + 8)
    headers = {"Content-Length": str(len(chunks) * 1024)} if declared else {}
    status, response_headers, taken = await _refuse(chunks, headers, app_reads=True)
    assert status == 413
    assert taken < len(chunks)
    assert response_headers["connection"] == "close"


async def test_a_client_waiting_for_100_continue_is_answered_without_reading() -> None:
    headers = {"Content-Length": str(3 * BODY_LIMIT), "Expect": "100-continue"}
    status, response_headers, taken = await _refuse([b"x" * 3 * BODY_LIMIT], headers)
    assert (status, taken) == (413, 0)
    assert response_headers["connection"] == "close"

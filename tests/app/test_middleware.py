"""Request ids and request body limits (app/middleware.py): every response carries an id that
logs and INTERNAL errors quote; oversized bodies are refused before the application reads them."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from app.main import create_app
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

"""CSRF (SPEC §5 Limits: "no state change through GET or simple cross-site forms").

A browser sends a cross-site POST without a CORS preflight only when its Content-Type is one a
``<form>`` can produce; such requests must carry a header no form can set. GET never runs a
mutation."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette

from app.auth import issue_access_token
from app.main import create_app
from app.settings import Settings, load_settings
from db.models import AuditEvent, VoiceProfile
from tests.factories import make_user

CREATE = 'mutation { createVoiceProfile(input: {name: "Forged"}) { voiceProfile { id } } }'


async def _written(session: AsyncSession) -> tuple[int, int]:
    profiles = await session.scalar(select(func.count()).select_from(VoiceProfile))
    events = await session.scalar(select(func.count()).select_from(AuditEvent))
    return int(profiles or 0), int(events or 0)


@pytest.fixture
async def bearer(session: AsyncSession, settings: Settings) -> dict[str, str]:
    user = await make_user(session)
    await session.commit()
    return {"Authorization": f"Bearer {issue_access_token(settings, user.id).token}"}


def _multipart(query: str = CREATE) -> dict[str, tuple[None, str]]:
    # The GraphQL multipart request spec's fields, as a <form enctype="multipart/form-data">
    # could post them.
    return {"operations": (None, json.dumps({"query": query})), "map": (None, "{}")}


def _refused_as_csrf(response: httpx.Response) -> None:
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "Apollo-Require-Preflight" in error["message"]


async def test_multipart_post_without_the_header_is_refused_and_writes_nothing(
    http: httpx.AsyncClient, session: AsyncSession, bearer: dict[str, str]
) -> None:
    before = await _written(session)
    response = await http.post("/graphql", files=_multipart(), headers=bearer)
    _refused_as_csrf(response)
    assert "x-request-id" in response.headers
    assert await _written(session) == before


@pytest.mark.parametrize(
    "header", ["Apollo-Require-Preflight", "X-Studio-CSRF", "X-Apollo-Operation-Name"]
)
async def test_multipart_post_with_a_preflight_header_is_served(
    http: httpx.AsyncClient, session: AsyncSession, bearer: dict[str, str], header: str
) -> None:
    response = await http.post("/graphql", files=_multipart(), headers=bearer | {header: "true"})
    assert response.status_code == 200
    assert response.json()["data"]["createVoiceProfile"]["voiceProfile"]["id"]


async def test_an_empty_header_does_not_count(
    http: httpx.AsyncClient, bearer: dict[str, str]
) -> None:
    response = await http.post(
        "/graphql", files=_multipart(), headers=bearer | {"Apollo-Require-Preflight": " "}
    )
    _refused_as_csrf(response)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "text/plain",
        "text/plain; charset=utf-8",
        "Multipart/Form-Data; boundary=xyz",
        None,
    ],
)
async def test_every_simple_content_type_needs_the_header(
    http: httpx.AsyncClient,
    session: AsyncSession,
    bearer: dict[str, str],
    content_type: str | None,
) -> None:
    before = await _written(session)
    headers = bearer | ({"Content-Type": content_type} if content_type else {})
    body = json.dumps({"query": CREATE}).encode()
    response = await http.post("/graphql", content=body, headers=headers)
    _refused_as_csrf(response)
    assert await _written(session) == before


async def test_json_posts_need_no_header(http: httpx.AsyncClient, bearer: dict[str, str]) -> None:
    """A cross-site JSON POST is preflighted by the browser, and CORS decides it."""
    response = await http.post("/graphql", json={"query": "{ __typename }"}, headers=bearer)
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_a_mutation_over_get_is_refused(
    http: httpx.AsyncClient, session: AsyncSession, bearer: dict[str, str]
) -> None:
    """GET is for queries only; Strawberry refuses a mutation before it runs (with 400, where
    GraphQL over HTTP would prefer 405: the status is the view's to choose, the refusal is what
    CSRF safety needs)."""
    before = await _written(session)
    response = await http.get("/graphql", params={"query": CREATE}, headers=bearer)
    assert response.status_code in (400, 405)
    assert "mutations are not allowed when using GET" in response.text
    assert await _written(session) == before
    query = await http.get("/graphql", params={"query": "{ __typename }"}, headers=bearer)
    assert query.json() == {"data": {"__typename": "Query"}}


# --- the header passes CORS from an allowed origin ----------------------------------------

ORIGIN = "https://studio.example.com"


@pytest.fixture
async def cors_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app: Starlette = create_app(
        load_settings(database_url=settings.database_url, cors_origins=[ORIGIN])
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://studio.test") as client:
            yield client


async def test_an_allowed_origin_may_send_the_csrf_header(
    cors_client: httpx.AsyncClient,
) -> None:
    response = await cors_client.options(
        "/graphql",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "apollo-require-preflight, authorization",
        },
    )
    assert response.status_code == 200
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "apollo-require-preflight" in allowed
    assert "x-studio-csrf" in allowed


async def test_another_origin_may_not(cors_client: httpx.AsyncClient) -> None:
    response = await cors_client.options(
        "/graphql",
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "apollo-require-preflight",
        },
    )
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers

"""Production mode (``STUDIO_ENV=production``; README "Configuration" and "Limits").

Introspection and GraphiQL are off unless a setting turns them on, no error suggests field or
type names ("Did you mean …"), only SPEC §4's codes reach a client (anything else is masked as
``INTERNAL``), and ``studio serve`` refuses to start with the development secret key or a short
one.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from graphql import GraphQLError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from app.main import create_app
from app.settings import DEVELOPMENT_SECRET_KEY, Environment, Settings
from db.queries import videos as video_queries
from schema.extensions.errors import coded_error
from schema.relay import to_global_id
from tests.factories import make_user
from tests.support.graphql import GraphQLClient, count_statements
from tests.support.processes import clean_env, run_studio

PRODUCTION = {"env": Environment.PRODUCTION, "secret_key": "production-test-key-" + "k" * 24}
INTROSPECTION = "{ __schema { queryType { name } } }"


@pytest.fixture
async def user_id(session: AsyncSession) -> uuid.UUID:
    return (await make_user(session)).id


@pytest.fixture
def app_client(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], user_id: uuid.UUID
) -> Any:
    """``async with app_client(**overrides) as client``: a signed-in client of an app whose
    settings are the test run's with ``overrides``."""

    @asynccontextmanager
    async def open_client(**overrides: Any) -> AsyncIterator[GraphQLClient]:
        app_settings = settings.model_copy(update=overrides)
        app = create_app(app_settings, sessionmaker=sessionmaker)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://studio.test") as h:
                yield GraphQLClient(h, app_settings).as_user(user_id)

    return open_client


@pytest.fixture
async def production(app_client: Any) -> AsyncIterator[GraphQLClient]:
    async with app_client(**PRODUCTION) as client:
        yield client


# --- introspection -------------------------------------------------------------------------------


@pytest.mark.parametrize("query", [INTROSPECTION, '{ __type(name: "Video") { name } }'])
async def test_introspection_is_off_in_production(
    production: GraphQLClient, connection: AsyncConnection, query: str
) -> None:
    with count_statements(connection) as counter:
        response = await production.execute(query)
    assert response.data is None
    [error] = response.errors
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "limit": "introspection"}
    assert counter.statements == []


async def test_typename_is_still_answered_in_production(production: GraphQLClient) -> None:
    assert (await production.execute("{ __typename }")).ok() == {"__typename": "Query"}


async def test_a_setting_turns_introspection_on_in_production(app_client: Any) -> None:
    async with app_client(**PRODUCTION, introspection=True) as client:
        assert (await client.execute(INTROSPECTION)).ok()["__schema"]["queryType"]["name"]


async def test_development_answers_introspection_unless_turned_off(app_client: Any) -> None:
    async with app_client() as client:
        assert (await client.execute(INTROSPECTION)).ok()
    async with app_client(introspection=False) as client:
        assert (await client.execute(INTROSPECTION)).codes == ["BAD_USER_INPUT"]


# --- GraphiQL ------------------------------------------------------------------------------------


async def test_graphiql_is_off_in_production_unless_turned_on(app_client: Any) -> None:
    browser = {"Accept": "text/html,application/xhtml+xml"}
    async with app_client(**PRODUCTION) as client:
        off = await client.http.get("/graphql", headers=browser)
    assert off.status_code == 404
    assert "<html" not in off.text.lower()
    async with app_client(**PRODUCTION, graphiql=True) as client:
        on = await client.http.get("/graphql", headers=browser)
    assert on.status_code == 200
    assert "<html" in on.text.lower()


# --- suggestions ---------------------------------------------------------------------------------

MISSPELT = [
    ("{ viewer { emial } }", None),  # a field
    ("{ videos(frist: 1) { totalCount } }", None),  # an argument
    ("{ videos(filter: {status: [DRAFTT]}) { totalCount } }", None),  # an enum value
    ("query ($f: VideoFiltr) { videos(filter: $f) { totalCount } }", None),  # a type
    # An enum value in a variable is checked when the operation starts, not by validation.
    (
        "query ($f: VideoFilter) { videos(filter: $f) { totalCount } }",
        {"f": {"status": ["DRAFTT"]}},
    ),
]


@pytest.mark.parametrize(
    ("query", "variables"), MISSPELT, ids=["field", "argument", "enum", "type", "variable"]
)
async def test_a_misspelling_gets_no_suggestion_in_production(
    production: GraphQLClient, query: str, variables: dict[str, Any] | None
) -> None:
    response = await production.execute(query, variables)
    assert response.codes, response.body
    assert set(response.codes) == {"BAD_USER_INPUT"}, response.errors
    assert not any("Did you mean" in error["message"] for error in response.errors)


@pytest.mark.parametrize(
    ("query", "variables"), MISSPELT, ids=["field", "argument", "enum", "type", "variable"]
)
async def test_development_suggests_the_intended_name(
    app_client: Any, query: str, variables: dict[str, Any] | None
) -> None:
    async with app_client() as client:
        response = await client.execute(query, variables)
    assert any("Did you mean" in error["message"] for error in response.errors), response.errors


# --- masking -------------------------------------------------------------------------------------

SECRET = "secret detail SELECT password_hash FROM users"


async def test_an_unexpected_error_is_masked_in_production(
    production: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def fail(*args: object, **kwargs: object) -> object:
        raise RuntimeError(SECRET)

    monkeypatch.setattr(video_queries, "videos_by_ids", fail)
    response = await production.execute(
        "query ($id: ID!) { video(id: $id) { id title } }",
        {"id": to_global_id("Video", uuid.uuid4())},
    )
    [error] = response.errors
    assert set(error["extensions"]) == {"code", "requestId"}
    assert error["extensions"]["code"] == "INTERNAL"
    assert "secret" not in str(response.body)
    assert "RuntimeError" not in str(response.body)


@pytest.mark.parametrize("code", ["GRAPHQL_VALIDATION_FAILED", "PERSISTED_QUERY_NOT_FOUND", "X"])
def test_a_code_outside_the_spec_is_masked_as_internal(
    code: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    error = GraphQLError(f"{SECRET} ({code})", extensions={"code": code, "detail": SECRET})
    coded = coded_error(error, "req-1")
    assert coded.extensions == {"code": "INTERNAL", "requestId": "req-1"}
    assert SECRET not in coded.message
    assert SECRET in caplog.text  # logged for whoever reads the logs


@pytest.mark.parametrize("code", ["NOT_FOUND", "FORBIDDEN", "CONFLICT", "RATE_LIMITED"])
def test_a_spec_code_keeps_its_message(code: str) -> None:
    coded = coded_error(GraphQLError("Expected.", extensions={"code": code}), "req-1")
    assert (coded.message, coded.extensions) == ("Expected.", {"code": code})


# --- the secret key ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [None, DEVELOPMENT_SECRET_KEY, "too-short-0123456789"],
    ids=["unset", "development-key", "short"],
)
def test_studio_serve_refuses_to_start_without_a_real_secret_key(key: str | None) -> None:
    env = clean_env(STUDIO_ENV="production", DATABASE_URL="postgresql://studio@127.0.0.1:9/none")
    if key is not None:
        env["STUDIO_SECRET_KEY"] = key
    result = run_studio("serve", "--port", "9", env=env, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "STUDIO_SECRET_KEY" in result.stderr
    assert "at least 32 characters" in result.stderr
    assert "Traceback" not in result.stderr
    assert "Studio API on" not in result.stdout  # refused before serving

"""Rate limits across real processes (hardening issue, item 4): two ``studio serve`` processes
on one database count against the same buckets, over HTTP and over websockets.

Limits are turned on with small bursts and a rate so slow that nothing refills during the test.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.auth import issue_access_token
from app.settings import load_settings
from db.models import RateLimitBucket
from db.url import DatabaseURL
from tests.factories import make_user
from tests.support.jobs import committing_sessions
from tests.support.live_jobs import writer_engine
from tests.support.websocket import TRANSPORT_WS, bearer, open_websocket

SECRET = "rate-limit-test-secret-key-0123456789ab"
VIEWER = "{ viewer { id } }"
SIGN_IN = 'mutation { signIn(input: {provider: "nowhere", idToken: "x"}) { accessToken } }'
LIMITS = {
    "STUDIO_RATE_LIMIT_ENABLED": "true",
    "STUDIO_RATE_LIMIT_OPERATIONS_PER_MINUTE": "0.0001",
    "STUDIO_RATE_LIMIT_OPERATIONS_BURST": "4",
    "STUDIO_RATE_LIMIT_IP_OPERATIONS_PER_MINUTE": "0.0001",
    "STUDIO_RATE_LIMIT_IP_OPERATIONS_BURST": "100",
    "STUDIO_RATE_LIMIT_SIGN_IN_PER_MINUTE": "0.0001",
    "STUDIO_RATE_LIMIT_SIGN_IN_BURST": "2",
}


@pytest.fixture
def api_env() -> dict[str, str]:
    """The API processes' limits on, and the secret `_user` signs its tokens with."""
    return {"STUDIO_SECRET_KEY": SECRET, **LIMITS}


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
        yield client


async def _user(database: DatabaseURL) -> tuple[uuid.UUID, str]:
    """A committed user of this test's own, and an access token for it."""
    async with committing_sessions(database) as sessions, sessions.begin() as session:
        user_id = (await make_user(session)).id
    settings = load_settings(database_url=database.render(hide_password=False), secret_key=SECRET)
    return user_id, issue_access_token(settings, user_id).token


async def _post(
    http: httpx.AsyncClient, base_url: str, query: str, token: str | None = None
) -> tuple[dict[str, Any], httpx.Headers]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await http.post(f"{base_url}/graphql", json={"query": query}, headers=headers)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body, response.headers


def _code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors") or []
    return errors[0]["extensions"]["code"] if errors else None


async def test_two_api_processes_count_one_users_operations_together(
    api_processes: list[str], migrated_database: DatabaseURL, http: httpx.AsyncClient
) -> None:
    user_id, token = await _user(migrated_database)
    first, second = api_processes

    # The burst of 4, spent half on each process.
    for base_url in (first, second, first, second):
        body, _ = await _post(http, base_url, VIEWER, token)
        assert _code(body) is None, body

    for base_url in (first, second):
        body, headers = await _post(http, base_url, VIEWER, token)
        assert _code(body) == "RATE_LIMITED", body
        assert headers["Retry-After"] == str(body["errors"][0]["extensions"]["retryAfter"])

    # Over a websocket too: the operation is refused with the same error (and no header).
    async with open_websocket(second, protocol=TRANSPORT_WS) as websocket:
        assert (await websocket.init(bearer(token)))["type"] == "connection_ack"
        await websocket.subscribe("q", VIEWER)
        message = await websocket.receive()
        assert message["type"] == "error", message  # refused before execution
        [error] = message["payload"]
        assert error["extensions"]["code"] == "RATE_LIMITED"
        assert error["extensions"]["retryAfter"] >= 1

    engine = writer_engine(migrated_database)
    try:
        async with engine.connect() as connection:
            keys = set(
                (
                    await connection.scalars(
                        select(RateLimitBucket.key).where(
                            RateLimitBucket.key.like(f"user:{user_id}:%")
                        )
                    )
                ).all()
            )
    finally:
        await engine.dispose()
    assert keys == {f"user:{user_id}:operations"}


async def test_two_api_processes_count_anonymous_sign_ins_per_address_together(
    api_processes: list[str], http: httpx.AsyncClient
) -> None:
    first, second = api_processes
    for base_url in (first, second):
        body, _ = await _post(http, base_url, SIGN_IN)
        assert _code(body) == "BAD_USER_INPUT", body  # no such provider: the resolver ran

    for base_url in (first, second):
        body, headers = await _post(http, base_url, SIGN_IN)
        assert _code(body) == "RATE_LIMITED", body
        assert int(headers["Retry-After"]) >= 1
    # Other operations from the address still run.
    body, _ = await _post(http, first, VIEWER)
    assert body == {"data": {"viewer": None}}


async def test_known_reads_refused_on_either_process_cost_the_address_nothing(
    api_processes: list[str], migrated_database: DatabaseURL, http: httpx.AsyncClient
) -> None:
    """A read each process has answered before is charged inside its one statement
    (`db.queries.rate_limits.charging`); refused, it is given back what the address bucket was
    charged, on whichever process it came to. More refusals than the address's burst of 100,
    then another user at the address still gets their whole burst of 4."""
    (_, a), (_, b) = await _user(migrated_database), await _user(migrated_database)
    first, second = api_processes
    read = "query Mine { viewer { id displayName } }"
    for base_url in (first, second, first, second):  # the last two on the known path
        body, _ = await _post(http, base_url, read, a)
        assert _code(body) is None, body
    for index in range(100):
        body, headers = await _post(http, api_processes[index % 2], read, a)
        assert _code(body) == "RATE_LIMITED", body
        assert headers["Retry-After"] == str(body["errors"][0]["extensions"]["retryAfter"])
    for base_url in (first, second, first, second):
        body, _ = await _post(http, base_url, read, b)
        assert _code(body) is None, body

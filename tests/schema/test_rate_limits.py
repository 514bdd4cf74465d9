"""Rate limits (hardening issue, item 4; SPEC §4 ``RATE_LIMITED``): per user and per client
address, stricter for ``signIn`` and ``startGeneration``, checked before any resolver runs.

The apps here turn limits on with tiny bursts and rates so slow that nothing refills while a
test runs, except in the tests about refilling. Buckets live in the run's database, committed by
the limiter's own connection (outside the test's rolled-back transaction): every test therefore
calls from addresses of its own (`_address`) and with users of its own.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from starlette.applications import Starlette

from app.auth import issue_access_token
from app.main import create_app
from app.rate_limit import RateLimiter, Rates, client_address
from app.settings import Settings, load_settings
from app.state import AppState
from db.models import AuditEvent, GenerationJob, RateLimitBucket, Video, VideoStatus
from db.queries import rate_limits
from db.queries.rate_limits import Charge
from schema import create_schema
from schema.extensions.rate_limits import RateLimitCheck
from schema.relay import to_global_id
from tests.factories import make_user, make_video
from tests.support.graphql import GraphQLResponse
from tests.support.processes import free_port

#: Nothing comes back while a test runs: one unit per 10,000 minutes.
SLOW = 0.0001
LIMITS: dict[str, Any] = {
    "rate_limit_enabled": True,
    "rate_limit_operations_per_minute": SLOW,
    "rate_limit_operations_burst": 50,
    "rate_limit_ip_operations_per_minute": SLOW,
    "rate_limit_ip_operations_burst": 50,
    "rate_limit_sign_in_per_minute": SLOW,
    "rate_limit_sign_in_burst": 50,
    "rate_limit_start_generation_per_minute": SLOW,
    "rate_limit_start_generation_burst": 50,
}
VIEWER = "{ viewer { id } }"
CREATE = """
mutation Create($input: CreateVideoInput!) { createVideo(input: $input) { video { id } } }
"""
START = "mutation Start($id: ID!) { startGeneration(videoId: $id) { job { id status } } }"
SIGN_IN = """
mutation SignIn($input: SignInInput!) { signIn(input: $input) { accessToken } }
"""
SIGN_IN_INPUT = {"input": {"provider": "nowhere", "idToken": "not-a-token"}}


class Caller:
    """A client at one address, optionally signed in; keeps the HTTP response's headers."""

    def __init__(self, app: Starlette, settings: Settings, address: str) -> None:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        self.http = httpx.AsyncClient(transport=transport, base_url="http://studio.test")
        self.settings = settings
        self.token: str | None = None
        self.headers: httpx.Headers = httpx.Headers()

    def signed_in_as(self, user_id: uuid.UUID) -> Caller:
        self.token = issue_access_token(self.settings, user_id).token
        return self

    async def execute(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> GraphQLResponse:
        sent = {"Content-Type": "application/json"} | (headers or {})
        if self.token is not None:
            sent["Authorization"] = f"Bearer {self.token}"
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=sent
        )
        self.headers = response.headers
        return GraphQLResponse(response.status_code, response.json())


class LimitedApp:
    def __init__(self, app: Starlette, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self._callers: list[Caller] = []

    def caller(self, address: str | None = None) -> Caller:
        caller = Caller(self.app, self.settings, address or _address())
        self._callers.append(caller)
        return caller

    @property
    def engine(self) -> AsyncEngine:
        state = self.app.state.studio
        assert isinstance(state, AppState)
        return state.engine

    async def close(self) -> None:
        for caller in self._callers:
            await caller.http.aclose()


StartLimited = Callable[..., AbstractAsyncContextManager[LimitedApp]]


@pytest.fixture
def limited(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> StartLimited:
    """``async with limited(rate_limit_…=…) as app``: the app with rate limits on."""

    @asynccontextmanager
    async def start(**limits: Any) -> AsyncIterator[LimitedApp]:
        limited_settings = load_settings(database_url=settings.database_url, **(LIMITS | limits))
        application = create_app(limited_settings, sessionmaker=sessionmaker)
        async with application.router.lifespan_context(application):
            app = LimitedApp(application, limited_settings)
            try:
                yield app
            finally:
                await app.close()

    return start


def _address() -> str:
    """An address no other test uses: its own IPv6 /64 in the documentation prefix."""
    bits = uuid.uuid4().int
    return f"2001:db8:{bits & 0xFFFF:x}:{(bits >> 16) & 0xFFFF:x}::7"


def _rate_limited(response: GraphQLResponse) -> int:
    """The ``retryAfter`` of a refused operation (after checking it was refused whole)."""
    assert response.status_code == 200
    assert response.data is None, response.body
    [error] = response.errors
    assert error["extensions"]["code"] == "RATE_LIMITED", error
    assert set(error["extensions"]) == {"code", "retryAfter"}
    retry_after = error["extensions"]["retryAfter"]
    assert isinstance(retry_after, int)
    assert retry_after >= 1
    return retry_after


async def _count(session: AsyncSession, model: Any, *where: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


# --- refused operations ------------------------------------------------------------------


async def test_user_over_the_limit_is_refused_with_retry_after_and_nothing_written(
    limited: StartLimited, session: AsyncSession
) -> None:
    user = await make_user(session)
    await session.commit()
    video_input = {"input": {"title": "Tides", "description": "Moon.", "inputType": "DESCRIPTION"}}
    async with limited(rate_limit_operations_burst=2) as app:
        caller = app.caller().signed_in_as(user.id)
        for _ in range(2):
            (await caller.execute(CREATE, video_input)).ok()
        videos = await _count(session, Video, Video.user_id == user.id)
        audits = await _count(session, AuditEvent, AuditEvent.actor_id == user.id)

        refused = await caller.execute(CREATE, video_input)

        retry_after = _rate_limited(refused)
        assert caller.headers["Retry-After"] == str(retry_after)
        assert (videos, audits) == (2, 2)
        assert await _count(session, Video, Video.user_id == user.id) == videos
        assert await _count(session, AuditEvent, AuditEvent.actor_id == user.id) == audits
        # Another user at the same address is not held back by this one's bucket.
        other = await make_user(session)
        await session.commit()
        (await app.caller().signed_in_as(other.id).execute(VIEWER)).ok()


async def test_anonymous_sign_in_is_limited_per_address(limited: StartLimited) -> None:
    async with limited(rate_limit_sign_in_burst=2) as app:
        caller, elsewhere = app.caller(), app.caller()
        for _ in range(2):
            # No provider is configured: refused by the resolver, which means it ran.
            assert (await caller.execute(SIGN_IN, SIGN_IN_INPUT)).codes == ["BAD_USER_INPUT"]

        refused = await caller.execute(SIGN_IN, SIGN_IN_INPUT)

        assert caller.headers["Retry-After"] == str(_rate_limited(refused))
        assert (await elsewhere.execute(SIGN_IN, SIGN_IN_INPUT)).codes == ["BAD_USER_INPUT"]


async def test_sign_in_bucket_is_stricter_than_the_operations_bucket(limited: StartLimited) -> None:
    async with limited(rate_limit_sign_in_burst=1, rate_limit_ip_operations_burst=10) as app:
        caller = app.caller()
        assert (await caller.execute(SIGN_IN, SIGN_IN_INPUT)).codes == ["BAD_USER_INPUT"]
        _rate_limited(await caller.execute(SIGN_IN, SIGN_IN_INPUT))
        # Everything else from the address still runs.
        assert (await caller.execute(VIEWER)).ok() == {"viewer": None}


async def test_every_sign_in_field_of_a_document_is_counted(limited: StartLimited) -> None:
    twice = """
    mutation Twice($input: SignInInput!) {
      a: signIn(input: $input) { accessToken }
      b: signIn(input: $input) { accessToken }
    }
    """
    async with limited(rate_limit_sign_in_burst=3) as app:
        caller = app.caller()
        # Both fields are charged up front (the first one's error then ends the mutation).
        assert (await caller.execute(twice, SIGN_IN_INPUT)).codes == ["BAD_USER_INPUT"]
        assert (await caller.execute(SIGN_IN, SIGN_IN_INPUT)).codes == ["BAD_USER_INPUT"]
        _rate_limited(await caller.execute(SIGN_IN, SIGN_IN_INPUT))


async def test_a_document_with_more_sign_ins_than_the_burst_is_bad_input(
    limited: StartLimited,
) -> None:
    fields = " ".join(f"f{i}: signIn(input: $input) {{ accessToken }}" for i in range(3))
    async with limited(rate_limit_sign_in_burst=2) as app:
        response = await app.caller().execute(
            f"mutation Many($input: SignInInput!) {{ {fields} }}", SIGN_IN_INPUT
        )
    assert response.codes == ["BAD_USER_INPUT"]
    assert "at most 2 `signIn` fields" in response.errors[0]["message"]


async def test_start_generation_has_a_stricter_bucket_per_user(
    limited: StartLimited, session: AsyncSession
) -> None:
    user, other = await make_user(session), await make_user(session)
    first, second = await make_video(session, user), await make_video(session, user)
    others_video = await make_video(session, other)
    await session.commit()
    async with limited(rate_limit_start_generation_burst=1) as app:
        address = _address()
        caller = app.caller(address).signed_in_as(user.id)
        started = await caller.execute(START, {"id": to_global_id("Video", first.id)})
        assert started.ok()["startGeneration"]["job"]["status"] == "QUEUED"

        refused = await caller.execute(START, {"id": to_global_id("Video", second.id)})

        _rate_limited(refused)
        assert await _count(session, GenerationJob, GenerationJob.video_id == second.id) == 0
        status = await session.scalar(
            select(Video.status)
            .where(Video.id == second.id)
            .execution_options(populate_existing=True)
        )
        assert status is VideoStatus.DRAFT
        # The user's other operations, and another user's generations, still run.
        assert (await caller.execute(VIEWER)).ok() == {
            "viewer": {"id": to_global_id("User", user.id)}
        }
        someone_else = app.caller(address).signed_in_as(other.id)
        (await someone_else.execute(START, {"id": to_global_id("Video", others_video.id)})).ok()


async def test_a_refused_operation_costs_the_other_buckets_nothing(
    limited: StartLimited, session: AsyncSession
) -> None:
    """User A's refused requests do not use up the address they share with user B."""
    a, b = await make_user(session), await make_user(session)
    await session.commit()
    async with limited(rate_limit_operations_burst=1, rate_limit_ip_operations_burst=2) as app:
        address = _address()
        caller_a = app.caller(address).signed_in_as(a.id)
        caller_b = app.caller(address).signed_in_as(b.id)
        (await caller_a.execute(VIEWER)).ok()  # A: 1 of 1; the address: 1 of 2
        for _ in range(3):
            _rate_limited(await caller_a.execute(VIEWER))  # A's bucket refuses; nothing spent
        (await caller_b.execute(VIEWER)).ok()  # the address: 2 of 2
        _rate_limited(await app.caller(address).execute(VIEWER))


async def test_graphql_response_json_clients_get_429(limited: StartLimited) -> None:
    """Under ``application/graphql-response+json`` a request error has a 4xx status of its own
    (schema/transport/http_protocol.py); under ``application/json`` it stays 200 (the tests
    above)."""
    async with limited(rate_limit_ip_operations_burst=1) as app:
        caller = app.caller()
        (await caller.execute(VIEWER)).ok()
        refused = await caller.execute(
            VIEWER, headers={"Accept": "application/graphql-response+json"}
        )
    assert refused.status_code == 429
    assert "data" not in refused.body
    assert refused.codes == ["RATE_LIMITED"]
    assert caller.headers["Retry-After"] == str(refused.errors[0]["extensions"]["retryAfter"])


async def test_forwarded_for_is_not_read_by_the_app(limited: StartLimited) -> None:
    """X-Forwarded-For is uvicorn's to apply, from trusted proxies only (FORWARDED_ALLOW_IPS):
    a client sending one does not get a fresh bucket."""
    async with limited(rate_limit_ip_operations_burst=1) as app:
        caller = app.caller()
        (await caller.execute(VIEWER, headers={"X-Forwarded-For": "198.51.100.1"})).ok()
        _rate_limited(await caller.execute(VIEWER, headers={"X-Forwarded-For": "198.51.100.2"}))


async def test_limits_refill_at_their_rate(limited: StartLimited) -> None:
    # One operation every 2 s: the second, sent at once, is refused; after the hint it fits.
    async with limited(
        rate_limit_ip_operations_per_minute=30, rate_limit_ip_operations_burst=1
    ) as app:
        caller = app.caller()
        (await caller.execute(VIEWER)).ok()
        retry_after = _rate_limited(await caller.execute(VIEWER))
        assert retry_after <= 2
        await asyncio.sleep(retry_after)  # the refill interval itself
        (await caller.execute(VIEWER)).ok()


async def test_one_statement_per_operation(limited: StartLimited) -> None:
    async with limited() as app:
        caller = app.caller()
        statements: list[str] = []

        def record(*args: Any) -> None:
            statements.append(str(args[2]))

        event.listen(app.engine.sync_engine, "before_cursor_execute", record)
        try:
            (await caller.execute(VIEWER)).ok()
        finally:
            event.remove(app.engine.sync_engine, "before_cursor_execute", record)
    assert len([s for s in statements if "rate_limit_buckets" in s]) == 1


def test_no_check_when_limits_are_off(settings: Settings) -> None:
    assert settings.rate_limit_enabled is False  # the test run's default (tests/conftest.py)

    def has_check(schema_settings: Settings) -> bool:
        schema = create_schema(schema_settings)
        return any(isinstance(extension, RateLimitCheck) for extension in schema.get_extensions())

    assert not has_check(settings)
    assert has_check(load_settings(database_url=settings.database_url, rate_limit_enabled=True))


# --- the buckets themselves, on a controllable clock --------------------------------------


@pytest.fixture
def t0() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


async def test_a_bucket_refills_one_unit_per_emission_interval(
    engine: AsyncEngine, t0: datetime
) -> None:
    clock = t0
    limiter = RateLimiter(_rates(), clock=lambda: clock)
    charge = Charge(f"test:{uuid.uuid4()}", timedelta(seconds=10), burst=2)

    assert [await limiter.check(engine, [charge]) for _ in range(3)] == [None, None, 10]
    clock = t0 + timedelta(seconds=9)
    assert await limiter.check(engine, [charge]) == 1
    clock = t0 + timedelta(seconds=10)
    assert [await limiter.check(engine, [charge]) for _ in range(2)] == [None, 10]
    # Idle long enough to fill up again, and no fuller than the burst.
    clock = t0 + timedelta(minutes=5)
    assert [await limiter.check(engine, [charge]) for _ in range(3)] == [None, None, 10]


async def test_an_operation_costing_several_units_waits_for_all_of_them(
    engine: AsyncEngine, t0: datetime
) -> None:
    key = f"test:{uuid.uuid4()}"
    limiter = RateLimiter(_rates(), clock=lambda: t0)
    assert await limiter.check(engine, [Charge(key, timedelta(seconds=10), 3, cost=2)]) is None
    assert await limiter.check(engine, [Charge(key, timedelta(seconds=10), 3, cost=2)]) == 10


async def test_full_buckets_are_swept_and_others_kept(engine: AsyncEngine, t0: datetime) -> None:
    short, long = f"test:{uuid.uuid4()}", f"test:{uuid.uuid4()}"
    limiter = RateLimiter(_rates(), clock=lambda: t0)
    await limiter.check(engine, [Charge(short, timedelta(seconds=10), 5)])
    await limiter.check(engine, [Charge(long, timedelta(minutes=10), 5)])

    async with engine.connect() as connection:
        await rate_limits.sweep_idle(connection, now=t0 + timedelta(seconds=11))
        await connection.commit()
        left = set(
            (
                await connection.scalars(
                    select(RateLimitBucket.key).where(RateLimitBucket.key.in_([short, long]))
                )
            ).all()
        )
    assert left == {long}


async def test_an_unreachable_database_lets_operations_through(
    caplog: pytest.LogCaptureFixture,
) -> None:
    nowhere = create_async_engine(
        f"postgresql+asyncpg://studio@127.0.0.1:{free_port()}/studio", connect_args={"timeout": 2}
    )
    try:
        limiter = RateLimiter(_rates())
        charge = Charge("test:unreachable", timedelta(seconds=1), 1)
        assert await limiter.check(nowhere, [charge]) is None
    finally:
        await nowhere.dispose()
    assert "rate limits not checked" in caplog.text


async def test_the_table_is_unlogged(session: AsyncSession) -> None:
    persistence = await session.scalar(
        text("SELECT relpersistence::text FROM pg_class WHERE relname = 'rate_limit_buckets'")
    )
    assert persistence == "u"


# --- client addresses ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("client", "counted_as"),
    [
        (("203.0.113.9", 1234), "203.0.113.9"),
        (("2001:db8:1:2:aaaa::1", 1234), "2001:db8:1:2::/64"),
        (("2001:db8:1:2:bbbb::9", 1234), "2001:db8:1:2::/64"),
        (("::ffff:203.0.113.9", 1234), "203.0.113.9"),
        (None, "unknown"),
    ],
)
def test_client_address_counts_ipv6_per_64(client: tuple[str, int] | None, counted_as: str) -> None:
    assert client_address({"type": "http", "client": client}) == counted_as


def _rates() -> Rates:
    return Rates.from_settings(load_settings(**LIMITS))

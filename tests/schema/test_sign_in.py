"""``signIn`` (SPEC §5 Authentication) against a local OpenID Connect issuer: real keys, a JWKS
served over HTTP, real tokens. Every refused sign-in leaves the database as it was."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from app import jwks, oidc
from app.errors import Unauthenticated
from app.main import create_app
from app.settings import Settings, SettingsError, load_settings
from db.models import AuditEvent, User
from db.url import DatabaseURL
from schema.mutations.auth import MAX_ID_TOKEN_BYTES
from tests.factories import make_user
from tests.support.graphql import GraphQLClient, GraphQLResponse
from tests.support.oidc_issuer import (
    LocalIssuer,
    hmac_token,
    make_key,
    running_issuer,
    unsigned_token,
)

SIGN_IN = """
mutation SignIn($input: SignInInput!) {
  signIn(input: $input) { accessToken expiresAt user { id email displayName avatarUrl } }
}
"""
VIEWER = "{ viewer { email } }"


class FakeClock:
    """The JWKS cache's clock, moved by the test instead of by sleeping."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    with running_issuer() as issuer:
        yield issuer


@pytest.fixture
def clock(issuer: LocalIssuer) -> FakeClock:
    clock = FakeClock()
    jwks.jwks_cache(_provider(issuer).jwks_url).clock = clock
    return clock


@pytest.fixture
async def app(
    database: DatabaseURL,
    sessionmaker: async_sessionmaker[AsyncSession],
    issuer: LocalIssuer,
    clock: FakeClock,
) -> AsyncIterator[Starlette]:
    """The application configured with the local issuer (and a provider limited to ES256)."""
    settings = load_settings(
        database_url=database.render(hide_password=False),
        oauth_providers={
            "local": issuer.provider_config(),
            "strict": issuer.provider_config(allowed_algorithms=["ES256"]),
            "down": issuer.provider_config(jwks_url=f"http://127.0.0.1:{_closed_port()}/jwks"),
        },
    )
    application = create_app(settings, sessionmaker=sessionmaker)
    async with application.router.lifespan_context(application):
        yield application


async def sign_in(graphql: GraphQLClient, token: str, provider: str = "local") -> GraphQLResponse:
    return await graphql.execute(SIGN_IN, {"input": {"provider": provider, "idToken": token}})


async def _counts(session: AsyncSession) -> tuple[int, int]:
    users = await session.scalar(select(func.count()).select_from(User))
    events = await session.scalar(select(func.count()).select_from(AuditEvent))
    return int(users or 0), int(events or 0)


def _provider(issuer: LocalIssuer) -> oidc.OidcProvider:
    return oidc.parse_providers({"local": issuer.provider_config()})["local"]


def _refresh_interval(issuer: LocalIssuer) -> float:
    return jwks.jwks_cache(_provider(issuer).jwks_url).min_refresh_interval


def _closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- signing in --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["RSA", "EC"])
async def test_first_sign_in_creates_the_user_and_its_token_works(
    kind: str, session: AsyncSession, graphql: GraphQLClient, issuer: LocalIssuer
) -> None:
    key = issuer.add_key("EC") if kind == "EC" else next(iter(issuer.keys.values()))
    claims = issuer.claims(name="  Ada Lovelace  ")
    data = (await sign_in(graphql, issuer.token(claims, key=key))).ok()["signIn"]
    assert data["user"]["email"] == claims["email"]
    assert data["user"]["displayName"] == "Ada Lovelace"
    assert data["user"]["avatarUrl"] == claims["picture"]
    expires = datetime.fromisoformat(data["expiresAt"])
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)

    user = await session.scalar(select(User).where(User.email == claims["email"]))
    assert user is not None
    assert (user.oauth_provider, user.oauth_subject) == ("local", claims["sub"])
    event = await session.scalar(select(AuditEvent).where(AuditEvent.object_id == user.id))
    assert event is not None
    assert (event.action, event.actor_id) == ("user.create", user.id)
    assert event.request_id

    signed_in = GraphQLClient(graphql.http, graphql.settings, data["accessToken"])
    assert (await signed_in.execute(VIEWER)).ok() == {"viewer": {"email": claims["email"]}}


async def test_the_payload_reads_as_the_new_viewer(
    graphql: GraphQLClient, issuer: LocalIssuer
) -> None:
    """Connections under the payload's user need a viewer; signIn makes the caller one."""
    response = await graphql.execute(
        """mutation($input: SignInInput!) {
            signIn(input: $input) {
                user { email videos { totalCount } auditEvents { totalCount } }
            }
        }""",
        {"input": {"provider": "local", "idToken": issuer.token(issuer.claims())}},
    )
    user = response.ok()["signIn"]["user"]
    assert user["videos"] == {"totalCount": 0}
    assert user["auditEvents"] == {"totalCount": 1}  # this sign-in (user.create)


async def test_second_sign_in_updates_the_profile_and_returns_the_same_user(
    session: AsyncSession, graphql: GraphQLClient, issuer: LocalIssuer
) -> None:
    first_claims = issuer.claims()
    first = (await sign_in(graphql, issuer.token(first_claims))).ok()["signIn"]["user"]
    counts = await _counts(session)
    again = first_claims | {"name": "Ada King", "picture": "https://images.example.com/new.png"}
    second = (await sign_in(graphql, issuer.token(again))).ok()["signIn"]["user"]
    assert second["id"] == first["id"]
    assert (second["displayName"], second["avatarUrl"]) == ("Ada King", again["picture"])
    assert await _counts(session) == (counts[0], counts[1] + 1)
    event = await session.scalar(select(AuditEvent).where(AuditEvent.action == "user.sign_in"))
    assert event is not None
    assert event.diff == {
        "display_name": ["Ada Lovelace", "Ada King"],
        "avatar_url": [first_claims["picture"], again["picture"]],
    }


async def test_profile_fields_the_token_leaves_out_are_kept(
    session: AsyncSession, graphql: GraphQLClient, issuer: LocalIssuer
) -> None:
    claims = issuer.claims()
    (await sign_in(graphql, issuer.token(claims))).ok()
    user = (await sign_in(graphql, issuer.token(claims | {"name": None}))).ok()["signIn"]["user"]
    assert user["displayName"] == "Ada Lovelace"


@pytest.mark.parametrize("picture", ["javascript:alert(1)", "https://[", "http://[::1"])
async def test_a_picture_that_is_not_a_web_url_is_dropped(
    graphql: GraphQLClient, issuer: LocalIssuer, picture: str
) -> None:
    # An unbalanced bracket made urlsplit raise, and signIn answer INTERNAL.
    token = issuer.token(issuer.claims(picture=picture))
    assert (await sign_in(graphql, token)).ok()["signIn"]["user"]["avatarUrl"] is None


# --- refused tokens ----------------------------------------------------------------------------


def _expired(issuer: LocalIssuer) -> str:
    now = datetime.now(UTC)
    return issuer.token(issuer.claims(iat=now - timedelta(hours=2), exp=now - timedelta(hours=1)))


def _other_key_same_kid(issuer: LocalIssuer) -> str:
    published = next(iter(issuer.keys.values()))
    return issuer.token(key=make_key("RSA", published.kid))


def _hs256_with_public_key(issuer: LocalIssuer) -> str:
    published = next(iter(issuer.keys.values()))
    return hmac_token(issuer.claims(), secret=published.public_pem(), kid=published.kid)


def _ec_signature_under_rsa_kid(issuer: LocalIssuer) -> str:
    rsa_kid = next(iter(issuer.keys))
    return issuer.token(key=issuer.add_key("EC"), kid=rsa_kid)


REFUSED: dict[str, tuple[Callable[[LocalIssuer], str], str]] = {
    "wrong audience": (
        lambda issuer: issuer.token(issuer.claims(aud="someone-elses-app")),
        "another application",
    ),
    "wrong issuer": (
        lambda issuer: issuer.token(issuer.claims(iss="https://accounts.example.net")),
        "issuer",
    ),
    "expired": (_expired, "expired"),
    "not valid yet": (
        lambda issuer: issuer.token(issuer.claims(nbf=datetime.now(UTC) + timedelta(minutes=10))),
        "not valid yet",
    ),
    "issued in the future": (
        lambda issuer: issuer.token(issuer.claims(iat=datetime.now(UTC) + timedelta(minutes=10))),
        "not valid yet",
    ),
    "missing sub": (lambda issuer: issuer.token(issuer.claims(sub=None)), "`sub`"),
    "bad signature": (_other_key_same_kid, "signature"),
    "alg none": (
        lambda issuer: unsigned_token(issuer.claims(), kid=next(iter(issuer.keys))),
        "algorithm",
    ),
    "HS256 with the public key": (_hs256_with_public_key, "algorithm"),
    "EC signature under an RSA key id": (_ec_signature_under_rsa_kid, "algorithm"),
    "unknown kid": (
        lambda issuer: issuer.token(key=issuer.add_key("RSA", publish=False)),
        "does not publish",
    ),
    "not a JWT": (lambda issuer: "not-a-jwt", "malformed"),
    "no email": (lambda issuer: issuer.token(issuer.claims(email=None)), "no email"),
    "unverified email": (
        lambda issuer: issuer.token(issuer.claims(email_verified=False)),
        "not verified",
    ),
}


@pytest.mark.parametrize("case", REFUSED)
async def test_refused_id_token_is_unauthenticated_and_writes_nothing(
    case: str, session: AsyncSession, graphql: GraphQLClient, issuer: LocalIssuer
) -> None:
    make_token, reason = REFUSED[case]
    token = make_token(issuer)
    before = await _counts(session)
    response = await sign_in(graphql, token)
    assert response.codes == ["UNAUTHENTICATED"], response.body
    assert response.data is None
    assert reason in response.errors[0]["message"]
    assert token not in response.errors[0]["message"]
    assert await _counts(session) == before


async def test_provider_limited_to_es256_refuses_rs256(
    session: AsyncSession, graphql: GraphQLClient, issuer: LocalIssuer
) -> None:
    before = await _counts(session)
    refused = await sign_in(graphql, issuer.token(), provider="strict")
    assert refused.codes == ["UNAUTHENTICATED"]
    assert await _counts(session) == before
    accepted = await sign_in(graphql, issuer.token(key=issuer.add_key("EC")), provider="strict")
    accepted.ok()


async def test_unknown_provider_is_bad_user_input(
    session: AsyncSession, graphql: GraphQLClient, issuer: LocalIssuer
) -> None:
    before = await _counts(session)
    response = await sign_in(graphql, issuer.token(), provider="nowhere")
    assert response.codes == ["BAD_USER_INPUT"]
    assert response.errors[0]["extensions"]["field"] == "provider"
    assert "down, local, strict" in response.errors[0]["message"]
    assert await _counts(session) == before


async def test_overlong_id_token_is_refused_before_it_is_read(
    session: AsyncSession, graphql: GraphQLClient, issuer: LocalIssuer
) -> None:
    before = await _counts(session)
    response = await sign_in(graphql, "e" * (MAX_ID_TOKEN_BYTES + 1))
    assert response.codes == ["BAD_USER_INPUT"]
    assert response.errors[0]["extensions"]["field"] == "idToken"
    assert issuer.jwks_requests == 0
    assert await _counts(session) == before


# --- accounts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "identity",
    [{}, {"oauth_provider": "elsewhere", "oauth_subject": "someone"}],
    ids=["development user", "another identity"],
)
async def test_email_used_by_another_account_is_a_conflict(
    identity: dict[str, str], session: AsyncSession, graphql: GraphQLClient, issuer: LocalIssuer
) -> None:
    """An address never links a new identity to an existing account."""
    await make_user(session, email="ada@example.com", **identity)
    await session.commit()
    before = await _counts(session)
    response = await sign_in(graphql, issuer.token(issuer.claims(email="ADA@example.com")))
    assert response.codes == ["CONFLICT"]
    assert response.errors[0]["message"] == "This email address is already used by another account."
    assert await _counts(session) == before


async def test_changing_to_an_address_another_account_uses_is_a_conflict(
    session: AsyncSession, graphql: GraphQLClient, issuer: LocalIssuer
) -> None:
    claims = issuer.claims()
    (await sign_in(graphql, issuer.token(claims))).ok()
    await make_user(session, email="taken@example.com")
    await session.commit()
    before = await _counts(session)
    response = await sign_in(graphql, issuer.token(claims | {"email": "taken@example.com"}))
    assert response.codes == ["CONFLICT"]
    assert await _counts(session) == before
    user = await session.scalar(select(User).where(User.oauth_subject == claims["sub"]))
    assert user is not None
    await session.refresh(user)
    assert user.email == claims["email"]


async def test_deleted_account_cannot_sign_in(
    session: AsyncSession, graphql: GraphQLClient, issuer: LocalIssuer
) -> None:
    claims = issuer.claims()
    await make_user(
        session,
        email=claims["email"],
        oauth_provider="local",
        oauth_subject=claims["sub"],
        deleted_at=datetime.now(UTC),
    )
    await session.commit()
    before = await _counts(session)
    response = await sign_in(graphql, issuer.token(claims))
    assert response.codes == ["UNAUTHENTICATED"]
    assert await _counts(session) == before


# --- the provider's keys -----------------------------------------------------------------------


async def test_rotated_key_is_accepted_after_the_jwks_is_fetched_again(
    graphql: GraphQLClient, issuer: LocalIssuer, clock: FakeClock
) -> None:
    (await sign_in(graphql, issuer.token())).ok()
    assert issuer.jwks_requests == 1
    rotated = issuer.add_key("RSA")  # the provider publishes a new key and signs with it
    clock.advance(_refresh_interval(issuer))
    (await sign_in(graphql, issuer.token(key=rotated))).ok()
    assert issuer.jwks_requests == 2
    (await sign_in(graphql, issuer.token())).ok()  # the old key still verifies, from the cache
    assert issuer.jwks_requests == 2


async def test_unknown_key_ids_cost_at_most_one_fetch_per_interval(
    session: AsyncSession, graphql: GraphQLClient, issuer: LocalIssuer, clock: FakeClock
) -> None:
    (await sign_in(graphql, issuer.token())).ok()
    interval = _refresh_interval(issuer)
    before = await _counts(session)
    garbage = [issuer.token(kid=f"made-up-{n}") for n in range(5)]

    clock.advance(interval)
    for token in garbage:  # one after another, through the API
        assert (await sign_in(graphql, token)).codes == ["UNAUTHENTICATED"]
    assert issuer.jwks_requests == 2

    clock.advance(interval / 2)  # within the interval: no fetch at all
    assert (await sign_in(graphql, garbage[0])).codes == ["UNAUTHENTICATED"]
    assert issuer.jwks_requests == 2

    clock.advance(interval)  # all at once
    provider = _provider(issuer)
    results = await asyncio.gather(
        *(oidc.verify_id_token(provider, token) for token in garbage * 4), return_exceptions=True
    )
    assert all(isinstance(result, Unauthenticated) for result in results)
    assert issuer.jwks_requests == 3
    assert await _counts(session) == before


async def test_unreachable_provider_is_unauthenticated(
    session: AsyncSession, graphql: GraphQLClient, issuer: LocalIssuer
) -> None:
    before = await _counts(session)
    response = await sign_in(graphql, issuer.token(), provider="down")
    assert response.codes == ["UNAUTHENTICATED"]
    assert "cannot be reached" in response.errors[0]["message"]
    assert await _counts(session) == before


# --- logs --------------------------------------------------------------------------------------


async def test_tokens_never_reach_the_logs(
    graphql: GraphQLClient, issuer: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    accepted = issuer.token()
    access = (await sign_in(graphql, accepted)).ok()["signIn"]["accessToken"]
    refused = [make(issuer) for make, _ in REFUSED.values()]
    for token in refused:
        await sign_in(graphql, token)
    everything = caplog.text + "".join(repr(vars(record)) for record in caplog.records)
    for token in [accepted, access, *refused]:
        for part in {token, *token.split(".")}:
            if len(part) > 20:
                assert part not in everything


# --- configuration -----------------------------------------------------------------------------

GOOD = {
    "issuer": "https://id.example.com",
    "audience": "app",
    "jwks_url": "https://id.example.com/keys",
}


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"google": {"issuer": "https://id.example.com"}}, "jwks_url"),
        ({"google": GOOD | {"jwks_url": "http://id.example.com/keys"}}, "https://"),
        ({"google": GOOD | {"allowed_algorithms": ["HS256"]}}, "cannot allow ['HS256']"),
        ({"google": GOOD | {"allowed_algorithms": ["none"]}}, "cannot allow ['none']"),
        ({"google": GOOD | {"client_id": "app"}}, "either audience or client_id"),
        ({"google": GOOD | {"jwks_uri": "https://id.example.com/keys"}}, "unknown keys"),
        ({"google": GOOD | {"audience": []}}, "list of them"),
        ({"google": "https://id.example.com"}, "must be an object"),
        ({"bad name!": GOOD}, "names are"),
    ],
)
def test_bad_provider_settings_name_the_variable(value: dict[str, Any], problem: str) -> None:
    with pytest.raises(SettingsError) as raised:
        oidc.parse_providers(value)
    assert str(raised.value).startswith("STUDIO_OAUTH_PROVIDERS: ")
    assert problem in str(raised.value)


def test_providers_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "STUDIO_OAUTH_PROVIDERS",
        '{"google": {"issuer": "https://id.example.com", "client_id": ["web", "ios"],'
        ' "jwks_url": "https://id.example.com/keys"},'
        ' "work": ' + json.dumps(GOOD) + "}",
    )
    settings: Settings = load_settings()
    providers = oidc.parse_providers(settings.oauth_providers)
    assert sorted(providers) == ["google", "work"]
    assert providers["google"].audiences == ("web", "ios")
    assert "HS256" not in providers["google"].algorithms
    assert "none" not in providers["google"].algorithms

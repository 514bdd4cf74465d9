"""Who is calling (SPEC §5 Authentication): signed-out callers read nothing but the schema, every
doubtful token is refused, tokens never reach the logs, and `studio token` mints working ones."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app import auth
from app.auth import issue_access_token
from app.errors import Unauthenticated
from app.settings import Settings
from db.models import User
from db.queries import videos as video_queries
from schema.relay import to_global_id
from tests.factories import make_job, make_user, make_video
from tests.support.graphql import GraphQLClient

VIEWER = "{ viewer { email } }"


@pytest.fixture
async def user(session: AsyncSession) -> User:
    return await make_user(session)


# --- signed out -------------------------------------------------------------------------------


async def test_viewer_is_null_without_a_token(graphql: GraphQLClient) -> None:
    response = await graphql.execute(VIEWER)
    assert response.body == {"data": {"viewer": None}}


async def test_typename_works_signed_out(graphql: GraphQLClient) -> None:
    assert (await graphql.execute("{ __typename }")).ok() == {"__typename": "Query"}


async def test_introspection_works_signed_out(graphql: GraphQLClient) -> None:
    response = await graphql.execute("{ __schema { queryType { name } } }")
    assert response.ok() == {"__schema": {"queryType": {"name": "Query"}}}


@pytest.mark.parametrize(
    "query",
    [
        "{ videos { totalCount } }",
        "{ videos { edges { node { id } } } }",
        "{ voiceProfiles { totalCount } }",
        "query ($id: ID!) { node(id: $id) { id } }",
        "query ($id: ID!) { nodes(ids: [$id]) { id } }",
        "query ($id: ID!) { video(id: $id) { id } }",
        "query ($job: ID!) { generationJob(id: $job) { id } }",
    ],
    ids=["videos.totalCount", "videos.edges", "voiceProfiles", "node", "nodes", "video", "job"],
)
async def test_every_other_read_is_unauthenticated_without_a_token(
    session: AsyncSession, graphql: GraphQLClient, user: User, query: str
) -> None:
    # Real ids of real objects: signed out, even an existing object is not readable.
    video = await make_video(session, user)
    job = await make_job(session, video)
    variables = {
        "id": to_global_id("Video", video.id),
        "job": to_global_id("GenerationJob", job.id),
    }
    response = await graphql.execute(
        query, {k: v for k, v in variables.items() if f"${k}" in query}
    )
    assert response.codes == ["UNAUTHENTICATED"]
    assert response.data is None or set(response.data.values()) == {None}


# --- tokens that are refused ------------------------------------------------------------------


def _claims(settings: Settings, user_id: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    now = int(datetime.now(UTC).timestamp())
    claims = {
        "sub": str(user_id),
        "iss": settings.token_issuer,
        "aud": settings.token_audience,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    return {name: value for name, value in (claims | overrides).items() if value is not None}


def _sign(claims: dict[str, Any], key: str, alg: str = "HS256") -> str:
    """A compact JWS made by hand (PyJWT rightly refuses to make some of these)."""
    header = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims).encode())
    signing_input = f"{header}.{payload}".encode()
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
    signature = (
        b"" if alg == "none" else hmac.new(key.encode(), signing_input, digest[alg]).digest()
    )
    return f"{header}.{payload}.{_b64(signature)}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _with_payload(token: str, claims: dict[str, Any]) -> str:
    """``token`` with its claims replaced and its original signature kept."""
    header, _, signature = token.split(".")
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


def _in(seconds: int) -> int:
    return int(datetime.now(UTC).timestamp()) + seconds


TokenMaker = Callable[[Settings, uuid.UUID], str]

# Each differs from a good token in one way only (see the control test below).
REFUSED: dict[str, TokenMaker] = {
    "bad-signature": lambda s, u: _sign(_claims(s, u), s.secret_key + "-not-it"),
    "tampered-subject": lambda s, u: _with_payload(
        issue_access_token(s, u).token, _claims(s, uuid.uuid4())
    ),
    "expired": lambda s, u: (
        issue_access_token(
            s, u, now=datetime.now(UTC) - timedelta(seconds=s.token_ttl_seconds + 60)
        ).token
    ),
    "not-yet-valid": lambda s, u: _sign(_claims(s, u, nbf=_in(600)), s.secret_key),
    "wrong-audience": lambda s, u: _sign(_claims(s, u, aud="another-api"), s.secret_key),
    "wrong-issuer": lambda s, u: _sign(_claims(s, u, iss="https://evil.example"), s.secret_key),
    "no-audience": lambda s, u: _sign(_claims(s, u, aud=None), s.secret_key),
    "no-expiry": lambda s, u: _sign(_claims(s, u, exp=None), s.secret_key),
    "no-subject": lambda s, u: _sign(_claims(s, u, sub=None), s.secret_key),
    "subject-not-a-uuid": lambda s, u: _sign(_claims(s, u, sub="admin"), s.secret_key),
    "alg-none": lambda s, u: _sign(_claims(s, u), s.secret_key, alg="none"),
    "alg-none-no-signature": lambda s, u: _sign(_claims(s, u), "", alg="none").rstrip("."),
    "hs512-right-secret": lambda s, u: _sign(_claims(s, u), s.secret_key, alg="HS512"),
    "hs384-right-secret": lambda s, u: _sign(_claims(s, u), s.secret_key, alg="HS384"),
    "garbage": lambda s, u: "not.a.token",
    "empty-segments": lambda s, u: "..",
}


@pytest.mark.parametrize("kind", list(REFUSED))
@pytest.mark.parametrize("query", [VIEWER, "{ videos { totalCount } }"], ids=["viewer", "videos"])
async def test_refused_token_is_unauthenticated(
    graphql: GraphQLClient, settings: Settings, user: User, kind: str, query: str
) -> None:
    token = REFUSED[kind](settings, user.id)
    response = await graphql.execute(query, headers={"Authorization": f"Bearer {token}"})
    assert response.codes == ["UNAUTHENTICATED"], response.body


async def test_the_same_claims_properly_signed_are_accepted(
    graphql: GraphQLClient, settings: Settings, user: User
) -> None:
    """The control for the refusals above: only what was changed made them fail."""
    token = _sign(_claims(settings, user.id), settings.secret_key)
    response = await graphql.execute(VIEWER, headers={"Authorization": f"Bearer {token}"})
    assert response.ok() == {"viewer": {"email": user.email}}


async def test_a_token_verified_before_is_refused_once_it_expires(
    graphql: GraphQLClient, settings: Settings, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verified tokens are remembered (`app.auth.read_access_token`); their expiry is not."""
    token = issue_access_token(settings, user.id).token
    headers = {"Authorization": f"Bearer {token}"}
    assert (await graphql.execute(VIEWER, headers=headers)).ok() == {
        "viewer": {"email": user.email}
    }
    later = time.time() + settings.token_ttl_seconds + 11  # past the expiry and its leeway
    monkeypatch.setattr(time, "time", lambda: later)
    response = await graphql.execute(VIEWER, headers=headers)
    assert response.codes == ["UNAUTHENTICATED"], response.body
    assert "expired" in response.body["errors"][0]["message"]


async def test_a_remembered_token_is_refused_under_another_secret(
    graphql: GraphQLClient, settings: Settings, user: User
) -> None:
    token = issue_access_token(settings, user.id).token
    assert auth.read_access_token(settings, token).user_id == user.id
    rotated = settings.model_copy(update={"secret_key": settings.secret_key + "-rotated"})
    with pytest.raises(Unauthenticated, match="not valid"):
        auth.read_access_token(rotated, token)


@pytest.mark.parametrize(
    "authorization",
    ["Basic dXNlcjpwYXNz", "Token {token}", "{token}", "Bearer", "Bearer    ", "Bearer a b"],
    ids=["basic", "token-scheme", "no-scheme", "bearer-without-token", "bearer-blank", "two-words"],
)
async def test_authorization_that_is_not_a_bearer_token_is_unauthenticated(
    graphql: GraphQLClient, settings: Settings, user: User, authorization: str
) -> None:
    token = issue_access_token(settings, user.id).token
    header = authorization.format(token=token)
    response = await graphql.execute(VIEWER, headers={"Authorization": header})
    assert response.codes == ["UNAUTHENTICATED"], response.body


async def test_bearer_scheme_is_case_insensitive(
    graphql: GraphQLClient, settings: Settings, user: User
) -> None:
    token = issue_access_token(settings, user.id).token
    response = await graphql.execute(VIEWER, headers={"Authorization": f"bearer {token}"})
    assert response.ok() == {"viewer": {"email": user.email}}


@pytest.mark.parametrize("query", [VIEWER, "{ videos { totalCount } }"], ids=["viewer", "videos"])
async def test_token_of_a_user_that_does_not_exist_is_unauthenticated(
    graphql: GraphQLClient, query: str
) -> None:
    response = await graphql.as_user(uuid.uuid4()).execute(query)
    assert response.codes == ["UNAUTHENTICATED"], response.body


@pytest.mark.parametrize("query", [VIEWER, "{ videos { totalCount } }"], ids=["viewer", "videos"])
async def test_token_of_a_deleted_user_is_unauthenticated(
    session: AsyncSession, graphql: GraphQLClient, query: str
) -> None:
    user = await make_user(session, deleted_at=datetime.now(UTC))
    await make_video(session, user)
    response = await graphql.as_user(user.id).execute(query)
    assert response.codes == ["UNAUTHENTICATED"], response.body


# --- tokens stay out of the logs --------------------------------------------------------------


async def test_refused_tokens_are_not_logged(
    graphql: GraphQLClient, settings: Settings, user: User, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = [make(settings, user.id) for make in REFUSED.values()]
    for token in tokens:
        await graphql.execute(VIEWER, headers={"Authorization": f"Bearer {token}"})
    _assert_not_logged(caplog, tokens)


async def test_token_is_not_logged_with_an_internal_error(
    graphql: GraphQLClient,
    user: User,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def fail(*args: object, **kwargs: object) -> object:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(video_queries, "videos_by_ids", fail)
    caplog.set_level(logging.DEBUG)
    client = graphql.as_user(user.id)
    assert client.token is not None
    response = await client.execute(
        "query ($id: ID!) { video(id: $id) { id } }", {"id": to_global_id("Video", uuid.uuid4())}
    )
    assert response.codes == ["INTERNAL"]
    assert any(record.levelno >= logging.ERROR for record in caplog.records)
    _assert_not_logged(caplog, [client.token])


def _assert_not_logged(caplog: pytest.LogCaptureFixture, tokens: list[str]) -> None:
    """Neither in the formatted text nor in any attribute a structured formatter would emit."""
    everything = caplog.text + "".join(repr(vars(record)) for record in caplog.records)
    for token in tokens:
        for part in {token, *token.split(".")} - {""}:
            if len(part) > 20:
                assert part not in everything

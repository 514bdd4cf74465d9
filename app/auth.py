"""Access tokens: who is calling (SPEC §5 Authentication).

The API signs its own short-lived access tokens (HS256 with ``STUDIO_SECRET_KEY``); `signIn`
exchanges a provider's id token for one, and `studio token` mints one for development. A request
carries it as ``Authorization: Bearer <token>``; a websocket may send it in the
``connection_init`` payload instead. This module only turns a token into a `Viewer` (or says
why it cannot); it reads no database. Tokens are never logged.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import jwt

from app.errors import Unauthenticated
from app.settings import Settings

ALGORITHM = "HS256"  # pinned: a token naming any other algorithm is refused
_REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub"]
_LEEWAY = timedelta(seconds=10)
#: How many verified tokens are remembered (a token and its claims: about 0.5 KB each).
VERIFIED_TOKENS = 4096


@dataclass(frozen=True)
class Viewer:
    """The signed-in user, as the access token says. Ownership checks key on ``user_id``."""

    user_id: uuid.UUID
    expires_at: datetime


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_at: datetime


def issue_access_token(
    settings: Settings, user_id: uuid.UUID, *, now: datetime | None = None
) -> AccessToken:
    issued = (now or datetime.now(UTC)).replace(microsecond=0)
    expires = issued + timedelta(seconds=settings.token_ttl_seconds)
    claims = {
        "sub": str(user_id),
        "iss": settings.token_issuer,
        "aud": settings.token_audience,
        "iat": issued,
        "nbf": issued,
        "exp": expires,
        "jti": uuid.uuid4().hex,
    }
    return AccessToken(jwt.encode(claims, settings.secret_key, algorithm=ALGORITHM), expires)


def read_access_token(settings: Settings, token: str) -> Viewer:
    """The viewer a token names; `Unauthenticated` for a bad, expired or foreign token.

    A token whose signature and claims verified once is remembered (`VERIFIED_TOKENS`, least
    recently used first out, by its text and the key, issuer and audience it verified against),
    with the `Viewer` it names: verification costs more than the rest of a small read. What can
    change with time, its expiry, is checked on every use. Nothing else can: a token is not
    revocable, only short.
    """
    try:
        viewer, expires = _verified(
            token, settings.secret_key, settings.token_audience, settings.token_issuer
        )
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("The access token has expired; sign in again.") from None
    except (jwt.InvalidTokenError, ValueError):
        raise Unauthenticated("The access token is not valid.") from None
    if time.time() > expires + _LEEWAY.total_seconds():  # expired since it was verified
        raise Unauthenticated("The access token has expired; sign in again.")
    return viewer


@lru_cache(maxsize=VERIFIED_TOKENS)
def _verified(token: str, key: str, audience: str, issuer: str) -> tuple[Viewer, int]:
    """The viewer and expiry of a token that verifies (a failure is raised, never remembered)."""
    claims = jwt.decode(
        token,
        key,
        algorithms=[ALGORITHM],
        audience=audience,
        issuer=issuer,
        leeway=_LEEWAY,
        options={"require": _REQUIRED_CLAIMS},
    )
    expires = int(claims["exp"])
    viewer = Viewer(
        user_id=uuid.UUID(str(claims["sub"])), expires_at=datetime.fromtimestamp(expires, UTC)
    )
    return viewer, expires


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` value; `Unauthenticated` for another scheme."""
    if authorization is None or not authorization.strip():
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Send the access token as 'Authorization: Bearer <token>'.")
    return token.strip()


def viewer_from_authorization(settings: Settings, authorization: str | None) -> Viewer | None:
    token = bearer_token(authorization)
    return None if token is None else read_access_token(settings, token)


def authorization_from_params(params: Mapping[str, object] | None) -> str | None:
    """The ``Authorization`` entry of a websocket ``connection_init`` payload, any key case.

    GraphiQL and most clients send ``{"Authorization": "Bearer …"}``; some lower-case the key.
    """
    for key, value in (params or {}).items():
        if key.lower() == "authorization" and isinstance(value, str):
            return value
    return None

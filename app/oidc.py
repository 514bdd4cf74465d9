"""OpenID Connect sign-in (SPEC §5 Authentication): a provider's id token → who signed in.

Providers come from ``STUDIO_OAUTH_PROVIDERS`` (see `parse_providers`). Each provider's signing
keys (its JWKS) are fetched over HTTP, cached for an hour, and fetched again early when a token
names a key id the cache does not know (the provider rotated its keys) — but at most once per
`JwksCache.min_refresh_interval`, so tokens with made-up key ids cannot make this process hammer
the provider.

The signature algorithm comes from the key, never from the token alone: RSA keys verify RS*/PS*,
EC keys the ES* of their curve, OKP keys EdDSA. ``none`` and HMAC are never accepted (an HMAC
"signed" with the provider's public key is the classic algorithm-confusion attack). Tokens are
never logged and never quoted in error messages.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt

from app.errors import BadUserInput, Unauthenticated
from app.settings import Settings, SettingsError

logger = logging.getLogger("studio.oidc")

SETTING = "STUDIO_OAUTH_PROVIDERS"
LEEWAY_SECONDS = 60
RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
EC_ALGORITHM_BY_CURVE = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
OKP_CURVES = frozenset({"Ed25519", "Ed448"})
SUPPORTED_ALGORITHMS = RSA_ALGORITHMS | frozenset(EC_ALGORITHM_BY_CURVE.values()) | {"EdDSA"}

_REQUIRED_KEYS = ("issuer", "jwks_url")
_OPTIONAL_KEYS = ("audience", "client_id", "allowed_algorithms", "require_verified_email")
_PROVIDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "sub"]
_MAX_JWKS_BYTES = 512 * 1024
_NAME_MAX = 100
_URL_MAX = 2048


@dataclass(frozen=True)
class OidcProvider:
    name: str
    issuer: str
    #: The client ids this API accepts tokens for (the token's ``aud`` must name one).
    audiences: tuple[str, ...]
    jwks_url: str
    algorithms: frozenset[str] = SUPPORTED_ALGORITHMS
    #: Refuse addresses the provider has not verified (``email_verified`` missing or false).
    require_verified_email: bool = True


@dataclass(frozen=True)
class IdentityClaims:
    """What a verified id token says about the person; profile fields already cleaned."""

    subject: str
    email: str | None
    email_verified: bool
    name: str | None
    picture: str | None


def parse_providers(raw: Mapping[str, Any]) -> dict[str, OidcProvider]:
    """``STUDIO_OAUTH_PROVIDERS`` as providers; `SettingsError` naming the variable otherwise.

    The shape is ``{"<name>": {"issuer": …, "audience": … (or "client_id"), "jwks_url": …,
    "allowed_algorithms": [...] (optional), "require_verified_email": true (optional)}}``;
    ``audience`` may be one client id or a list of them.
    """
    if not isinstance(raw, Mapping):
        raise SettingsError(f"{SETTING}: must be a JSON object of providers by name")
    return {name: _parse_provider(name, entry) for name, entry in raw.items()}


def provider_named(settings: Settings, name: str) -> OidcProvider:
    """The configured provider; `BadUserInput` on ``provider`` for any other name."""
    providers = parse_providers(settings.oauth_providers)
    provider = providers.get(name)
    if provider is None:
        known = ", ".join(sorted(providers)) or "none are configured"
        raise BadUserInput(
            f"Unknown sign-in provider; the providers are: {known}.", field="provider"
        )
    return provider


async def verify_id_token(provider: OidcProvider, token: str) -> IdentityClaims:
    """The identity an id token proves; `Unauthenticated` saying why when it proves nothing."""
    header = _unverified_header(token)
    algorithm = header.get("alg")
    if not isinstance(algorithm, str) or algorithm not in provider.algorithms:
        raise Unauthenticated("The id token is signed with an algorithm that is not accepted.")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise Unauthenticated("The id token is malformed.")
    jwk = await jwks_cache(provider).signing_key(kid)
    # Checked before decoding: the key decides which algorithms may verify with it.
    if algorithm not in algorithms_for_key(jwk) or jwk.get("alg", algorithm) != algorithm:
        raise Unauthenticated("The id token's algorithm does not match the provider's key.")
    try:
        key = jwt.PyJWK(jwk, algorithm=algorithm)
    except jwt.PyJWKError as exc:
        logger.warning("unusable key %r in the JWKS of %s: %s", kid, provider.name, exc)
        raise Unauthenticated("The provider's signing key cannot be used.") from None
    return _identity(_decode(provider, token, key))


def algorithms_for_key(jwk: Mapping[str, Any]) -> frozenset[str]:
    """The signature algorithms a public JWK may verify (none for symmetric or unknown keys)."""
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if kty == "RSA":
        return RSA_ALGORITHMS
    if kty == "EC" and crv in EC_ALGORITHM_BY_CURVE:
        return frozenset({EC_ALGORITHM_BY_CURVE[crv]})
    if kty == "OKP" and crv in OKP_CURVES:
        return frozenset({"EdDSA"})
    return frozenset()


def account_email(provider: OidcProvider, identity: IdentityClaims) -> str:
    """The address to keep on the account: present, shaped like one, and verified (unless the
    provider is configured not to say so)."""
    email = (identity.email or "").strip()
    local, _, domain = email.rpartition("@")
    if not local or not domain or len(email) > 320:
        raise Unauthenticated("The id token has no email address; allow the email scope.")
    if provider.require_verified_email and not identity.email_verified:
        raise Unauthenticated("The provider has not verified this email address.")
    return email


_caches: dict[str, JwksCache] = {}


def jwks_cache(provider: OidcProvider) -> JwksCache:
    """The process-wide key cache for a provider's JWKS (providers sharing a URL share it)."""
    cache = _caches.get(provider.jwks_url)
    if cache is None:
        cache = _caches[provider.jwks_url] = JwksCache(provider.jwks_url)
    return cache


class JwksUnavailable(Exception):
    """The JWKS could not be fetched or read; the message says why (no secrets in it)."""


class JwksCache:
    """One provider's public keys, fetched when stale or when a token names an unknown key id.

    Fetches are serialized and spaced ``min_refresh_interval`` seconds apart: a burst of tokens
    naming unknown key ids costs at most one fetch per interval. When a fetch fails, the keys
    already known keep working until the provider answers again.
    """

    def __init__(
        self,
        url: str,
        *,
        ttl: float = 3600,
        min_refresh_interval: float = 60,
        timeout: float = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.ttl = ttl
        self.min_refresh_interval = min_refresh_interval
        self.timeout = timeout
        self.clock = clock
        self._keys: list[dict[str, Any]] = []
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()

    async def signing_key(self, kid: str | None) -> dict[str, Any]:
        if self._fetched_at is None or self.clock() - self._fetched_at >= self.ttl:
            await self.refresh()
        key = self._find(kid)
        if key is None:
            await self.refresh()  # perhaps rotated since; spaced by min_refresh_interval
            key = self._find(kid)
        if key is not None:
            return key
        if self._fetched_at is None:
            raise Unauthenticated("The sign-in provider cannot be reached; try again later.")
        raise Unauthenticated("The id token is signed with a key the provider does not publish.")

    async def refresh(self) -> None:
        """Fetch the keys, unless the last attempt (perhaps by a caller this one waited for) is
        less than ``min_refresh_interval`` ago."""
        async with self._lock:
            now = self.clock()
            last = self._attempted_at
            if last is not None and now - last < self.min_refresh_interval:
                return
            self._attempted_at = now
            try:
                self._keys = await fetch_jwks(self.url, time_limit=self.timeout)
            except JwksUnavailable as exc:
                logger.warning("could not fetch the JWKS at %s: %s", self.url, exc)
            else:
                self._fetched_at = now

    def _find(self, kid: str | None) -> dict[str, Any] | None:
        if kid is None:  # allowed when the set has a single key (OpenID Connect Core §10.1)
            return self._keys[0] if len(self._keys) == 1 else None
        return next((key for key in self._keys if key.get("kid") == kid), None)


async def fetch_jwks(url: str, *, time_limit: float) -> list[dict[str, Any]]:
    """The signature keys of the JWKS at ``url`` (encryption and symmetric keys left out)."""
    try:
        async with (
            asyncio.timeout(time_limit * 2),
            httpx_client(time_limit) as client,
            client.stream("GET", url, headers={"Accept": "application/json"}) as response,
        ):
            if response.status_code != 200:
                raise JwksUnavailable(f"HTTP status {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > _MAX_JWKS_BYTES:
                    raise JwksUnavailable(f"larger than {_MAX_JWKS_BYTES} bytes")
    except (TimeoutError, httpx.HTTPError) as exc:
        raise JwksUnavailable(f"{type(exc).__name__}: {exc}") from None
    try:
        keys = json.loads(body)["keys"]
    except (ValueError, KeyError, TypeError):
        raise JwksUnavailable("not a JSON Web Key Set") from None
    if not isinstance(keys, list):
        raise JwksUnavailable("not a JSON Web Key Set")
    return [
        key
        for key in keys
        if isinstance(key, dict)
        and key.get("use", "sig") == "sig"
        and algorithms_for_key(key)
        and (not isinstance(key.get("key_ops"), list) or "verify" in key["key_ops"])
    ]


def httpx_client(timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=httpx.Timeout(timeout), follow_redirects=False)


# --- helpers -----------------------------------------------------------------------------------


def _unverified_header(token: str) -> dict[str, Any]:
    try:
        return jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise Unauthenticated("The id token is malformed.") from None


def _decode(provider: OidcProvider, token: str, key: jwt.PyJWK) -> dict[str, Any]:
    try:
        return jwt.decode(
            token,
            key,
            algorithms=[key.algorithm_name],
            audience=list(provider.audiences),
            issuer=provider.issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": _REQUIRED_CLAIMS, "enforce_minimum_key_length": True},
        )
    except jwt.MissingRequiredClaimError as exc:
        raise Unauthenticated(f"The id token has no `{exc.claim}` claim.") from None
    except jwt.PyJWTError as exc:
        message = next((text for kind, text in _REFUSALS if isinstance(exc, kind)), None)
        if message is None:
            logger.info("id token of %s refused: %s", provider.name, type(exc).__name__)
        raise Unauthenticated(message or "The id token is not valid.") from None


_REFUSALS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "The id token has expired; sign in with the provider again."),
    (jwt.ImmatureSignatureError, "The id token is not valid yet."),
    (jwt.InvalidAudienceError, "The id token was issued for another application (audience)."),
    (jwt.InvalidIssuerError, "The id token was not issued by the provider (issuer)."),
    (jwt.InvalidSignatureError, "The id token's signature is not valid."),
)


def _identity(claims: Mapping[str, Any]) -> IdentityClaims:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.strip() or len(subject) > 255:
        raise Unauthenticated("The id token's `sub` claim is not a valid subject.")
    email, verified, name = claims.get("email"), claims.get("email_verified"), claims.get("name")
    return IdentityClaims(
        subject=subject,
        email=email if isinstance(email, str) else None,
        email_verified=verified is True or verified == "true",  # some providers send a string
        name=(name.strip()[:_NAME_MAX] or None) if isinstance(name, str) else None,
        picture=_web_url(claims.get("picture")),
    )


def _web_url(value: Any) -> str | None:
    """An http(s) URL a browser may load as an image; anything else (``javascript:``) is dropped."""
    if not isinstance(value, str) or len(value) > _URL_MAX:
        return None
    parts = urlsplit(value.strip())
    return value.strip() if parts.scheme in ("http", "https") and parts.hostname else None


def _parse_provider(name: Any, entry: Any) -> OidcProvider:
    where = f"{SETTING}: provider {name!r}"
    if not isinstance(name, str) or not _PROVIDER_NAME.match(name):
        raise SettingsError(f"{where}: names are letters, digits, '.', '_' or '-' (up to 64)")
    if not isinstance(entry, Mapping):
        raise SettingsError(f"{where}: must be an object with {', '.join(_REQUIRED_KEYS)}")
    unknown = sorted(set(entry) - {*_REQUIRED_KEYS, *_OPTIONAL_KEYS})
    if unknown:
        allowed = ", ".join((*_REQUIRED_KEYS, *_OPTIONAL_KEYS))
        raise SettingsError(f"{where}: unknown keys {unknown} (allowed: {allowed})")
    missing = [key for key in _REQUIRED_KEYS if not isinstance(entry.get(key), str)]
    if missing or not entry["issuer"].strip():
        raise SettingsError(f"{where}: needs {' and '.join(missing or ['issuer'])} as text")
    return OidcProvider(
        name=name,
        issuer=entry["issuer"].strip(),
        audiences=_audiences(where, entry),
        jwks_url=_jwks_url(where, entry["jwks_url"]),
        algorithms=_algorithms(where, entry.get("allowed_algorithms")),
        require_verified_email=_flag(where, entry.get("require_verified_email", True)),
    )


def _audiences(where: str, entry: Mapping[str, Any]) -> tuple[str, ...]:
    if ("audience" in entry) == ("client_id" in entry):
        raise SettingsError(f"{where}: give the client id as either audience or client_id")
    value = entry.get("audience", entry.get("client_id"))
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values:
        raise SettingsError(f"{where}: the audience is a client id or a list of them")
    if not all(isinstance(item, str) and item.strip() for item in values):
        raise SettingsError(f"{where}: the audience is a client id or a list of them")
    return tuple(item.strip() for item in values)


def _jwks_url(where: str, value: str) -> str:
    parts = urlsplit(value.strip())
    loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if not parts.hostname or not (parts.scheme == "https" or (parts.scheme == "http" and loopback)):
        raise SettingsError(f"{where}: jwks_url must be an https:// URL")
    return value.strip()


def _algorithms(where: str, value: Any) -> frozenset[str]:
    if value is None:
        return SUPPORTED_ALGORITHMS
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise SettingsError(f"{where}: allowed_algorithms must be a list of algorithm names")
    refused = sorted(set(value) - SUPPORTED_ALGORITHMS)
    if refused:
        supported = ", ".join(sorted(SUPPORTED_ALGORITHMS))
        raise SettingsError(f"{where}: cannot allow {refused} (supported: {supported})")
    return frozenset(value)


def _flag(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise SettingsError(f"{where}: require_verified_email must be true or false")
    return value

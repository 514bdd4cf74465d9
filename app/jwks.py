"""A sign-in provider's public keys (its JWKS): fetched over HTTP, cached, and what each verifies.

Each provider's JWKS is cached for an hour, and fetched again early when a token names a key id
the cache does not know (the provider rotated its keys) — but at most once per
`JwksCache.min_refresh_interval`, so tokens with made-up key ids cannot make this process hammer
the provider. The caches are process-wide, one per JWKS URL (`jwks_cache`).

A key decides which signature algorithms may verify with it (`algorithms_for_key`): RSA keys
RS*/PS*, EC keys the ES* of their curve, OKP keys EdDSA. Symmetric keys verify nothing and are
left out of the set when it is fetched.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from app.errors import Unauthenticated

# Sign-in's logger: a key that cannot be fetched or used shows up with the sign-ins it breaks.
logger = logging.getLogger("studio.oidc")

RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
EC_ALGORITHM_BY_CURVE = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
OKP_CURVES = frozenset({"Ed25519", "Ed448"})
SUPPORTED_ALGORITHMS = RSA_ALGORITHMS | frozenset(EC_ALGORITHM_BY_CURVE.values()) | {"EdDSA"}

_MAX_JWKS_BYTES = 512 * 1024


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


_caches: dict[str, JwksCache] = {}


def jwks_cache(url: str) -> JwksCache:
    """The process-wide key cache for the JWKS at ``url`` (providers sharing a URL share it)."""
    cache = _caches.get(url)
    if cache is None:
        cache = _caches[url] = JwksCache(url)
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

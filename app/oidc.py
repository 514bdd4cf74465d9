"""OpenID Connect sign-in (SPEC §5 Authentication): a provider's id token → who signed in.

Providers come from ``STUDIO_OAUTH_PROVIDERS`` (see `parse_providers`). A token is verified
against its provider's signing keys, which `app.jwks` fetches and caches.

The signature algorithm comes from the key, never from the token alone
(`app.jwks.algorithms_for_key`). ``none`` and HMAC are never accepted (an HMAC "signed" with the
provider's public key is the classic algorithm-confusion attack). Tokens are never logged and
never quoted in error messages.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt

from app.errors import BadUserInput, Unauthenticated
from app.jwks import SUPPORTED_ALGORITHMS, algorithms_for_key, jwks_cache
from app.settings import Settings, SettingsError

logger = logging.getLogger("studio.oidc")

SETTING = "STUDIO_OAUTH_PROVIDERS"
LEEWAY_SECONDS = 60

_REQUIRED_KEYS = ("issuer", "jwks_url")
_OPTIONAL_KEYS = ("audience", "client_id", "allowed_algorithms", "require_verified_email")
_PROVIDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "sub"]
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
    jwk = await jwks_cache(provider.jwks_url).signing_key(kid)
    # Checked before decoding: the key decides which algorithms may verify with it.
    if algorithm not in algorithms_for_key(jwk) or jwk.get("alg", algorithm) != algorithm:
        raise Unauthenticated("The id token's algorithm does not match the provider's key.")
    try:
        key = jwt.PyJWK(jwk, algorithm=algorithm)
    except jwt.PyJWKError as exc:
        logger.warning("unusable key %r in the JWKS of %s: %s", kid, provider.name, exc)
        raise Unauthenticated("The provider's signing key cannot be used.") from None
    return _identity(_decode(provider, token, key))


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
    try:
        parts = urlsplit(value.strip())
        hostname = parts.hostname  # parsed on access: "https://[" fails only here
    except ValueError:
        return None
    return value.strip() if parts.scheme in ("http", "https") and hostname else None


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

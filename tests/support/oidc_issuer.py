"""A local OpenID Connect issuer for sign-in tests: real keys, a JWKS over real HTTP, real tokens.

``running_issuer()`` serves the JWKS from 127.0.0.1 (uvicorn in a thread, `serve`) and counts
the requests it answers, so tests can check how often the API fetches it. Each issuer's URL has a
path of its own, so no two issuers of a test run share a URL (nor the API's key cache for it),
even when the operating system hands out a port again. Keys are generated per
issuer: RSA 2048 and EC P-256, each published under its own key id or held back (a key the issuer
signs with before it appears in the JWKS is a rotation; one never published is a forgery).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.browser import serve

KeyKind = Literal["RSA", "EC"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
AUDIENCE = "studio-web-client"


@dataclass
class SigningKey:
    kid: str
    private_key: PrivateKey
    algorithm: str

    def public_jwk(self) -> dict[str, Any]:
        public = self.private_key.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        return jwk | {"kid": self.kid, "use": "sig", "alg": self.algorithm}

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@dataclass
class LocalIssuer:
    base_url: str = ""
    audience: str = AUDIENCE
    keys: dict[str, SigningKey] = field(default_factory=dict)
    published: list[str] = field(default_factory=list)
    jwks_requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def issuer(self) -> str:
        return self.base_url

    @property
    def jwks_url(self) -> str:
        return f"{self.base_url}/jwks"

    def provider_config(self, **overrides: Any) -> dict[str, Any]:
        """This issuer as one entry of ``STUDIO_OAUTH_PROVIDERS``."""
        return {"issuer": self.issuer, "audience": self.audience, "jwks_url": self.jwks_url} | (
            overrides
        )

    def add_key(self, kind: KeyKind = "RSA", *, publish: bool = True, kid: str = "") -> SigningKey:
        """A new signing key; ``publish=False`` keeps it out of the JWKS until `publish`."""
        key = make_key(kind, kid or f"{kind.lower()}-{uuid.uuid4().hex[:8]}")
        self.keys[key.kid] = key
        if publish:
            self.publish(key.kid)
        return key

    def publish(self, kid: str) -> None:
        with self._lock:
            self.published.append(kid)

    def claims(self, **overrides: Any) -> dict[str, Any]:
        """Claims of a valid id token for a new person; ``None`` in overrides drops a claim."""
        now = datetime.now(UTC)
        subject = uuid.uuid4().hex
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "iat": now,
            "exp": now + timedelta(minutes=5),
            "email": f"person-{subject[:10]}@example.com",
            "email_verified": True,
            "name": "Ada Lovelace",
            "picture": "https://images.example.com/ada.png",
        } | overrides
        return {key: value for key, value in claims.items() if value is not None}

    def token(
        self,
        claims: dict[str, Any] | None = None,
        *,
        key: SigningKey | None = None,
        kid: str | None = None,
    ) -> str:
        """An id token signed with ``key`` (the first key by default), naming ``kid`` (the
        key's own by default)."""
        signer = key or next(iter(self.keys.values()))
        return jwt.encode(
            claims if claims is not None else self.claims(),
            signer.private_key,
            algorithm=signer.algorithm,
            headers={"kid": kid or signer.kid},
        )

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            self.jwks_requests += 1
            return {"keys": [self.keys[kid].public_jwk() for kid in self.published]}


def make_key(kind: KeyKind, kid: str) -> SigningKey:
    if kind == "RSA":
        return SigningKey(
            kid, rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"
        )
    return SigningKey(kid, ec.generate_private_key(ec.SECP256R1()), "ES256")


def unsigned_token(claims: dict[str, Any], *, kid: str) -> str:
    """``alg: none``: a token with no signature at all."""
    return _compact({"alg": "none", "typ": "JWT", "kid": kid}, claims, b"")


def hmac_token(claims: dict[str, Any], *, secret: bytes, kid: str) -> str:
    """HS256 with ``secret``; PyJWT refuses to sign with a PEM key as secret, so this does it."""
    header = {"alg": "HS256", "typ": "JWT", "kid": kid}
    signing_input = f"{_b64(_json(header))}.{_b64(_json(claims))}".encode()
    return _compact(header, claims, hmac.new(secret, signing_input, hashlib.sha256).digest())


@contextmanager
def running_issuer() -> Iterator[LocalIssuer]:
    """An issuer whose JWKS is served at ``issuer.jwks_url``; it has one published RSA key."""
    issuer = LocalIssuer()
    path = f"/issuers/{uuid.uuid4().hex}"

    async def jwks(request: Request) -> JSONResponse:
        return JSONResponse(issuer.jwks())

    with serve(Starlette(routes=[Route(f"{path}/jwks", jwks)])) as server_url:
        issuer.base_url = server_url + path
        issuer.add_key("RSA")
        yield issuer


def _compact(header: dict[str, Any], claims: dict[str, Any], signature: bytes) -> str:
    return ".".join((_b64(_json(header)), _b64(_json(claims)), _b64(signature)))


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(
        {k: int(v.timestamp()) if isinstance(v, datetime) else v for k, v in value.items()}
    ).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

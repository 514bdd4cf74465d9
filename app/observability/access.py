"""Who may read metrics: anyone, or whoever sends ``STUDIO_METRICS_TOKEN`` as a bearer token."""

from __future__ import annotations

import hmac


def bearer_matches(authorization: str | None, token: str) -> bool:
    """Whether ``Authorization: Bearer <token>`` names ``token`` (compared in constant time)."""
    scheme, _, value = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        value.strip().encode(), token.encode()
    )

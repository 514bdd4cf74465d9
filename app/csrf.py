"""CSRF protection for the requests a browser sends cross-site without asking (SPEC §5 Limits).

A page on any site can make a browser POST a ``<form>`` (``multipart/form-data``,
``application/x-www-form-urlencoded`` or ``text/plain``) to this API, with the user's cookies and
without a CORS preflight; multipart is exactly what file uploads use, so a GraphQL mutation could
ride on it. A request with a custom header, on the other hand, is only ever sent cross-site after
a preflight that CORS answers from the configured origins. So a POST with one of those "simple"
content types (or none) must carry a non-empty ``Apollo-Require-Preflight``, ``X-Studio-CSRF`` or
``X-Apollo-Operation-Name`` header — the convention Apollo clients and upload libraries already
follow. JSON requests always need a preflight cross-site and pass untouched; GET requests never
run mutations (the GraphQL view refuses them).
"""

from __future__ import annotations

from collections.abc import Iterable

#: Any one of these, non-empty, marks a request as not a simple cross-site form post.
CSRF_HEADERS = ("Apollo-Require-Preflight", "X-Studio-CSRF", "X-Apollo-Operation-Name")

#: Content types a browser sends cross-site without a preflight (the CORS safelist).
SIMPLE_CONTENT_TYPES = frozenset(
    {"multipart/form-data", "application/x-www-form-urlencoded", "text/plain", ""}
)

_MESSAGE = (
    "This request could be a cross-site request forgery: a POST with Content-Type {kind} must "
    "send a non-empty `Apollo-Require-Preflight` (or `X-Studio-CSRF`) header. "
    "Send `Apollo-Require-Preflight: true` with file uploads."
)


def csrf_refusal(content_type: str, csrf_headers: Iterable[str]) -> str | None:
    """Why a POST with this ``Content-Type`` and these values of `CSRF_HEADERS` (those sent) is
    refused (`app.middleware` answers 400 with it), or ``None``."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind in SIMPLE_CONTENT_TYPES and not any(value.strip() for value in csrf_headers):
        return _MESSAGE.format(kind=kind or "(none)")
    return None

"""The expected failures of SPEC §4, as exceptions that carry their ``extensions.code``.

`db/` and `app/` raise these; the GraphQL layer turns them into errors in one place. Anything
else that escapes is unexpected and is masked as ``INTERNAL``.
"""

from __future__ import annotations

from typing import ClassVar

#: The codes a client may ever see in ``extensions.code`` (SPEC §4).
SPEC_CODES = frozenset(
    {
        "UNAUTHENTICATED",
        "FORBIDDEN",
        "NOT_FOUND",
        "BAD_USER_INPUT",
        "CONFLICT",
        "RATE_LIMITED",
        "INTERNAL",
    }
)


class StudioError(Exception):
    code: ClassVar[str] = "INTERNAL"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Unauthenticated(StudioError):
    code = "UNAUTHENTICATED"


class Forbidden(StudioError):
    code = "FORBIDDEN"


class NotFound(StudioError):
    code = "NOT_FOUND"


class BadUserInput(StudioError):
    code = "BAD_USER_INPUT"


class Conflict(StudioError):
    code = "CONFLICT"


class RateLimited(StudioError):
    code = "RATE_LIMITED"

"""What one request is, as the layers learn it: the typed `RequestState` on its scope, and the
request id that logging needs without being handed it."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from app.auth import Viewer
from app.errors import Unauthenticated

NO_REQUEST = "-"

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# A client-sent X-Request-ID is kept only when it is short and plain (it ends up in logs).
_ACCEPTABLE = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def new_request_id(offered: str | None = None) -> str:
    if offered is not None and _ACCEPTABLE.fullmatch(offered):
        return offered
    # 128 random bits in 32 hex digits, as a UUID4's hex would be, without building the UUID.
    return os.urandom(16).hex()


class RequestIdFilter(logging.Filter):
    """Stamps every log record with the current request id (when there is one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get() or NO_REQUEST
        return True


#: Where `RequestState` lives on an ASGI scope.
STATE_KEY = "studio.request"


@dataclass
class RequestState:
    """One HTTP request's or websocket's state, on its scope (`of`): the middleware fills in
    who it is, the GraphQL view how it is answered. One typed object instead of loose keys."""

    request_id: str
    #: The caller, as ``Authorization`` says (`app.middleware.RequestMiddleware`).
    viewer: Viewer | None = None
    #: Why the credentials sent (if any) were refused; reads then fail with it.
    auth_error: Unauthenticated | None = None
    #: GraphQL over HTTP (`schema.transport`): the media type the response is written in …
    media_type: str = "application/json"
    #: … how far its operation got (``parsed``, ``validated``) …
    phase: str | None = None
    #: … whether a GraphQL response was built (not GraphiQL's page), and a request error's status.
    answered: bool = False
    status: int | None = None
    #: The operation's `schema.loaders.SessionGate` while it runs.
    gate: Any = None

    @classmethod
    def of(cls, scope: MutableMapping[str, Any]) -> RequestState:
        """The scope's state (made with a new request id if no middleware made it)."""
        state = scope.get(STATE_KEY)
        if state is None:
            state = scope[STATE_KEY] = cls(new_request_id())
        assert isinstance(state, cls)
        return state

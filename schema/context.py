"""What every resolver gets as ``info.context``: one per operation, never shared."""

from __future__ import annotations

from dataclasses import dataclass, field

import strawberry
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from app.auth import Viewer
from app.errors import Unauthenticated
from app.settings import Settings
from schema.loaders import Loaders, SessionGate
from schema.relay import cursor_secret


@dataclass
class Context:
    settings: Settings
    request_id: str
    gate: SessionGate
    loaders: Loaders
    viewer: Viewer | None
    #: Why the credentials sent (if any) were refused; reads then fail with it.
    auth_error: Unauthenticated | None = None
    request: Request | WebSocket | None = None
    response: Response | WebSocket | None = None
    cursor_key: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.cursor_key = cursor_secret(self.settings.secret_key)

    def require_viewer(self) -> Viewer:
        """The signed-in viewer; `Unauthenticated` for bad credentials or none."""
        if self.auth_error is not None:
            raise self.auth_error
        if self.viewer is None:
            raise Unauthenticated("Sign in to read this.")
        return self.viewer


Info = strawberry.Info[Context, None]

"""What every resolver gets as ``info.context``: one per operation, never shared.

A context is made one way, with its keyword-only constructor: ``Context(settings=…,
request_id=…, gate=…, viewer=…)`` and, where there is one, the request and its refused
credentials. What follows from those (the loaders, for the gate and the viewer; the cursor key,
from the settings) is derived here, not passed: every transport (HTTP, websocket, a shared
subscription's run; `schema.transport`) and every test makes it the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import strawberry
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from app import media
from app.auth import Viewer
from app.errors import Unauthenticated
from app.settings import Settings
from db import models
from schema.loaders import Loaders, SessionGate
from schema.relay import cursor_secret

if TYPE_CHECKING:
    from app.live_accounts import LiveAccounts
    from schema.change_reads import ChangeReads


@dataclass(kw_only=True)
class Context:
    settings: Settings
    request_id: str
    gate: SessionGate
    viewer: Viewer | None
    #: Why the credentials sent (if any) were refused; reads then fail with it.
    auth_error: Unauthenticated | None = None
    request: Request | WebSocket | None = None
    response: Response | WebSocket | None = None
    #: The operation's loaders (`reset_loaders` makes new ones), for ``gate`` and ``viewer``.
    loaders: Loaders = field(init=False)
    cursor_key: bytes = field(init=False)
    #: Which path answered the operation: ``resolver``, or ``compiled`` (`schema.compiled`).
    read_path: str = "resolver"
    #: The operation is a shared subscription's one run for all its subscribers
    #: (`schema.transport.feeds`): each of them is charged its rate limits and logged on its
    #: own, so this run is neither charged nor logged.
    shared: bool = False
    #: A shared run's re-reads, batched with every other feed's (`schema.change_reads`).
    change_reads: ChangeReads | None = None
    #: The accounts this process saw exist lately (`require_viewer`); ``None`` looks each up.
    accounts: LiveAccounts | None = None
    _rollback_hooks: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.loaders = self._new_loaders()
        self.cursor_key = cursor_secret(self.settings.secret_key)

    def sign_in_as(self, viewer: Viewer) -> None:
        """From now on this operation reads as ``viewer`` (after a successful `signIn`)."""
        self.viewer, self.auth_error = viewer, None
        self.reset_loaders()

    def reset_loaders(self) -> None:
        """Drop every cached row (after a write, the next read must see it)."""
        self.gate.retire_loaders()
        self.loaders = self._new_loaders()

    def on_rollback(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run ``hook`` if the current mutation's transaction rolls back (undo side effects)."""
        self._rollback_hooks.append(hook)

    async def run_rollback_hooks(self) -> None:
        hooks, self._rollback_hooks = self._rollback_hooks, []
        for hook in reversed(hooks):
            await hook()

    def forget_rollback_hooks(self) -> None:
        self._rollback_hooks.clear()

    async def require_viewer(self) -> Viewer:
        """The signed-in viewer; `Unauthenticated` for bad credentials, none, or an account that
        no longer exists (a token outlives a deleted account until it expires; this does not).
        An account this process saw exist lately is not looked up again (`accounts`)."""
        if self.auth_error is not None:
            raise self.auth_error
        viewer, accounts = self.viewer, self.accounts
        if viewer is None:
            raise Unauthenticated("Sign in to read this.")
        if accounts is None:
            await self.viewer_user()
        elif not accounts.exists(viewer.user_id):
            began = accounts.begin()
            await self.viewer_user()  # `Unauthenticated` when the account is gone
            accounts.saw(viewer.user_id, began)
        return viewer

    def media_url(self, path: str | None) -> str | None:
        """A short-lived signed URL of the stored file at ``path`` (None for no file), minted
        for this viewer; signed per request (server key, clock), so never stored. Absolute
        under ``STUDIO_PUBLIC_URL`` when it is set (`link`)."""
        if path is None:
            return None
        viewer_id = self.viewer.user_id if self.viewer else None
        return self.link(media.signed_url(self.settings, path, viewer_id=viewer_id))

    def link(self, url: str) -> str:
        """A URL for the client: a path on this studio (``/published/…``) is made absolute
        under ``STUDIO_PUBLIC_URL`` when it is set; stored URLs stay paths, so a changed
        setting applies to them too."""
        return self.settings.public_link(url)

    async def viewer_user(self) -> models.User | None:
        """The viewer's active user row (``None`` when signed out); one cached lookup."""
        if self.auth_error is not None:
            raise self.auth_error
        if self.viewer is None:
            return None
        user = await self.loaders.user_by_id.load(self.viewer.user_id)
        if user is None:
            raise Unauthenticated("This account no longer exists.")
        return user

    def _new_loaders(self) -> Loaders:
        return Loaders(self.gate, self.viewer.user_id if self.viewer else None)


Info = strawberry.Info[Context, None]

"""Websocket connections: who is connecting, how many they may hold, and the protocol handlers.

Both ``graphql-transport-ws`` and the legacy ``graphql-ws`` (SPEC §5 Live progress). The access
token comes from the ``connection_init`` payload (``{"Authorization": "Bearer …"}``, any key
case) or, failing that, from the upgrade request's ``Authorization`` header. A missing or invalid
token, or one user opening more than ``STUDIO_MAX_CONNECTIONS_PER_USER`` connections to this
process, closes the connection with 4403; over ``graphql-ws`` a ``connection_error`` message
(with ``extensions.code``) comes first. Strawberry itself maps a rejected ``connection_init`` to
4403 only for ``graphql-transport-ws`` (``graphql-ws`` gets 1011), hence the handlers below.

More than ``STUDIO_MAX_SUBSCRIPTIONS_PER_CONNECTION`` operations at once on one connection: the
extra one gets an ``error`` message coded ``RATE_LIMITED``; the connection stays open.
"""

from __future__ import annotations

import uuid
from collections import Counter

from graphql import GraphQLFormattedError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage as TransportInitMessage,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ConnectionInitMessage as LegacyInitMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.types import StartMessage

from app.auth import authorization_from_params
from app.middleware import authenticate
from app.settings import Settings
from schema.context import Context
from schema.streaming import ConnectionContext

#: graphql-transport-ws's "Forbidden"; used for both protocols.
CLOSE_FORBIDDEN = 4403


class ConnectionRefused(Exception):
    """``connection_init`` is refused: the handlers close with `CLOSE_FORBIDDEN` and ``reason``.

    Deliberately not Strawberry's `ConnectionRejectionError`, whose handling differs per
    protocol.
    """

    def __init__(self, reason: str, message: str, code: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.payload: dict[str, object] = {"message": message, "extensions": {"code": code}}


class ConnectionLimiter:
    """Open websocket connections per user, in this process only (not across processes)."""

    def __init__(self, per_user: int) -> None:
        self.per_user = per_user
        self._open: Counter[uuid.UUID] = Counter()

    def acquire(self, context: ConnectionContext, user_id: uuid.UUID) -> bool:
        if context.counted_user == user_id:  # graphql-ws allows a repeated connection_init
            return True
        self.release(context)
        if self._open[user_id] >= self.per_user:
            return False
        self._open[user_id] += 1
        context.counted_user = user_id
        return True

    def release(self, context: ConnectionContext) -> None:
        user_id, context.counted_user = context.counted_user, None
        if user_id is not None:
            self._open[user_id] -= 1
            if self._open[user_id] <= 0:
                del self._open[user_id]

    def open_connections(self, user_id: uuid.UUID) -> int:
        return self._open[user_id]


def accept_connection(
    settings: Settings, limiter: ConnectionLimiter, context: ConnectionContext
) -> None:
    """Authenticate a ``connection_init`` and count the connection; `ConnectionRefused` if not."""
    authorization = authorization_from_params(context.connection_params)
    if authorization is not None:
        viewer, error = authenticate(settings, authorization)
    else:
        viewer, error = context.viewer, context.auth_error
    if error is not None:
        raise ConnectionRefused("Invalid access token", error.message, error.code)
    if viewer is None:
        raise ConnectionRefused(
            "Missing access token",
            "Send the access token in the connection_init payload "
            '({"Authorization": "Bearer <token>"}) or the Authorization header.',
            "UNAUTHENTICATED",
        )
    if not limiter.acquire(context, viewer.user_id):
        raise ConnectionRefused(
            "Too many connections",
            f"At most {limiter.per_user} open connections per user.",
            "RATE_LIMITED",
        )
    context.viewer, context.auth_error = viewer, None
    context.reset_loaders()


def _limit_error(limit: int | None) -> GraphQLFormattedError:
    return {
        "message": f"At most {limit} operations at once on one connection.",
        "extensions": {"code": "RATE_LIMITED"},
    }


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """``graphql-transport-ws``."""

    async def handle_connection_init(self, message: TransportInitMessage) -> None:
        try:
            await super().handle_connection_init(message)
        except ConnectionRefused as refused:
            await self.websocket.close(code=CLOSE_FORBIDDEN, reason=refused.reason)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        limit = self.max_subscriptions_per_connection
        if (
            self.connection_acknowledged
            and limit is not None
            and message["id"] not in self.operations
            and len(self.operations) >= limit
        ):
            await self.send_message(
                {"id": message["id"], "type": "error", "payload": [_limit_error(limit)]}
            )
            return
        await super().handle_subscribe(message)


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """The legacy ``graphql-ws`` (subscriptions-transport-ws)."""

    async def handle_connection_init(self, message: LegacyInitMessage) -> None:
        try:
            await super().handle_connection_init(message)
        except ConnectionRefused as refused:
            await self.send_message({"type": "connection_error", "payload": refused.payload})
            await self.websocket.close(code=CLOSE_FORBIDDEN, reason=refused.reason)

    async def handle_start(self, message: StartMessage) -> None:
        limit = self.max_subscriptions_per_connection
        if (
            self.connection_acknowledged
            and limit is not None
            and message["id"] not in self.tasks
            and len(self.tasks) >= limit
        ):
            await self.send_message(
                {"type": "error", "id": message["id"], "payload": _limit_error(limit)}
            )
            return
        await super().handle_start(message)

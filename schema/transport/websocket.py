"""Websocket connections: who is connecting, how long and how much they may hold, and the rules
of both protocols.

Both ``graphql-transport-ws`` and the legacy ``graphql-ws`` (SPEC §5 Live progress). The access
token comes from the ``connection_init`` payload (``{"Authorization": "Bearer …"}``, any key
case) or, failing that, from the upgrade request's ``Authorization`` header. Strawberry already
keeps most of graphql-transport-ws's rules (4400, 4401, 4408, 4409, 4429); what is added here:

* 4403 for a missing or invalid token and for one user opening more than
  ``STUDIO_MAX_CONNECTIONS_PER_USER`` connections to this process, over both protocols (over
  ``graphql-ws`` a ``connection_error`` with ``extensions.code`` comes first). Strawberry's own
  rejection gives ``graphql-ws`` 1011, hence `ConnectionRefused`;
* 4403 "Token expired" when the connection's access token expires: its subscriptions end with
  ``UNAUTHENTICATED`` first (`schema.subscriptions`), then the socket closes. graphql-ws clients
  retry a 4403 (with fresh ``connectionParams``), and treat 4401 as final;
* 4400 for every message the protocol does not describe (a non-object, a ``subscribe`` without a
  string ``id`` or ``query`` …): Strawberry lets some of them crash the handler (1011). Over
  ``graphql-ws``, which has no such rule, they get a ``connection_error`` and the socket stays
  (`schema.transport.websocket_messages`);
* 1009 for a message over ``STUDIO_WS_MAX_MESSAGE_BYTES``, whatever server runs the app
  (`schema.transport.websocket_messages.SizeLimitedWebSocket`);
* 4408 for a ``graphql-ws`` socket that sends no ``connection_init`` in time (Strawberry times
  out only ``graphql-transport-ws``);
* keep-alive: a ``ping`` every ``STUDIO_WS_KEEP_ALIVE_SECONDS`` over graphql-transport-ws
  (clients answer ``pong``; a client's ``ping`` is answered too), Strawberry's ``ka`` over
  ``graphql-ws``. Dead peers are found by uvicorn's websocket-level pings.

More than ``STUDIO_MAX_SUBSCRIPTIONS_PER_CONNECTION`` operations at once on one connection: the
extra one gets an ``error`` message coded ``RATE_LIMITED``; the connection stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Coroutine
from datetime import UTC, datetime
from typing import Any

from graphql import GraphQLError, GraphQLFormattedError, OperationType, get_operation_ast, parse
from starlette.websockets import WebSocketDisconnected as ClosedByServer
from strawberry.http.exceptions import WebSocketDisconnected as ClientGone
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage as TransportInitMessage,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    Message as TransportMessage,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ConnectionInitMessage as LegacyInitMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.types import OperationMessage, StartMessage
from strawberry.types.execution import PreExecutionError

from app.auth import authorization_from_params
from app.middleware import authenticate
from app.settings import Settings
from schema.context import Context
from schema.transport.feeds import CLOSE_TOO_SLOW, Ended, Feeds, Shape
from schema.transport.streaming import ConnectionContext
from schema.transport.websocket_messages import (
    SizeLimitedWebSocket,
    legacy_message_problem,
    transport_message_problem,
)

logger = logging.getLogger(__name__)

#: graphql-transport-ws's close codes, used for both protocols (README, "Live progress").
CLOSE_FORBIDDEN = 4403
CLOSE_INIT_TIMEOUT = 4408
#: How long an expiring connection waits for its operations to send their last message.
EXPIRY_GRACE_SECONDS = 5.0


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


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """``graphql-transport-ws``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timers = _Timers()

    async def handle_message(self, message: TransportMessage) -> None:
        problem = transport_message_problem(message)
        if problem is not None:
            await self.handle_invalid_message(problem)
            return
        await super().handle_message(message)

    async def handle_connection_init(self, message: TransportInitMessage) -> None:
        if message.get("payload") is None:  # the protocol allows `null`; Strawberry does not
            message = {"type": "connection_init"}
        acknowledged = self.connection_acknowledged
        try:
            await super().handle_connection_init(message)
        except ConnectionRefused as refused:
            await self.websocket.close(code=CLOSE_FORBIDDEN, reason=refused.reason)
            return
        if self.connection_acknowledged and not acknowledged:
            viewer = self.context.viewer
            assert viewer is not None
            self.timers.start("expiry", self._close_when_expired(viewer.expires_at))
            if self.view.keep_alive and self.view.keep_alive_interval:
                self.timers.start("ping", self._ping(self.view.keep_alive_interval))

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

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        shared = _shared(self, operation.query, operation.operation_name)
        if shared is not None:
            feeds, shape = shared
            send = _sender(
                self, '{"id":' + feeds.encode(operation.id) + ',"type":"next","payload":'
            )

            ended = await _served(
                feeds,
                self.context,
                shape,
                operation.query,
                operation.variables,
                operation.operation_name,
                send,
            )
            if ended is Ended.COMPLETE:
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
                return
            if ended is Ended.BEHIND:
                self.operations.pop(operation.id, None)
                await self.websocket.close(CLOSE_TOO_SLOW, "Too far behind")
                return
            if ended is None:  # the socket is gone
                self.operations.pop(operation.id, None)
                return
        await super().run_operation(operation)

    async def shutdown(self) -> None:
        await self.timers.cancel_all()
        await super().shutdown()

    async def _close_when_expired(self, expires_at: datetime) -> None:
        await _sleep_until(expires_at)
        self.timers.cancel("ping")
        running = [operation.task for operation in self.operations.values() if operation.task]
        await _let_finish(running)
        await self.websocket.close(code=CLOSE_FORBIDDEN, reason="Token expired")

    async def _ping(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.send_message({"type": "ping"})
            except (ClientGone, ClosedByServer):  # closing: `shutdown` is about to cancel us
                return


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """The legacy ``graphql-ws`` (subscriptions-transport-ws)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timers = _Timers()

    async def handle(self) -> None:
        wait = self.view.connection_init_wait_timeout.total_seconds()
        self.timers.start("init", self._close_unless_initialised(wait))
        await super().handle()

    async def handle_message(self, message: OperationMessage) -> None:
        problem = legacy_message_problem(message)
        if problem is not None:
            await self.send_message({"type": "connection_error", "payload": {"message": problem}})
            return
        await super().handle_message(message)

    async def handle_connection_init(self, message: LegacyInitMessage) -> None:
        self.timers.cancel("init")
        if self.keep_alive_task:  # a repeated connection_init would start a second one
            self.keep_alive_task.cancel()
        try:
            await super().handle_connection_init(message)
        except ConnectionRefused as refused:
            await self.send_message({"type": "connection_error", "payload": refused.payload})
            await self.websocket.close(code=CLOSE_FORBIDDEN, reason=refused.reason)
            return
        if self.connection_acknowledged:  # a repeated init may bring a fresh token
            viewer = self.context.viewer
            assert viewer is not None
            self.timers.start("expiry", self._close_when_expired(viewer.expires_at))

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

    async def handle_async_results(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> None:
        # subscriptions-transport-ws carried queries and mutations too (one `data`, then
        # `complete`); Strawberry's handler runs everything as a subscription.
        # A shareable subscription is known by its (cached) shape: no second parse.
        shared = _shared(self, query, operation_name)
        if shared is not None and await self._answer_shared(
            operation_id, shared, query, operation_name, variables
        ):
            return
        kind = _operation_type(query, operation_name, self.context.settings.max_tokens)
        if kind in (OperationType.QUERY, OperationType.MUTATION):
            await self._answer_once(operation_id, query, operation_name, variables)
            return
        await super().handle_async_results(operation_id, query, operation_name, variables)

    async def _answer_shared(
        self,
        operation_id: str,
        shared: tuple[Feeds, Shape],
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> bool:
        """Serve the subscription from its feed; False when it must run on its own."""
        feeds, shape = shared
        send = _sender(self, '{"type":"data","id":' + feeds.encode(operation_id) + ',"payload":')

        complete = {"type": "complete", "id": operation_id}
        try:
            ended = await _served(
                feeds, self.context, shape, query, variables, operation_name, send
            )
        except asyncio.CancelledError:  # stopped by the client: graphql-ws says `complete`
            self.tasks.pop(operation_id, None)
            with contextlib.suppress(ClientGone, ClosedByServer):
                await self.send_message(complete)  # type: ignore[arg-type]
            raise
        if ended is Ended.UNSERVED:
            return False
        self.tasks.pop(operation_id, None)
        if ended is Ended.COMPLETE:
            await self.send_message(complete)  # type: ignore[arg-type]
        elif ended is Ended.BEHIND:
            await self.websocket.close(CLOSE_TOO_SLOW, "Too far behind")
        return True

    async def _answer_once(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> None:
        try:
            result = await self.schema.execute(
                query,
                variable_values=variables,
                context_value=self.context,
                root_value=self.root_value,
                operation_name=operation_name,
            )
            if isinstance(result, PreExecutionError) and result.errors:
                payload = result.errors[0].formatted
                await self.send_message({"type": "error", "id": operation_id, "payload": payload})
                return
            await self.send_data_message(result, operation_id)
            await self.send_message({"type": "complete", "id": operation_id})
        except asyncio.CancelledError:
            await self.send_message({"type": "complete", "id": operation_id})
        finally:
            self.tasks.pop(operation_id, None)

    async def cleanup(self) -> None:
        await self.timers.cancel_all()
        await super().cleanup()

    async def _close_unless_initialised(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self.websocket.close(CLOSE_INIT_TIMEOUT, "Connection initialisation timeout")

    async def _close_when_expired(self, expires_at: datetime) -> None:
        await _sleep_until(expires_at)
        if self.keep_alive_task:
            self.keep_alive_task.cancel()
        await _let_finish(list(self.tasks.values()))
        await self.websocket.close(code=CLOSE_FORBIDDEN, reason="Token expired")


class _Timers:
    """A connection's background tasks by name, all cancelled when it closes."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        self.cancel(name)
        task = asyncio.create_task(work, name=f"websocket {name}")
        task.add_done_callback(_log_failure)
        self._tasks[name] = task

    def cancel(self, name: str) -> None:
        task = self._tasks.pop(name, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def cancel_all(self) -> None:
        tasks, self._tasks = list(self._tasks.values()), {}
        current = asyncio.current_task()
        tasks = [task for task in tasks if task is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        logger.error("websocket task %s failed", task.get_name(), exc_info=error)


async def _sleep_until(moment: datetime) -> None:
    await asyncio.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))


async def _let_finish(tasks: Collection[asyncio.Future[Any]]) -> None:
    """Wait (a little) for operations to send their last message before the socket closes."""
    if tasks:
        await asyncio.wait(tasks, timeout=EXPIRY_GRACE_SECONDS)


def _shared(
    handler: TransportWSHandler | LegacyWSHandler, query: str, operation_name: str | None
) -> tuple[Feeds, Shape] | None:
    """The process's feeds and the operation's shape, when a feed can serve it."""
    feeds: Feeds | None = getattr(handler.view, "feeds", None)
    if feeds is None or handler.context.viewer is None:
        return None
    shape = feeds.shape(query, operation_name, handler.context.settings.max_tokens)
    return None if shape is None else (feeds, shape)


def _sender(
    handler: TransportWSHandler | LegacyWSHandler, head: str
) -> Callable[[str], Awaitable[None]]:
    """Sends a feed's encoded payload inside the message that ``head`` begins."""
    websocket = handler.websocket
    assert isinstance(websocket, SizeLimitedWebSocket)

    async def send(payload: str) -> None:
        await websocket.send_text(head + payload + "}")

    return send


async def _served(
    feeds: Feeds,
    connection: Context,
    shape: Shape,
    query: str,
    variables: dict[str, object] | None,
    operation_name: str | None,
    send: Callable[[str], Awaitable[None]],
) -> Ended | None:
    """`Feeds.serve`; ``None`` when the socket closed under it."""
    assert isinstance(connection, ConnectionContext)
    try:
        return await feeds.serve(connection, shape, query, variables, operation_name, send)
    except (ClientGone, ClosedByServer):
        return None


def _operation_type(query: str, name: str | None, max_tokens: int) -> OperationType | None:
    """The type of the operation ``name`` picks from ``query``; None if the document does not
    parse or names no such operation (the normal path then reports it)."""
    try:
        document = parse(query, no_location=True, max_tokens=max_tokens)
    except GraphQLError:
        return None
    operation = get_operation_ast(document, name)
    return operation.operation if operation is not None else None


def _limit_error(limit: int | None) -> GraphQLFormattedError:
    return {
        "message": f"At most {limit} operations at once on one connection.",
        "extensions": {"code": "RATE_LIMITED"},
    }

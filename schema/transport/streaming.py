"""A context of its own for each websocket operation, and no session held by a subscription.

Strawberry builds one context per websocket *connection* and passes it to every operation on
it. Sharing it would share loaders (and their cached rows) between subscriptions, and a
connection has no natural session. `OperationContexts` (a schema extension) therefore replaces
the connection's context, once the operation is parsed and its type known, with:

* for a subscription: a `Context` whose loaders run each batch in a short session of its own
  (`ShortSessionGate`). The subscription makes fresh loaders for every event
  (`Context.reset_loaders`), so nothing is cached across events and no database connection is
  held while it waits for the next change;
* for a query or a mutation sent over ``graphql-transport-ws``: one session for the operation,
  as an HTTP request gets (mutations commit through it, `schema.transactions`).

Subscriptions are served over websockets only: over HTTP a stream would hold its request's
session for its whole life and escape the per-user connection limit, so it is refused.

The extension also codes the errors of every streamed result (``extensions.code``, SPEC §4):
`schema.extensions.errors.ErrorCodes` sees only an operation's final result.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import ExecutionResult, StreamExecutionResult
from strawberry.types.graphql import OperationType

from app.errors import BadUserInput, Unauthenticated
from app.settings import Settings
from app.state import AppState
from schema.context import Context
from schema.extensions.errors import coded_error
from schema.loaders import OperationOver, SessionGate

TOKEN_EXPIRED = "The access token has expired; connect again with a new one."  # noqa: S105 (a message)

P = ParamSpec("P")
R = TypeVar("R")


class ShortSessionGate(SessionGate):
    """Runs every loader batch in a short session of its own (batches may run concurrently).

    It has no long-lived ``session``: code that needs one transaction (mutations) cannot run on
    it, which is the point.
    """

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, autocommit: bool = False
    ) -> None:
        # No `super().__init__`: there is no operation-wide session to hold.
        self._sessionmaker = sessionmaker
        self._start()
        #: A subscription only reads: each batch without BEGIN/ROLLBACK (`autocommits`).
        self._autocommit_reads = autocommit

    async def run(
        self,
        fn: Callable[Concatenate[AsyncSession, P], Awaitable[R]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        if self._closed:
            raise OperationOver("the operation is over")
        async with self._sessionmaker() as session:
            if self._autocommit_reads and isinstance(session.bind, AsyncEngine):
                await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            return await fn(session, *args, **kwargs)

    async def close(self) -> None:
        for loader in self._loaders:
            loader.cancel_pending()
        self._closed = True
        self._release_loaders()


@dataclass(kw_only=True)
class ConnectionContext(Context):
    """The context Strawberry keeps for a whole websocket connection (`schema.transport.websocket`
    authenticates it). Operations do not run on it: `OperationContexts` gives each its own."""

    connection_params: dict[str, object] | None = None
    #: The user this connection is counted against (`schema.transport.websocket.ConnectionLimiter`).
    counted_user: uuid.UUID | None = None


def operation_context(connection: Context, gate: SessionGate) -> Context:
    """A context for one operation: the connection's caller, its own gate and loaders.

    Once the connection's token has expired its operations are ``UNAUTHENTICATED``, also in
    the moments before `schema.transport.websocket` closes the connection.
    """
    viewer, auth_error = connection.viewer, connection.auth_error
    if viewer is not None and viewer.expires_at <= datetime.now(UTC):
        viewer, auth_error = None, Unauthenticated(TOKEN_EXPIRED)
    return Context(
        settings=connection.settings,
        request_id=connection.request_id,
        gate=gate,
        viewer=viewer,
        auth_error=auth_error,
        request=connection.request,
        response=connection.response,
        shared=connection.shared,
        change_reads=connection.change_reads,
        accounts=connection.accounts,
    )


def autocommits(settings: Settings) -> bool:
    """Whether a query's statements may run outside a transaction: everywhere but behind a
    transaction pooler that sets the statement timeout per transaction (`db.engine`)."""
    return not (settings.database.transaction_pooler and settings.db_statement_timeout_ms)


class OperationContexts(SchemaExtension):
    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        connection = execution.context
        is_subscription = execution.operation_type is OperationType.SUBSCRIPTION
        if not isinstance(connection, ConnectionContext):
            if is_subscription:
                raise BadUserInput(
                    "Subscriptions are served over websockets (graphql-transport-ws or "
                    "graphql-ws) at this same URL."
                )
            if execution.operation_type is OperationType.QUERY and isinstance(connection, Context):
                connection.gate.reads_only(autocommit=autocommits(connection.settings))
            yield
            return
        assert connection.request is not None
        sessionmaker = AppState.of(connection.request).sessionmaker
        if is_subscription:
            short = ShortSessionGate(sessionmaker, autocommit=autocommits(connection.settings))
            execution.context = operation_context(connection, short)
            yield
            return
        async with sessionmaker() as session:
            gate = SessionGate(session)
            if execution.operation_type is OperationType.QUERY:
                gate.reads_only(autocommit=autocommits(connection.settings))
            execution.context = operation_context(connection, gate)
            try:
                yield
            finally:
                await gate.close()  # before the session closes: see `SessionGate.close`

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        if isinstance(result, ExecutionResult) and result.errors:
            request_id = getattr(self.execution_context.context, "request_id", None)
            result.errors = [coded_error(error, request_id) for error in result.errors]
        yield

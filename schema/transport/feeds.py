"""Shared subscriptions: one run for all who subscribe to the same thing, each result encoded
once and sent to every one of them (README, "Live progress at scale").

A ``subscribe`` (or ``start``) message is served from a `Feed` when its operation is a
subscription with one root field and no ``afterVersion`` (a resumed subscription starts from a
version of its own). Feeds are keyed by the viewer's user id, the document's text, the operation
name and the variables: nothing is shared across viewers, and what each reads is checked for that
viewer as always. The first subscriber starts the feed: the subscription runs once, on a context
of its own (`feed_context`: the viewer and the app, no connection), and each of its results is
encoded to JSON once; each subscriber's socket gets it inside a message with that subscriber's
id. One who joins a running ``jobProgress`` or ``videoUpdated`` feed gets its newest result first
(the current state; `schema.subscriptions.STARTS_WITH_CURRENT_STATE`), then the same results as
everyone else. A feed ends when its subscription ends (each subscriber then completes) or when
its last subscriber leaves (the subscription is cancelled).

Each subscriber keeps what an unshared subscription has:

* its rate limits, charged when it joins, and its account, checked then (`Feeds.admits`);
* its connection's token expiry: it then ends alone with ``UNAUTHENTICATED``, as an unshared one
  does (`schema.transport.streaming.TOKEN_EXPIRED`);
* its access-log line and metrics (`schema.extensions.telemetry.SubscriberTelemetry`,
  ``path=shared``).

A subscriber the feed cannot serve is answered by a run of its own instead, which reports
exactly what it always did: the feed's run failed before its first result (a document that does
not validate, someone else's id …), its rate limit was refused, its account is gone. Nothing has
been sent to it by then.

A subscriber whose client reads more slowly than results come falls behind; past `MAX_BACKLOG`
results its connection is closed with 1013 (try again later): a client that resubscribes with
``afterVersion`` misses no status change.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from graphql import FieldNode, GraphQLError, OperationType, get_operation_ast, parse
from prometheus_client import Gauge
from strawberry.types.execution import ExecutionResult, PreExecutionError

from app.auth import Viewer
from app.errors import Unauthenticated
from app.state import AppState
from schema import StudioSchema
from schema.change_reads import ChangeReads
from schema.context import Context
from schema.extensions.errors import coded_error
from schema.extensions.rate_limits import charge
from schema.extensions.telemetry import SubscriberTelemetry, error_code
from schema.subscriptions import STARTS_WITH_CURRENT_STATE
from schema.transport.streaming import (
    TOKEN_EXPIRED,
    ConnectionContext,
    ShortSessionGate,
    autocommits,
    operation_context,
)

logger = logging.getLogger(__name__)

#: Results a subscriber may be behind before its connection is closed (`CLOSE_TOO_SLOW`).
MAX_BACKLOG = 1000
#: RFC 6455 "Try Again Later": the server closed a connection whose client fell behind.
CLOSE_TOO_SLOW = 1013
#: A feed's own viewer never expires: each subscriber ends at its own token's expiry.
_NEVER = datetime(9999, 1, 1, tzinfo=UTC)
#: Distinct documents whose shape is remembered (`Feeds.shape`).
_SHAPES = 256

#: (user id, document, operation name, variables as canonical JSON).
FeedKey = tuple[uuid.UUID, str, str | None, str]


@dataclass(frozen=True, slots=True)
class Shape:
    """A subscription operation that can be shared: its name and its one root field."""

    name: str | None
    root: str


@dataclass(frozen=True, slots=True)
class Result:
    """One result of a feed: the JSON of a ``next`` message's payload, and its error codes."""

    payload: str
    codes: tuple[str, ...]


class Ended(enum.Enum):
    """How `Feeds.serve` left a subscriber."""

    #: The feed could not serve it and sent it nothing: the caller runs it unshared.
    UNSERVED = "unserved"
    #: Its last result is sent: the caller completes the operation.
    COMPLETE = "complete"
    #: It fell `MAX_BACKLOG` behind: the caller closes its connection (`CLOSE_TOO_SLOW`).
    BEHIND = "behind"


class _Signal(enum.Enum):
    END = "end"
    EXPIRED = "expired"
    BEHIND = "behind"


class _Member:
    """One subscriber of a feed: the results it has yet to send."""

    __slots__ = ("_backlog", "_wake", "behind", "feed")

    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self._backlog: deque[Result | Literal[_Signal.END, _Signal.EXPIRED]] = deque()
        self._wake: asyncio.Future[None] | None = None
        self.behind = False

    def push(self, item: Result | Literal[_Signal.END, _Signal.EXPIRED]) -> None:
        if len(self._backlog) >= MAX_BACKLOG and isinstance(item, Result):
            self.behind = True
        else:
            self._backlog.append(item)
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def next(self) -> Result | _Signal:
        while not self._backlog and not self.behind:
            self._wake = asyncio.get_running_loop().create_future()
            try:
                await self._wake
            finally:
                self._wake = None
        if self.behind:
            return _Signal.BEHIND
        return self._backlog.popleft()


class Feed:
    """One run of a subscription, and the subscribers it serves."""

    def __init__(
        self,
        feeds: Feeds,
        key: FeedKey,
        run: Callable[[], Awaitable[Any]],
        *,
        root: str,
        runs: Gauge,
    ) -> None:
        self.key = key
        self.members: set[_Member] = set()
        self.repeats_latest = root in STARTS_WITH_CURRENT_STATE
        self._runs = runs.labels(root)
        self.latest: Result | None = None
        #: True once the run's first result is out; False if the run failed before it.
        self.started: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._feeds = feeds
        self.task = asyncio.create_task(self._run(run), name="shared subscription")

    def join(self) -> _Member:
        member = _Member(self)
        if self.repeats_latest and self.latest is not None:
            member.push(self.latest)
        self.members.add(member)
        return member

    async def _run(self, run: Callable[[], Awaitable[Any]]) -> None:
        self._runs.inc()
        try:
            source = await run()
            async with contextlib.aclosing(source):
                async for result in source:
                    if not self.started.done():
                        if isinstance(result, PreExecutionError) or not isinstance(
                            result, ExecutionResult
                        ):
                            return  # its subscribers are answered by runs of their own
                        self.started.set_result(True)
                    self._publish(self._feeds.encode_result(result))
        except Exception:
            logger.exception("shared subscription failed")
        finally:
            self._runs.dec()
            self._feeds.forget(self)
            if not self.started.done():
                self.started.set_result(False)
            for member in self.members:
                member.push(_Signal.END)

    def _publish(self, result: Result) -> None:
        self.latest = result
        for member in self.members:
            member.push(result)


class Feeds:
    """This process's running feeds (one registry per app, `schema.transport.view`)."""

    def __init__(self, schema: StudioSchema, encode: Callable[[object], str]) -> None:
        self.schema = schema
        self.encode = encode
        self._feeds: dict[FeedKey, Feed] = {}
        self.shape = functools.lru_cache(maxsize=_SHAPES)(self._shape)
        self._reads: ChangeReads | None = None

    async def serve(
        self,
        connection: ConnectionContext,
        shape: Shape,
        query: str,
        variables: Mapping[str, object] | None,
        operation_name: str | None,
        send: Callable[[str], Awaitable[None]],
    ) -> Ended:
        """Serve one subscriber from the feed of its operation (started if none runs), sending
        each result's payload with ``send``, until the feed ends or its token expires."""
        started = time.perf_counter()
        viewer = connection.viewer
        assert viewer is not None
        member = self._join(connection, viewer, shape, query, variables, operation_name)
        expiry = asyncio.get_running_loop().call_later(
            max(0.0, (viewer.expires_at - datetime.now(UTC)).total_seconds()),
            member.push,
            _Signal.EXPIRED,
        )
        telemetry: SubscriberTelemetry | None = None
        try:
            if not await asyncio.shield(member.feed.started):
                return Ended.UNSERVED
            context = await self.admits(connection)
            if context is None:
                return Ended.UNSERVED
            telemetry = SubscriberTelemetry(context, shape.name, shape.root, started)
            del context  # its loaders are not held for the subscriber's life
            while True:
                item = await member.next()
                if item is _Signal.END:
                    return Ended.COMPLETE
                if item is _Signal.BEHIND:
                    return Ended.BEHIND
                if item is _Signal.EXPIRED:
                    expired = self._expired(connection.request_id)
                    telemetry.codes += expired.codes
                    await send(expired.payload)
                    return Ended.COMPLETE
                assert isinstance(item, Result)
                telemetry.codes += item.codes
                await send(item.payload)
        finally:
            expiry.cancel()
            self._leave(member)
            if telemetry is not None:
                telemetry.finish()

    async def admits(self, connection: ConnectionContext) -> Context | None:
        """The subscriber's own operation context when it may be served: its rate limits
        charged (not refused) and its account still there; ``None`` otherwise."""
        assert connection.request is not None
        state = AppState.of(connection.request)
        gate = ShortSessionGate(state.sessionmaker, autocommit=autocommits(connection.settings))
        context = operation_context(connection, gate)
        try:
            try:
                await context.require_viewer()
            except Unauthenticated:
                return None
        finally:
            await gate.close()
        limiter = self.schema.rate_limiter
        if limiter is not None and await charge(limiter, context) is not None:
            return None
        return context

    def encode_result(self, result: ExecutionResult) -> Result:
        payload: dict[str, object] = {"data": result.data}
        codes: tuple[str, ...] = ()
        if result.errors:
            payload["errors"] = [error.formatted for error in result.errors]
            codes = tuple(error_code(error) for error in result.errors)
        if result.extensions:
            payload["extensions"] = result.extensions
        return Result(self.encode(payload), codes)

    def forget(self, feed: Feed) -> None:
        if self._feeds.get(feed.key) is feed:
            del self._feeds[feed.key]

    def _join(
        self,
        connection: ConnectionContext,
        viewer: Viewer,
        shape: Shape,
        query: str,
        variables: Mapping[str, object] | None,
        operation_name: str | None,
    ) -> _Member:
        key: FeedKey = (viewer.user_id, query, operation_name, _canonical(variables))
        feed = self._feeds.get(key)
        if feed is None:
            context = feed_context(connection, viewer, self._change_reads(connection))

            def run() -> Awaitable[Any]:
                subscribe: Callable[..., Awaitable[Any]] = self.schema.subscribe
                return subscribe(
                    query,
                    variable_values=dict(variables) if variables is not None else None,
                    context_value=context,
                    operation_name=operation_name,
                )

            assert connection.request is not None
            runs = AppState.of(connection.request).metrics.subscription_runs
            feed = self._feeds[key] = Feed(self, key, run, root=shape.root, runs=runs)
        return feed.join()

    def _change_reads(self, connection: ConnectionContext) -> ChangeReads:
        """The feeds' batched re-reads (`schema.change_reads`), on the app's sessions."""
        if self._reads is None:
            assert connection.request is not None
            settings = connection.settings
            gate = ShortSessionGate(
                AppState.of(connection.request).sessionmaker, autocommit=autocommits(settings)
            )
            window = settings.subscription_reread_window_ms / 1000
            self._reads = ChangeReads(gate, window_seconds=window)
        return self._reads

    def _leave(self, member: _Member) -> None:
        feed = member.feed
        feed.members.discard(member)
        if not feed.members and not feed.task.done():
            self.forget(feed)
            feed.task.cancel()

    def _expired(self, request_id: str) -> Result:
        # What an unshared subscription sends when its connection's token expires
        # (`schema.subscriptions`): its resolver raises, and Strawberry reports the exception.
        raised = Unauthenticated(TOKEN_EXPIRED)
        error = coded_error(GraphQLError(str(raised), original_error=raised), request_id)
        payload = {"data": None, "errors": [error.formatted]}
        return Result(self.encode(payload), (error_code(error),))

    @staticmethod
    def _shape(query: str, operation_name: str | None, max_tokens: int) -> Shape | None:
        """The operation ``operation_name`` picks from ``query``, if it can be shared: a
        subscription with one root field (no fragment) and no ``afterVersion``."""
        try:
            document = parse(query, no_location=True, max_tokens=max_tokens)
        except GraphQLError:
            return None
        operation = get_operation_ast(document, operation_name)
        if operation is None or operation.operation is not OperationType.SUBSCRIPTION:
            return None
        selections = operation.selection_set.selections
        if len(selections) != 1 or not isinstance(root := selections[0], FieldNode):
            return None
        if any(argument.name.value == "afterVersion" for argument in root.arguments or ()):
            return None
        name = operation.name.value if operation.name else None
        return Shape(name, root.name.value)


def feed_context(
    connection: ConnectionContext, viewer: Viewer, change_reads: ChangeReads
) -> ConnectionContext:
    """The context a feed's run starts from: ``connection``'s viewer (whose token never
    expires here: each subscriber ends at its own) and app, marked `Context.shared`, its
    re-reads batched with the other feeds' (``change_reads``)."""
    assert connection.request is not None
    gate = ShortSessionGate(AppState.of(connection.request).sessionmaker)
    forever = Viewer(user_id=viewer.user_id, expires_at=_NEVER)
    return ConnectionContext(
        settings=connection.settings,
        request_id=connection.request_id,
        gate=gate,
        viewer=forever,
        request=connection.request,
        response=connection.response,
        shared=True,
        change_reads=change_reads,
        accounts=connection.accounts,
    )


def _canonical(variables: Mapping[str, object] | None) -> str:
    if not variables:
        return ""
    return json.dumps(variables, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

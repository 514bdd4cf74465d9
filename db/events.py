"""Change events: one dedicated ``LISTEN studio_events`` connection per process (SPEC §5).

The database announces every committed change to a job or a video with ``NOTIFY studio_events``
(trigger ``studio_notify_change``, migration ``20261125_job_events``). `ChangeListener` holds one
asyncpg connection outside the SQLAlchemy pool, parses each payload into a `ChangeEvent` and hands
it to its subscribers' callbacks, in the order PostgreSQL delivered them. In an API process the
subscribers are the event hub of the GraphQL subscriptions and, when it runs one, the in-process
worker; a ``studio worker`` process has a listener of its own with the worker as its subscriber.

NOTIFY is not durable: a notification sent while the listener is disconnected (a database restart,
a network cut) is lost. So the listener reconnects with exponential backoff and, once ``LISTEN`` is
active again, calls ``on_reconnect``: whoever relies on events re-reads the current state then,
and anything that changed while it was away is caught by that read.

The same connection listens on ``studio_accounts`` (`ACCOUNTS_CHANNEL`): the user id of each
account that ends, handed to ``on_account_end`` (`app.live_accounts`).

``LISTEN`` holds session state, so the listener must reach the server directly
(``Settings.direct_database``): through a pooler in transaction mode its ``LISTEN`` lands on a
server session that the pooler then lends to others, and no notification ever arrives. Nothing
fails when that happens, so `ChangeListener.probe` checks it: a notification sent on
``studio_listener_probe`` by another session must come back within a bound (``/readyz`` and
start-up, see `app.health`).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.url import DatabaseURL

CHANNEL = "studio_events"
#: Where `ChangeListener.probe` sends itself a token; nothing else listens there.
PROBE_CHANNEL = "studio_listener_probe"
#: An account's end: its user id, when the user is soft-deleted or deleted (trigger
#: ``users_notify_account_end``, migration ``20261204_account_events``).
ACCOUNTS_CHANNEL = "studio_accounts"
APPLICATION_NAME = "studio-api-listener"

OnEvent = Callable[["ChangeEvent"], None]
OnReconnect = Callable[[], None]
OnAccountEnd = Callable[[uuid.UUID], None]

logger = logging.getLogger(__name__)


class ChangeKind(enum.StrEnum):
    JOB = "job"
    VIDEO = "video"


@dataclass(frozen=True)
class ChangeEvent:
    """One committed change, as the trigger describes it.

    ``version`` grows by one with every update of the row, so a subscriber can tell a newer state
    from one it has already seen. ``video_id`` is the job's video (``None`` for a video event);
    ``deleted`` says whether a video is soft-deleted (always ``False`` for a job).
    """

    kind: ChangeKind
    id: uuid.UUID
    owner_id: uuid.UUID | None
    video_id: uuid.UUID | None
    status: str
    stage: str | None
    progress: int
    version: int
    deleted: bool = False

    @classmethod
    def from_payload(cls, payload: str) -> ChangeEvent:
        """Parse a NOTIFY payload; `ValueError` (or a subclass) when it is not one of ours."""
        data = json.loads(payload)
        if not isinstance(data, dict):
            raise ValueError("payload is not a JSON object")
        try:
            return cls(
                kind=ChangeKind(data["kind"]),
                id=uuid.UUID(data["id"]),
                owner_id=_optional_uuid(data.get("owner_id")),
                video_id=_optional_uuid(data.get("video_id")),
                status=str(data["status"]),
                stage=None if data.get("stage") is None else str(data["stage"]),
                progress=int(data["progress"]),
                version=int(data["version"]),
                deleted=bool(data.get("deleted", False)),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"payload lacks a valid field: {exc}") from None


class ChangeListener:
    """Listens on ``studio_events`` over its own connection, reconnecting until stopped.

    Each subscriber gives two callbacks (``on_event``/``on_reconnect`` here for the first,
    `subscribe` for more). ``on_event`` runs in the event loop for every notification and must
    not block (the API hands events to in-memory queues). ``on_reconnect`` runs after every
    successful (re)connection, once ``LISTEN`` is active. ``min_backoff``/``max_backoff`` bound
    the wait between failed attempts (doubling, with jitter); a dropped connection is retried at
    once, then with backoff. ``application_name`` names the connection in ``pg_stat_activity``.
    """

    def __init__(
        self,
        database: DatabaseURL,
        on_event: OnEvent | None = None,
        on_reconnect: OnReconnect | None = None,
        *,
        min_backoff: float = 0.2,
        max_backoff: float = 5.0,
        check_interval: float = 15.0,
        application_name: str = APPLICATION_NAME,
        on_account_end: OnAccountEnd | None = None,
    ) -> None:
        self.database = database
        #: Called with the user id of every account that ends (`ACCOUNTS_CHANNEL`).
        self.on_account_end = on_account_end
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.check_interval = check_interval
        self.application_name = application_name
        self._subscribers: list[tuple[OnEvent, OnReconnect]] = []
        if on_event is not None or on_reconnect is not None:
            self._subscribers.append((on_event or _ignore, on_reconnect or _ignore))
        self.last_error: str | None = None
        self.failed_attempts = 0
        self._connection: Any = None
        self._task: asyncio.Task[None] | None = None
        self._attempted = asyncio.Event()
        self._wake = asyncio.Event()
        self._probes: dict[str, asyncio.Future[None]] = {}

    @property
    def connected(self) -> bool:
        """Whether ``LISTEN`` is active right now (what ``/readyz`` reports)."""
        connection = self._connection
        return connection is not None and not connection.is_closed()

    @contextlib.contextmanager
    def subscribe(self, on_event: OnEvent, on_reconnect: OnReconnect) -> Iterator[None]:
        """Also hand events and reconnections to these callbacks while the block runs (the
        in-process worker shares the API's listener this way). Subscribing does not call
        ``on_reconnect``: a subscriber reads the state it needs itself first."""
        subscriber = (on_event, on_reconnect)
        self._subscribers.append(subscriber)
        try:
            yield
        finally:
            self._subscribers.remove(subscriber)

    async def start(self) -> None:
        """Start listening; returns once the first attempt to connect has finished, whatever
        its outcome (a database that is down at start-up is retried in the background)."""
        if self._task is not None:
            raise RuntimeError("the listener is already running")
        self._attempted.clear()
        self._task = asyncio.create_task(self._run(), name="studio-change-listener")
        self._task.add_done_callback(_log_crash)
        await self._attempted.wait()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def check(self, *, within: float) -> bool:
        """Whether the listener is connected; if not, try to reconnect now (skipping the rest of
        the backoff) and wait up to ``within`` seconds for that attempt."""
        if self.connected or self._task is None:
            return self.connected
        self._attempted.clear()
        self._wake.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._attempted.wait()
        return self.connected

    async def probe(self, send: Callable[[str], Awaitable[None]], *, within: float) -> bool:
        """Whether notifications reach this listener: ``send`` makes another session notify
        `PROBE_CHANNEL` with a token (`notify_probe`), which must arrive within ``within``
        seconds. ``False`` while disconnected; a failing ``send`` propagates."""
        if not self.connected:
            return False
        token = uuid.uuid4().hex
        arrived = asyncio.get_running_loop().create_future()
        self._probes[token] = arrived
        try:
            async with asyncio.timeout(within):
                await send(token)
                await arrived
        except TimeoutError:
            return False
        finally:
            del self._probes[token]
        return True

    # --- the connection loop ----------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0  # in a row
        while True:
            try:
                connection = await self._listen()
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                failures += 1
                self.failed_attempts += 1
                self.last_error = type(exc).__name__
                delay = min(self.min_backoff * 2 ** (failures - 1), self.max_backoff)
                logger.warning(
                    "change listener cannot connect (%s); retrying in %.1fs",
                    self.last_error,
                    delay,
                )
                self._attempted.set()
                await self._sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311 (jitter)
                continue
            failures = 0
            self.last_error = None
            self._attempted.set()
            try:
                for _, on_reconnect in list(self._subscribers):
                    self._call(on_reconnect)
                await self._watch(connection)
            finally:
                self._connection = None
                if not connection.is_closed():
                    connection.terminate()
            logger.warning("change listener lost its connection; reconnecting")

    async def _listen(self) -> Any:
        connection = await asyncpg.connect(
            **connect_kwargs(self.database, application_name=self.application_name)
        )
        try:
            await connection.add_listener(CHANNEL, self._notified)
            await connection.add_listener(PROBE_CHANNEL, self._probed)
            await connection.add_listener(ACCOUNTS_CHANNEL, self._account_ended)
        except BaseException:
            connection.terminate()
            raise
        self._connection = connection
        logger.info("change listener: LISTEN %s", CHANNEL)
        return connection

    async def _watch(self, connection: Any) -> None:
        """Return when the connection is gone: closed by the server, or silently dead (a
        periodic ``SELECT 1`` that does not answer in time)."""
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.check_interval):
                    await lost.wait()
            if lost.is_set():
                return
            try:
                async with asyncio.timeout(self.check_interval):
                    await connection.fetchval("SELECT 1")
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                return

    async def _sleep(self, seconds: float) -> None:
        """The backoff wait; `check` cuts it short."""
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    def _notified(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        try:
            event = ChangeEvent.from_payload(payload)
        except ValueError as exc:
            logger.warning("ignoring a malformed %s notification: %s", channel, exc)
            return
        for on_event, _ in list(self._subscribers):
            self._call(on_event, event)

    def _account_ended(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        try:
            user_id = uuid.UUID(payload)
        except ValueError:
            logger.warning("ignoring a malformed %s notification", channel)
            return
        if self.on_account_end is not None:
            self._call(self.on_account_end, user_id)

    def _probed(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        arrived = self._probes.get(payload)
        if arrived is not None and not arrived.done():
            arrived.set_result(None)

    def _call(self, callback: Callable[..., None], *args: Any) -> None:
        # A failing callback must not take the listener down with it (nor lose the connection).
        try:
            callback(*args)
        except Exception:
            logger.exception("change listener callback %r failed", callback)


async def notify_probe(engine: AsyncEngine, token: str) -> None:
    """Send `ChangeListener.probe`'s token from a session of ``engine`` (as the workers' commits
    reach the listener: from other sessions, through ``DATABASE_URL``)."""
    async with engine.begin() as connection:
        await connection.execute(
            text("SELECT pg_notify(:channel, :token)"), {"channel": PROBE_CHANNEL, "token": token}
        )


def connect_kwargs(
    database: DatabaseURL, *, application_name: str = APPLICATION_NAME
) -> dict[str, Any]:
    """``asyncpg.connect`` keywords for a parsed ``DATABASE_URL`` (host or Unix socket, TLS)."""
    url = database.url
    query = dict(url.query)
    host = url.host or _single(query.get("host"))
    port = url.port or _single(query.get("port"))
    return {
        "host": host,
        "port": int(port) if port else None,
        "user": url.username,
        "password": url.password,
        "database": url.database,
        "server_settings": {"application_name": application_name},
        "timeout": database.connect_timeout or 10.0,
    } | database.connect_args()


def _log_crash(task: asyncio.Task[None]) -> None:
    # Only a bug ends the loop early; /readyz then reports the listener down for good.
    if not task.cancelled() and task.exception() is not None:
        logger.error("change listener stopped", exc_info=task.exception())


def _ignore(*args: Any) -> None:
    pass


def _single(value: str | tuple[str, ...] | None) -> str | None:
    return value[0] if isinstance(value, tuple) else value


def _optional_uuid(value: object) -> uuid.UUID | None:
    return None if value is None else uuid.UUID(str(value))

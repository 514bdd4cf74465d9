"""Wake idle workers the moment a job becomes claimable: ``LISTEN studio_events``.

Every change to a job is announced on the ``studio_events`` channel by a trigger (migration
``20261125_job_events``), in the transaction that makes it. An idle worker waits on a `JobWakeup`
instead of polling: a job event with status QUEUED (a new job, a retry, a hand-back) rings it. The
worker keeps a slow poll as a safety net, which also covers the time this connection is down
(reconnected on the next `wait` after a database restart).

One dedicated connection per worker process, outside the pool: a listening connection must stay
open and must not be handed to anyone else.
"""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import suppress
from types import TracebackType
from typing import Any

import asyncpg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

CHANNEL = "studio_events"

logger = logging.getLogger(__name__)


class JobWakeup:
    """A counter of "a job may be claimable" signals that tasks can wait on."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self._raw: Any = None  # the asyncpg connection under it
        self._lost = False
        self._event = asyncio.Event()
        self.rings = 0

    async def __aenter__(self) -> JobWakeup:
        await self._connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._disconnect()

    @property
    def listening(self) -> bool:
        return self._connection is not None and not self._lost

    def ring(self) -> None:
        """Wake every waiter (also used to wake them for shutdown)."""
        self.rings += 1
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, seen: int, max_wait: float) -> None:
        """Return once `rings` has passed ``seen`` or after ``max_wait`` seconds.

        Read `rings` *before* looking for work and pass it as ``seen``: a signal that arrives in
        between is not lost.
        """
        if not self.listening:
            await self._disconnect()
            await self._connect()
        if self.rings > seen:
            return
        with suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), max_wait)

    def _on_event(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        try:
            event = json.loads(payload)
        except ValueError:
            return
        if event.get("kind") == "job" and event.get("status") == "QUEUED":
            self.ring()

    def _on_terminated(self, connection: Any) -> None:
        logger.warning("job wake-up connection lost; polling until it is back")
        self._lost = True

    async def _connect(self) -> None:
        try:
            connection = await self._engine.connect()
        except (DBAPIError, OSError) as exc:
            logger.warning("cannot listen for new jobs (%s); polling instead", exc)
            return
        try:
            raw = (await connection.get_raw_connection()).driver_connection
            assert raw is not None
            await raw.add_listener(CHANNEL, self._on_event)
            raw.add_termination_listener(self._on_terminated)
        except (DBAPIError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            logger.warning("cannot listen for new jobs (%s); polling instead", exc)
            await _close(connection)
            return
        self._connection, self._raw, self._lost = connection, raw, False
        self.ring()  # events may have been missed while not listening

    async def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        raw, self._raw = self._raw, None
        if raw is not None and not raw.is_closed():
            raw.remove_termination_listener(self._on_terminated)  # this close is no loss
        await _close(connection)


async def _close(connection: AsyncConnection) -> None:
    try:
        await connection.close()
    except (DBAPIError, OSError) as exc:
        logger.debug("closing the wake-up connection: %s", exc)

"""Shared subscriptions' re-reads, batched: the rows that change within a few milliseconds are
read again in one statement per type, for every feed of every viewer.

A shared subscription (`schema.transport.feeds`) reads its row again for each change of it.
With many rows changing, that is one statement per change. Here a re-read waits up to the
window (`Settings.subscription_reread_window_ms`) for the others that come in meanwhile; then one
statement (`db.queries.rereads`) reads every (viewer, id) asked for, each row checked against its
own viewer's ownership exactly as the viewer's loaders check it, and each waiter gets the row of
its own key: nothing read for one viewer reaches another. Nothing is cached either: the next
change reads again. A batch holds at most `MAX_KEYS` keys; one that fills is read at once.

A failure of the batch's statement is every waiter's failure, which each handles as it would
its own (`schema.subscriptions._Changes.reread`: retried when the database is unreachable).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from db import models
from db.queries import rereads
from db.queries.rereads import OwnedKey
from schema.loaders import SessionGate

V = TypeVar("V")

#: Keys read in one statement at the most.
MAX_KEYS = 1000

ReadMany = Callable[[AsyncSession, Sequence[OwnedKey]], Awaitable[Mapping[OwnedKey, V]]]


class _Batcher(Generic[V]):
    def __init__(self, gate: SessionGate, read: ReadMany[V], window: float) -> None:
        self._gate = gate
        self._read = read
        self._window = window
        self._open: dict[OwnedKey, asyncio.Future[V | None]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def load(self, key: OwnedKey) -> V | None:
        loop = asyncio.get_running_loop()
        future = self._open.get(key)
        if future is None:
            future = self._open[key] = loop.create_future()
            if len(self._open) >= MAX_KEYS:
                self._dispatch()
            elif self._timer is None:
                self._timer = loop.call_later(self._window, self._dispatch)
        # One waiter giving up (its subscription ended) does not cancel the others' read.
        return await asyncio.shield(future)

    def _dispatch(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._open = self._open, {}
        if batch:
            task = asyncio.get_running_loop().create_task(self._answer(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _answer(self, batch: dict[OwnedKey, asyncio.Future[V | None]]) -> None:
        try:
            rows = await self._gate.run(self._read, list(batch))
        except asyncio.CancelledError:
            for future in batch.values():
                future.cancel()
            raise
        except Exception as exc:  # every waiter's failure, handled as its own read's
            for future in batch.values():
                if not future.done():
                    future.set_exception(exc)
            return
        for key, future in batch.items():
            if not future.done():
                future.set_result(rows.get(key))


class ChangeReads:
    """The re-reads of one app's shared subscriptions (`schema.transport.feeds.Feeds` has one),
    run on ``gate`` (short sessions of the app's own)."""

    def __init__(self, gate: SessionGate, *, window_seconds: float) -> None:
        self.jobs = _Batcher(gate, rereads.jobs_by_owned_ids, window_seconds)
        self.videos = _Batcher(gate, rereads.videos_by_owned_ids, window_seconds)

    async def job(self, viewer_id: uuid.UUID, job_id: uuid.UUID) -> models.GenerationJob | None:
        """The job as ``viewer_id`` may see it now (``None``: not theirs, or gone)."""
        return await self.jobs.load((viewer_id, job_id))

    async def video(self, viewer_id: uuid.UUID, video_id: uuid.UUID) -> models.Video | None:
        """The live video as ``viewer_id`` may see it now (``None``: not theirs, or gone)."""
        return await self.videos.load((viewer_id, video_id))

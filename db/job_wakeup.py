"""What a worker learns from ``studio_events``: a job may be claimable, or a job it runs changed.

Every change to a job is announced on the ``studio_events`` channel by a trigger (migration
``20261125_job_events``), in the transaction that makes it, and the process's
`db.events.ChangeListener` hands it to the worker's `JobWakeup` (``studio serve`` shares the API's
listener with its in-process worker; a ``studio worker`` process has its own). So:

* a job event with status QUEUED (a new job, a retry, a hand-back) *rings*: idle slots waiting on
  `wait` claim at once instead of polling;
* an event for a job this worker runs (`watch`) with any other status than RUNNING — cancelled,
  its video deleted — calls that run's callback: the run checks its lease at once. That is how a
  cancellation stops a stage within milliseconds without each running job re-reading its row
  several times a second. (Events with RUNNING are the run's own writes, or a reclaim that only
  happens after the run has failed to renew for a whole lease.)
* the listener's reconnection (notifications sent while it was away are lost) rings and calls
  every watched run's callback: everyone looks again.

Notifications can still be missed while a dead connection goes unnoticed, and a deleted row sends
none, so the worker keeps slow polls as a safety net: idle slots every ``worker_poll_seconds``, and
running jobs check their lease at least as often (`app.worker.job_monitor`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from types import TracebackType

from db.events import ChangeEvent, ChangeKind, ChangeListener
from db.models import JobStatus


class JobWakeup:
    """A counter of "a job may be claimable" signals that tasks can wait on, and the watches of
    the jobs this worker runs. Subscribed to ``listener`` while used as a context manager."""

    def __init__(self, listener: ChangeListener) -> None:
        self._listener = listener
        self._event = asyncio.Event()
        self._watches: dict[uuid.UUID, list[Callable[[], None]]] = {}
        self._subscription = ExitStack()
        self.rings = 0

    def __enter__(self) -> JobWakeup:
        self._subscription.enter_context(self._listener.subscribe(self.on_event, self.on_reconnect))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._subscription.close()

    @property
    def listening(self) -> bool:
        """Whether notifications arrive right now (``LISTEN`` is active)."""
        return self._listener.connected

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
        if self.rings > seen:
            return
        with suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), max_wait)

    @contextmanager
    def watch(self, job_id: uuid.UUID, changed: Callable[[], None]) -> Iterator[None]:
        """Call ``changed`` while the block runs whenever job ``job_id`` may have stopped being
        this worker's (see the module's docstring). Register before the run's first fenced
        write: a change committed earlier makes that write fail, a later one calls ``changed``."""
        callbacks = self._watches.setdefault(job_id, [])
        callbacks.append(changed)
        try:
            yield
        finally:
            callbacks.remove(changed)
            if not callbacks:
                del self._watches[job_id]

    def on_event(self, event: ChangeEvent) -> None:
        if event.kind is not ChangeKind.JOB:
            return
        if event.status == JobStatus.QUEUED:
            self.ring()
        if event.status != JobStatus.RUNNING:
            for changed in list(self._watches.get(event.id, ())):
                changed()

    def on_reconnect(self) -> None:
        self.ring()  # events may have been missed while not listening
        for callbacks in list(self._watches.values()):
            for changed in list(callbacks):
                changed()

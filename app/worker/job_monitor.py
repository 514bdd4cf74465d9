"""The monitor of one running job: it writes the progress, keeps the lease and notices a stop.

While a job's stages run, its monitor wakes every `PROGRESS_INTERVAL` seconds (a *tick*) and at
once when alerted, and then makes at most one short transaction, only when something is due:

* the overall progress, when it grew (so at most ~4 writes per second per job);
* the lease renewal, every third of the lease;
* otherwise a `check_lease` read, when the job may have been stopped: when alerted (a
  notification said the job changed, or the listener reconnected and may have missed one), on
  every tick while the listener is down, and at the latest ``check_seconds`` after the last
  statement that proved the lease (the safety net).

A job that reports no progress therefore costs one renewal per third of the lease and one check
per ``check_seconds`` (0.2 statements a second with the defaults), not four reads a second.

How soon a stop is noticed, with the defaults (30 s lease, ``STUDIO_WORKER_POLL_SECONDS`` 5):

* listener connected: the notification's delivery plus one read (milliseconds);
* listener known to be down (reconnecting): the next tick, ≤ `PROGRESS_INTERVAL`; once it is back,
  every run checks at once;
* anything else missed (a connection that died without notice, a row deleted outright, a reclaim,
  which announces RUNNING): at most ``min(check_seconds, lease / 3)`` plus a tick — 5.25 s.

Every statement is fenced by the lease (`db.queries.job_leases`): the first that finds the job
cancelled or reclaimed stops the run, and so does being unable to renew for a whole lease — by
then another worker may rightly have taken the job over.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import suppress

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.worker.pipeline import PROGRESS_INTERVAL, ProgressMeter
from db.models import JobStage
from db.queries import job_leases
from db.queries.job_leases import Lease, LeaseLost

logger = logging.getLogger(__name__)


class JobMonitor:
    """``stage()`` is the stage running now (``None`` before the first); ``stop(reason)``
    interrupts the run; ``listening()`` says whether notifications about the job arrive now.
    ``writes`` is the run's write lock, shared with its other writes so they land in order."""

    def __init__(
        self,
        lease: Lease,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        writes: asyncio.Lock,
        meter: ProgressMeter,
        stage: Callable[[], JobStage | None],
        stop: Callable[[str], None],
        lease_seconds: float,
        check_seconds: float,
        listening: Callable[[], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lease = lease
        self._sessionmaker = sessionmaker
        self._writes = writes
        self._meter = meter
        self._stage = stage
        self._stop = stop
        self._lease_seconds = lease_seconds
        self._check_seconds = check_seconds
        self._listening = listening
        self._clock = clock
        self._renewed_at = self._proved_at = clock()  # the claim took the lease just now
        self._alerted = False
        self._closed = False
        self._wake = asyncio.Event()

    def alert(self) -> None:
        """The job may have changed (a notification said so): check it now, not in seconds."""
        self._alerted = True
        self._wake.set()

    def close(self) -> None:
        """The stages are over: `run` returns (the run's final write follows)."""
        self._closed = True
        self._wake.set()

    async def run(self) -> None:
        """Tick until `close()`, or until the job must stop (the run has been told why)."""
        while True:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), PROGRESS_INTERVAL)
            self._wake.clear()
            if self._closed or not await self.tick():
                return

    async def tick(self) -> bool:
        """Do what is due now (see the module's docstring); ``False`` once the job must stop."""
        now = self._clock()
        alerted, self._alerted = self._alerted, False
        renew = now - self._renewed_at >= self._lease_seconds / 3
        check = alerted or not self._listening() or now - self._proved_at >= self._check_seconds
        try:
            proved = await self._transaction(renew=renew, check=check)
        except LeaseLost as lost:
            self._stop(str(lost))
            return False
        except (DBAPIError, OSError) as exc:
            self._alerted = self._alerted or alerted  # look again at the next tick
            if self._clock() - self._renewed_at >= self._lease_seconds:
                self._stop(f"the lease could not be renewed ({exc.__class__.__name__})")
                return False
            logger.warning("job %s: lease check failed (%s)", self.lease.job_id, exc)
            return True
        if proved:
            self._proved_at = now
        if renew:
            self._renewed_at = now
        return True

    async def _transaction(self, *, renew: bool, check: bool) -> bool:
        """One short transaction, if anything is due: the progress if due, the renewal if due,
        else the check. Whether it ran (every statement in it proves the lease). Under the run's
        write lock, so a job uses one connection at a time."""
        async with self._writes:
            stage = self._stage()
            value = self._meter.due() if stage is not None else None
            if value is None and not renew and not check:
                return False
            async with self._sessionmaker.begin() as session:
                if value is not None and stage is not None:
                    await job_leases.report_progress(
                        session, self.lease, stage=stage, progress=value
                    )
                if renew:
                    await job_leases.renew_lease(session, self.lease, self._lease_seconds)
                elif value is None:
                    await job_leases.check_lease(session, self.lease)
            if value is not None:
                self._meter.mark_written(value)
            return True

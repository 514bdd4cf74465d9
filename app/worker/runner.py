"""The worker: claim jobs from the queue in PostgreSQL and run them (SPEC §5, issue 5).

``concurrency`` slots each loop: claim a job (`db.queries.job_queue.claim_next`, one short
transaction), run it (`JobRun`), repeat. The worker hears of job changes through `JobWakeup`,
subscribed to a `db.events.ChangeListener`: the API process's own when it runs inside
``studio serve`` (one ``LISTEN`` connection per process), else one it starts itself. A slot that
finds nothing waits on it — it rings when a job is queued — for at most the time until the next
backing-off job becomes available or the next lease runs out, and never longer than
``worker_poll_seconds`` (the safety net for a missed notification or a dropped listener). A
running job is watched too: a notification that it was cancelled alerts its run, which checks its
lease at once and stops. So idle workers make no queries between events, a queued job is picked
up at once, and a running job that reports nothing makes no query between its lease renewals but
a safety-net check every ``worker_poll_seconds`` (`app.worker.job_monitor`).

`stop()` (SIGTERM) is graceful: slots stop claiming, a running job finishes its current stage
and is then handed back to the queue (or finishes, if that was its last stage). A stage still
running after ``stop_grace_seconds`` is interrupted and its job handed back too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.observability.worker import WorkerMetrics
from app.settings import Settings
from app.worker.job_run import JobRun
from app.worker.pipeline import Stage
from app.worker.stages import default_stages
from db.events import ChangeListener
from db.job_wakeup import JobWakeup
from db.queries.job_queue import Claim, claim_next, seconds_until_claimable

logger = logging.getLogger(__name__)

#: The ``application_name`` of a ``studio worker`` process's own ``LISTEN`` connection.
LISTENER_NAME = "studio-worker-listener"


def new_worker_id() -> str:
    """Unique per process and start: the lease owner recorded on the jobs this worker runs."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        worker_id: str | None = None,
        concurrency: int = 1,
        *,
        stages: Sequence[Stage] | None = None,
        stop_grace_seconds: float = 20.0,
        metrics: WorkerMetrics | None = None,
        listener: ChangeListener | None = None,
    ) -> None:
        """``listener``: a running listener to share (the API process's, which starts and
        stops it); without one, `run` starts one of its own."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.settings = settings
        self.worker_id = worker_id or new_worker_id()
        self.concurrency = concurrency
        self.stages = list(stages) if stages is not None else default_stages(settings, sessionmaker)
        self.stop_grace_seconds = stop_grace_seconds
        self.metrics = metrics if metrics is not None else WorkerMetrics.discarded()
        self._sessionmaker = sessionmaker
        self._listener = listener
        self._stopping = False
        self._wakeup: JobWakeup | None = None
        self._runs: set[JobRun] = set()
        self._grace_timer: asyncio.TimerHandle | None = None
        self._idle = 0

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def idle_slots(self) -> int:
        """Slots waiting for work right now (the rest are claiming or running a job)."""
        return self._idle

    async def run(self) -> None:
        """Claim and run jobs until `stop()`; returns once every slot has wound down."""
        own = self._listener is None
        listener = self._listener or ChangeListener(
            self.settings.direct_database, application_name=LISTENER_NAME
        )
        logger.info(
            "worker %s started",
            self.worker_id,
            extra={"worker_id": self.worker_id, "concurrency": self.concurrency},
        )
        try:
            with JobWakeup(listener) as wakeup:
                if own:
                    await listener.start()  # a database that is down is retried meanwhile
                self._wakeup = wakeup
                async with asyncio.TaskGroup() as group:
                    for _ in range(self.concurrency):
                        group.create_task(self._slot(wakeup))
        finally:
            self._wakeup = None
            if self._grace_timer is not None:
                self._grace_timer.cancel()
            if own:
                await listener.stop()
            logger.info("worker %s stopped", self.worker_id, extra={"worker_id": self.worker_id})

    def stop(self) -> None:
        """Stop claiming; let running stages finish (up to the grace period), hand jobs back."""
        if self._stopping:
            return
        self._stopping = True
        logger.info("worker %s stopping", self.worker_id, extra={"worker_id": self.worker_id})
        if self._wakeup is not None:
            self._wakeup.ring()
        loop = asyncio.get_running_loop()
        self._grace_timer = loop.call_later(self.stop_grace_seconds, self._interrupt_runs)

    def _interrupt_runs(self) -> None:
        for run in list(self._runs):
            run.stop("the worker is shutting down", hand_back=True)

    async def _slot(self, wakeup: JobWakeup) -> None:
        poll = self.settings.worker_poll_seconds
        while not self._stopping:
            seen = wakeup.rings
            try:
                claim, wait = await self._claim()
            except (DBAPIError, OSError) as exc:
                logger.warning("cannot claim jobs (%s); trying again in %ss", exc, poll)
                claim, wait = None, poll
            if claim is not None:
                try:
                    await self._execute(claim, wakeup)
                except Exception:
                    # Keep the slot alive; the job's lease runs out and it is retried.
                    logger.exception("job %s: the worker failed running it", claim.job.id)
                continue
            # A little past the moment, so that the job is claimable when we look.
            self._idle += 1
            try:
                await wakeup.wait(seen, poll if wait is None else min(poll, wait + 0.05))
            finally:
                self._idle -= 1

    async def _claim(self) -> tuple[Claim | None, float | None]:
        async with self._sessionmaker.begin() as session:
            claim = await claim_next(session, self.worker_id, self.settings.worker_lease_seconds)
            if claim is not None:
                return claim, None
            return None, await seconds_until_claimable(session)

    async def _execute(self, claim: Claim, wakeup: JobWakeup) -> None:
        run = JobRun(
            claim,
            settings=self.settings,
            sessionmaker=self._sessionmaker,
            stages=self.stages,
            shutting_down=lambda: self._stopping,
            listening=lambda: wakeup.listening,
            metrics=self.metrics,
        )
        details = {
            "worker_id": self.worker_id,
            "job_id": str(run.lease.job_id),
            "attempt": run.lease.attempt,
        }
        logger.info(
            "job %s attempt %d started",
            claim.job.id,
            claim.job.attempt,
            extra=details | {"at": time.time()},
        )
        self._runs.add(run)
        started = time.monotonic()
        try:
            # Watched before the run's first write, which fails if the job changed earlier.
            with wakeup.watch(claim.job.id, run.alert):
                outcome = await run.execute()
        finally:
            self._runs.discard(run)
        self.metrics.observe_attempt(outcome.value, time.monotonic() - started)
        logger.info(
            "job %s attempt %d %s",
            claim.job.id,
            claim.job.attempt,
            outcome.value,
            extra=details | {"at": time.time(), "outcome": outcome.value},
        )


@asynccontextmanager
async def inprocess_worker(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    metrics: WorkerMetrics | None = None,
    listener: ChangeListener | None = None,
) -> AsyncIterator[Worker | None]:
    """A worker inside the API process while the block runs, when the settings ask for one
    (``STUDIO_INPROCESS_WORKER``; by default with the embedded database only). Given the API's
    ``listener``, the worker shares it instead of opening a second ``LISTEN`` connection."""
    if not settings.run_inprocess_worker:
        yield None
        return
    worker = Worker(settings, sessionmaker, metrics=metrics, listener=listener)
    task = asyncio.create_task(worker.run(), name="studio-inprocess-worker")
    try:
        yield worker
    finally:
        worker.stop()
        await task

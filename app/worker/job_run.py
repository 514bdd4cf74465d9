"""One attempt of one job on this worker: its stages, its monitor, and its final write.

While the stages run, a `JobMonitor` (`app.worker.job_monitor`) writes the progress, renews the
lease and notices a stop; the worker alerts the run (`alert`) when a notification says its job
changed, so that a cancellation interrupts the running stage at once.

Every write is fenced (`db.queries.job_leases`): the first that finds the job cancelled or
reclaimed stops the run.

All of a run's writes go through one lock, so they reach the database in the order they were
made (a progress write never lands after the stage change that followed it).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Concatenate, ParamSpec

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.media import StorageUnavailable
from app.observability.worker import WorkerMetrics
from app.settings import Settings
from app.worker.job_monitor import JobMonitor
from app.worker.pipeline import (
    PROGRESS_INTERVAL,
    JobStopped,
    ProgressMeter,
    Stage,
    StageContext,
    StageError,
    VideoInput,
)
from app.worker.stages import video_artefacts
from db.models import JobStage, JobStatus
from db.queries import job_leases
from db.queries.job_leases import LeaseLost
from db.queries.job_queue import Claim

P = ParamSpec("P")
logger = logging.getLogger(__name__)

UNEXPECTED_FAILURE = "Generation failed because of an internal error."
_FINAL_WRITE_TRIES = 3


class Outcome(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRYING = "retrying"
    STOPPED = "stopped"  # cancelled, reclaimed, or lease lost: someone else decides now
    HANDED_BACK = "handed back"


class JobRun:
    def __init__(
        self,
        claim: Claim,
        *,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        stages: Sequence[Stage],
        shutting_down: Callable[[], bool],
        listening: Callable[[], bool] = lambda: False,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        """``listening()`` says whether the worker hears of this job's changes right now (and
        so calls `alert`); while it does not, the monitor checks the job every tick."""
        self.lease = claim.lease
        self.video = VideoInput.of(claim.video)
        self._settings = settings
        self._sessionmaker = sessionmaker
        self._stages = stages
        self._shutting_down = shutting_down
        self._metrics = metrics if metrics is not None else WorkerMetrics.discarded()
        self._meter = ProgressMeter([stage.weight for stage in stages])
        self._stage: JobStage | None = None
        self._stage_task: asyncio.Task[dict[str, Any]] | None = None
        self._stop_reason: str | None = None
        self._hand_back = False
        self._writes = asyncio.Lock()
        self.monitor = JobMonitor(
            self.lease,
            sessionmaker=sessionmaker,
            writes=self._writes,
            meter=self._meter,
            stage=lambda: self._stage,
            stop=self.stop,
            lease_seconds=settings.worker_lease_seconds,
            check_seconds=settings.worker_poll_seconds,
            listening=listening,
        )

    def alert(self) -> None:
        """The job may have been cancelled (a notification said so): check it now."""
        self.monitor.alert()

    def stop(self, reason: str, *, hand_back: bool = False) -> None:
        """Interrupt the running stage now; with ``hand_back``, queue the job again after."""
        if self._stop_reason is None:
            self._stop_reason, self._hand_back = reason, hand_back
        if self._stage_task is not None:
            self._stage_task.cancel()

    async def execute(self) -> Outcome:
        monitor = asyncio.create_task(self.monitor.run())
        try:
            results = await self._run_stages()
        finally:
            self.monitor.close()
            await monitor
        return await self._conclude(results)

    # --- stages ---------------------------------------------------------------------------

    async def _run_stages(self) -> dict[JobStage, dict[str, Any]] | BaseException:
        """Every stage's results, or why the run ended early (JobStopped, StageError, …)."""
        results: dict[JobStage, dict[str, Any]] = {}
        for index, stage in enumerate(self._stages):
            if self._shutting_down():
                self.stop("the worker is shutting down", hand_back=True)
            if self._stop_reason is not None:
                return JobStopped(self._stop_reason)
            self._stage = stage.name
            self._meter.offer(index, 0.0)
            try:
                await self._write_stage_start()
                with self._metrics.time_stage(stage.name, stopped=(JobStopped, LeaseLost)):
                    results[stage.name] = await self._run_stage(index, stage, results)
            except LeaseLost as lost:
                self.stop(str(lost))
                return JobStopped(str(lost))
            except (JobStopped, StageError, StorageUnavailable) as ended:
                return ended  # StorageUnavailable: logged where the write failed
            except Exception as exc:
                logger.exception("stage %s of job %s failed", stage.name, self.lease.job_id)
                return exc
        return results

    async def _run_stage(
        self, index: int, stage: Stage, results: dict[JobStage, dict[str, Any]]
    ) -> dict[str, Any]:
        context = StageContext(
            job_id=self.lease.job_id,
            attempt=self.lease.attempt,
            stage_index=index,
            meter=self._meter,
            stopped=lambda: self._stop_reason,
        )
        self._stage_task = asyncio.create_task(stage.run(context, self.video, results))
        if self._stop_reason is not None:  # stopped while the stage was being started
            self._stage_task.cancel()
        try:
            return await self._stage_task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self._stop_reason is None or (current is not None and current.cancelling()):
                raise  # this run itself is being cancelled, not just its stage
            raise JobStopped(self._stop_reason) from None
        finally:
            self._stage_task = None

    async def _conclude(self, results: dict[JobStage, dict[str, Any]] | BaseException) -> Outcome:
        lease = self.lease
        if isinstance(results, JobStopped):
            if not self._hand_back:
                logger.info("job %s stopped: %s", lease.job_id, results.reason)
                return Outcome.STOPPED
            recorded, _ = await self._final_write(job_leases.hand_back, lease)
            return Outcome.HANDED_BACK if recorded else Outcome.STOPPED
        if isinstance(results, BaseException):
            message, retry = _failure(results)
            recorded, status = await self._final_write(
                job_leases.fail,
                lease,
                message,
                retry=retry,
                backoff_seconds=self._settings.job_retry_backoff_seconds,
            )
            if not recorded:
                return Outcome.STOPPED
            return Outcome.RETRYING if status is JobStatus.QUEUED else Outcome.FAILED
        recorded, _ = await self._final_write(
            job_leases.finish, lease, artefacts=video_artefacts(results)
        )
        return Outcome.SUCCEEDED if recorded else Outcome.STOPPED

    # --- writes ---------------------------------------------------------------------------

    async def _write_stage_start(self) -> None:
        """The stage change, written at once (not throttled), with the progress so far."""
        async with self._writes:
            assert self._stage is not None
            value = self._meter.value
            async with self._sessionmaker.begin() as session:
                await job_leases.report_progress(
                    session, self.lease, stage=self._stage, progress=value
                )
            self._meter.mark_written(value)

    async def _final_write(
        self,
        write: Callable[Concatenate[AsyncSession, P], Awaitable[Any]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> tuple[bool, Any]:
        """The run's last write, tried a few times: ``(recorded, result)``. If it never lands,
        the lease runs out and another worker runs the job again."""
        for attempt in range(1, _FINAL_WRITE_TRIES + 1):
            try:
                async with self._writes, self._sessionmaker.begin() as session:
                    return True, await write(session, *args, **kwargs)
            except LeaseLost as lost:
                logger.info("job %s: result not recorded, %s", self.lease.job_id, lost)
                return False, None
            except (DBAPIError, OSError) as exc:
                logger.warning("job %s: cannot record the result (%s)", self.lease.job_id, exc)
                if attempt < _FINAL_WRITE_TRIES:
                    await asyncio.sleep(PROGRESS_INTERVAL * 2**attempt)
        return False, None


def _failure(error: BaseException) -> tuple[str, bool]:
    """What the user reads of a failed run, and whether the job is run again: a stage's own
    error is final; storage that is full or not writable is an outage, retried, and says so;
    anything else is a bug or an outage, retried, and says nothing more."""
    if isinstance(error, StageError):
        return error.user_message, False
    if isinstance(error, StorageUnavailable):
        return error.message, True
    return UNEXPECTED_FAILURE, True

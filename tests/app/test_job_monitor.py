"""A running job's monitor, driven tick by tick on a clock of the test's own, with every SQL
statement it sends counted: a job that reports no progress makes no statement on most ticks —
a lease renewal every third of the lease and a safety-net check every ``check_seconds`` — yet an
alert (a notification that the job changed) is checked at the next tick, and while the listener
is down every tick checks, as before notifications were used."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from app.worker.job_monitor import JobMonitor
from app.worker.pipeline import PROGRESS_INTERVAL, ProgressMeter
from db.models import JobStage
from db.queries import job_queue
from db.queries.job_leases import Lease
from db.url import DatabaseURL
from tests.support.jobs import committing_sessions, load_video, start_jobs

LEASE_SECONDS = 30.0
CHECK_SECONDS = 5.0


@dataclass
class Harness:
    """A monitor of a really claimed job, its clock, and what it did."""

    lease: Lease
    sessions: async_sessionmaker[AsyncSession]
    listening: bool = True
    now: float = 0.0
    statements: list[str] = field(default_factory=list)
    stops: list[str] = field(default_factory=list)
    monitor: JobMonitor | None = None

    async def ticks(self, count: int) -> int:
        """Advance the clock one tick at a time; the number of ticks before the job stopped
        (``count`` if it did not)."""
        assert self.monitor is not None
        for done in range(count):
            self.now += PROGRESS_INTERVAL
            if not await self.monitor.tick():
                return done + 1
        return count


@pytest.fixture
async def harness(migrated_database: DatabaseURL) -> AsyncIterator[Harness]:
    async with committing_sessions(migrated_database) as sessions:
        await start_jobs(sessions)
        async with sessions.begin() as session:
            claim = await job_queue.claim_next(session, "monitor-test", LEASE_SECONDS)
        assert claim is not None
        engine = create_async_engine(
            migrated_database.url, connect_args=migrated_database.connect_args(), poolclass=NullPool
        )
        counted = async_sessionmaker(engine, expire_on_commit=False)
        async with counted() as session:  # the dialect's first-connect queries, not counted
            await session.connection()
        found = Harness(claim.lease, sessions)

        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def _count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            found.statements.append(statement)

        found.monitor = JobMonitor(
            claim.lease,
            sessionmaker=counted,
            writes=asyncio.Lock(),
            meter=ProgressMeter([1.0]),  # offered nothing: no progress to write
            stage=lambda: JobStage.VOICE,
            stop=found.stops.append,
            lease_seconds=LEASE_SECONDS,
            check_seconds=CHECK_SECONDS,
            listening=lambda: found.listening,
            clock=lambda: found.now,
        )
        try:
            yield found
        finally:
            await engine.dispose()


async def _cancel(harness: Harness) -> None:
    owner = (await load_video(harness.sessions, harness.lease.video_id)).user_id
    async with harness.sessions.begin() as session:
        await job_queue.cancel(session, owner, harness.lease.job_id, request_id=None)


async def test_a_quiet_job_makes_a_statement_only_per_check_interval_and_lease_third(
    harness: Harness,
) -> None:
    # 30 s of ticks (120; four a second). Reading the job at every tick, as the monitor did
    # before it heard of cancellations by notification, made 120 statements.
    assert await harness.ticks(120) == 120
    kinds = [statement.split()[0] for statement in harness.statements]
    # A check at 5 s, a renewal at 10 s (which proves the lease too), and so on: 0.2 a second.
    assert kinds == ["SELECT", "UPDATE"] * 3
    assert len(harness.statements) <= 30 / CHECK_SECONDS + 30 / (LEASE_SECONDS / 3)
    assert harness.stops == []


async def test_an_alert_is_checked_at_the_next_tick_and_only_then(harness: Harness) -> None:
    assert harness.monitor is not None
    harness.monitor.alert()
    assert await harness.ticks(4) == 4
    assert len(harness.statements) == 1


async def test_a_cancel_is_noticed_at_the_tick_after_its_notification(harness: Harness) -> None:
    assert harness.monitor is not None
    await _cancel(harness)
    harness.monitor.alert()  # what the worker does when the job's CANCELLED event arrives
    assert await harness.ticks(1) == 1
    assert harness.stops == ["the job was cancelled"]


async def test_a_cancel_whose_notification_is_lost_is_noticed_by_the_safety_net(
    harness: Harness,
) -> None:
    await _cancel(harness)
    stopped_after = await harness.ticks(200)
    assert harness.stops == ["the job was cancelled"]
    assert stopped_after == CHECK_SECONDS / PROGRESS_INTERVAL  # the bound: one check interval


async def test_while_the_listener_is_down_every_tick_checks(harness: Harness) -> None:
    harness.listening = False
    assert await harness.ticks(8) == 8
    assert len(harness.statements) == 8
    harness.listening = True
    assert await harness.ticks(8) == 8
    assert len(harness.statements) == 8

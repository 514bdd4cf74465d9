"""Metrics read when they are scraped, from objects that already keep the numbers.

* `PoolCollector`: the SQLAlchemy pool's connections, in use and idle (no bookkeeping of ours).
* `QueueCollector`: the job queue in PostgreSQL, cluster-wide. Collectors are synchronous, so the
  ``/metrics`` route reads the queue first (`QueueCollector.refresh`, one short transaction) and
  the collector reports that reading.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.pool import QueuePool

from db.queries.job_stats import QueueStats, queue_stats

logger = logging.getLogger("studio.metrics")

#: The queue statement's own limit (in PostgreSQL) and the whole reading's, pool wait included.
QUEUE_STATEMENT_TIMEOUT_MS = 1000
QUEUE_READ_TIMEOUT_SECONDS = 2.0


class PoolCollector(Collector):
    def __init__(self, engine: AsyncEngine, max_connections: int) -> None:
        self._engine = engine
        self._max = max_connections

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = self._engine.pool
        if not isinstance(pool, QueuePool):  # a NullPool keeps no connections
            return
        yield GaugeMetricFamily(
            "studio_db_pool_connections_in_use",
            "Database connections checked out of this process's pool.",
            value=pool.checkedout(),
        )
        yield GaugeMetricFamily(
            "studio_db_pool_connections_idle",
            "Open database connections waiting in this process's pool.",
            value=pool.checkedin(),
        )
        yield GaugeMetricFamily(
            "studio_db_pool_connections_max",
            "The most connections this process's pool opens (pool size + overflow).",
            value=self._max,
        )


class QueueCollector(Collector):
    def __init__(self) -> None:
        self._stats: QueueStats | None = None

    async def refresh(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        """Read the queue now; on failure the queue metrics are left out of this scrape (and
        ``studio_job_queue_read_ok`` says 0) rather than showing stale numbers."""
        try:
            async with asyncio.timeout(QUEUE_READ_TIMEOUT_SECONDS), sessionmaker() as session:
                self._stats = await queue_stats(session, timeout_ms=QUEUE_STATEMENT_TIMEOUT_MS)
        except (DBAPIError, OSError, TimeoutError) as exc:
            logger.warning("cannot read the job queue for metrics (%s)", type(exc).__name__)
            self._stats = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stats = self._stats
        yield GaugeMetricFamily(
            "studio_job_queue_read_ok",
            "1 when this scrape read the job queue from the database, else 0.",
            value=1 if stats is not None else 0,
        )
        if stats is None:
            return
        depth = GaugeMetricFamily(
            "studio_job_queue_depth",
            "Jobs queued or running, in the whole cluster (from the database).",
            labels=["status"],
        )
        depth.add_metric(["queued"], stats.queued)
        depth.add_metric(["running"], stats.running)
        yield depth
        yield GaugeMetricFamily(
            "studio_job_queue_claimable",
            "Queued jobs a worker may claim now (the others are retries backing off).",
            value=stats.claimable,
        )
        yield GaugeMetricFamily(
            "studio_job_queue_expired_leases",
            "Running jobs whose lease ran out (their worker died or stalled).",
            value=stats.expired_leases,
        )
        yield GaugeMetricFamily(
            "studio_job_queue_oldest_claimable_seconds",
            "How long the claimable job that has waited longest has been claimable.",
            value=stats.oldest_claimable_seconds,
        )

"""An API process's metrics (SPEC §5 Operations), in one registry per application.

A registry of its own (not prometheus_client's global one) keeps applications apart: tests build
many, and each counts only its own requests. Label values are bounded, since every distinct value
is a time series kept forever: operation names only from documents that validated, and only the
first ``STUDIO_METRICS_MAX_OPERATION_NAMES`` distinct ones (later ones count as ``other``); error
codes from SPEC §4's set; HTTP routes as their templates (``/media/{path:path}``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.errors import SPEC_CODES
from app.observability.collectors import PoolCollector, QueueCollector
from app.observability.worker import WorkerMetrics
from app.settings import Settings

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

#: Operation name labels that are not names.
ANONYMOUS = "anonymous"  # a valid document whose operation has no name
INVALID = "invalid"  # a document that did not parse or validate: its name is not used
OTHER = "other"  # a valid name past the budget of distinct names, or an unusually long one

#: The route label of a request no route matched (any path: not worth a series each).
UNMATCHED = "unmatched"

_LABELLED_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")


@dataclass(frozen=True)
class OperationRecord:
    """One finished GraphQL operation, as `schema.extensions.telemetry` saw it."""

    operation_type: str  # query | mutation | subscription | unknown
    #: The operation's name when its document validated (``None``: anonymous or invalid).
    operation_name: str | None
    outcome: str  # ok | error | rejected | cancelled
    seconds: float
    error_codes: Sequence[str]
    #: Whether the document parsed and validated (only then is its name used as a label).
    validated: bool = True


class Metrics:
    def __init__(self, settings: Settings) -> None:
        self.registry = registry = CollectorRegistry()
        ProcessCollector(registry=registry)  # CPU, memory, open files (Linux)
        PlatformCollector(registry=registry)  # the Python version
        self.operations = Counter(
            "studio_graphql_operations",
            "GraphQL operations finished, by type, name and outcome (ok, error, rejected, "
            "cancelled).",
            ["operation_type", "operation_name", "outcome"],
            registry=registry,
        )
        self.operation_seconds = Histogram(
            "studio_graphql_operation_duration_seconds",
            "Time from receiving a query or mutation to its result (subscriptions are not timed).",
            ["operation_type", "operation_name"],
            registry=registry,
        )
        self.errors = Counter(
            "studio_graphql_errors",
            "GraphQL errors sent, by extensions.code.",
            ["code"],
            registry=registry,
        )
        self.subscriptions = Gauge(
            "studio_graphql_subscriptions_active",
            "Subscriptions running on this process, by subscription field.",
            ["field"],
            registry=registry,
        )
        self.subscription_runs = Gauge(
            "studio_graphql_subscription_runs_active",
            "Runs serving the subscriptions of this process: one per distinct operation, "
            "variables and viewer when they are shared (STUDIO_SHARED_SUBSCRIPTIONS).",
            ["field"],
            registry=registry,
        )
        self.http_requests = Counter(
            "studio_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.http_seconds = Histogram(
            "studio_http_request_duration_seconds",
            "Time from receiving an HTTP request to the end of its response.",
            ["method", "route"],
            registry=registry,
        )
        self.websockets = Gauge(
            "studio_websocket_connections",
            "Websocket connections open on this process.",
            registry=registry,
        )
        #: Stage and attempt durations of the in-process worker, when there is one.
        self.worker = WorkerMetrics(registry)
        self.queue = QueueCollector()
        registry.register(self.queue)
        self._max_pool = settings.db_pool_size + settings.db_max_overflow
        self._pool: PoolCollector | None = None
        self._names = _NameBudget(settings.metrics_max_operation_names)
        # Each label set's own counter and histogram, looked up once (`labels` checks and
        # joins its values every time); every key is a bounded label set.
        self._http: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._operations: dict[tuple[str, str, str], tuple[Counter, Histogram | None]] = {}

    def watch_pool(self, engine: AsyncEngine) -> None:
        """Report ``engine``'s pool (the lifespan's engine: it exists only once the app runs)."""
        if self._pool is not None:
            self.registry.unregister(self._pool)
        self._pool = PoolCollector(engine, self._max_pool)
        self.registry.register(self._pool)

    async def refresh(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        """Read what is read at scrape time from the database (the job queue)."""
        await self.queue.refresh(sessionmaker)

    def record_operation(self, record: OperationRecord) -> None:
        name = self._names.label(record.operation_name, valid=record.validated)
        key = (record.operation_type, name, record.outcome)
        children = self._operations.get(key)
        if children is None:
            timed = record.operation_type != "subscription"
            children = self._operations[key] = (
                self.operations.labels(*key),
                self.operation_seconds.labels(record.operation_type, name) if timed else None,
            )
        count, duration = children
        count.inc()
        if duration is not None:
            duration.observe(record.seconds)
        for code in record.error_codes:
            self.errors.labels(code if code in SPEC_CODES else "OTHER").inc()  # else: OTHER

    def record_http(self, method: str, route: str | None, status: int, seconds: float) -> None:
        """One HTTP request answered; ``route`` is its route's template (``None``: unmatched)."""
        method = method if method in HTTP_METHODS else "OTHER"
        route = route or UNMATCHED
        children = self._http.get((method, route, status))
        if children is None:
            children = self._http[(method, route, status)] = (
                self.http_requests.labels(method, route, str(status)),
                self.http_seconds.labels(method, route),
            )
        count, duration = children
        count.inc()
        duration.observe(seconds)


class _NameBudget:
    """The first ``limit`` distinct operation names become labels; later ones are ``other``."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def label(self, name: str | None, *, valid: bool) -> str:
        if not valid:
            return INVALID
        if name is None:
            return ANONYMOUS
        if not _LABELLED_NAME.fullmatch(name):
            return OTHER
        if name in self._seen:
            return name
        if len(self._seen) < self._limit:
            self._seen.add(name)
            return name
        return OTHER

"""What a job worker measures: how long stages and attempts take (SPEC §5 Operations).

Durations are measured where the work runs, in the worker, and exported by the process that
hosts it: an API process with the in-process worker shows them on its own ``/metrics``; a
``studio worker`` process serves them on ``STUDIO_WORKER_METRICS_PORT`` (off unless set).
The database records only when a job started and finished, not its stages, so an API process
cannot rebuild stage durations of workers elsewhere; the queue itself, which the database does
hold, every API process reports (`app.observability.collectors.QueueCollector`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, Histogram, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from sqlalchemy.ext.asyncio import AsyncEngine

from app.observability.access import bearer_matches
from app.observability.collectors import PoolCollector
from app.settings import Settings

#: Stages run from a fraction of a second (captions) to minutes (a long render).
STAGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.stage_seconds = Histogram(
            "studio_job_stage_duration_seconds",
            "Time one stage of one job attempt ran in this process, by stage and outcome "
            "(succeeded, failed, stopped).",
            ["stage", "outcome"],
            buckets=STAGE_BUCKETS,
            registry=registry,
        )
        self.attempt_seconds = Histogram(
            "studio_job_attempt_duration_seconds",
            "Time one job attempt ran in this process, claim to final write, by outcome "
            "(succeeded, failed, retrying, stopped, handed_back).",
            ["outcome"],
            buckets=STAGE_BUCKETS,
            registry=registry,
        )

    @classmethod
    def discarded(cls) -> WorkerMetrics:
        """Metrics nobody reads (a worker made without any, as in tests)."""
        return _DISCARDED

    @contextmanager
    def time_stage(
        self, stage: str, *, stopped: tuple[type[BaseException], ...] = ()
    ) -> Iterator[None]:
        """Time the block as one run of ``stage``: ``succeeded`` if it returns, ``stopped`` if
        it is cancelled or raises one of ``stopped``, else ``failed``."""
        started = time.perf_counter()
        outcome = "failed"
        stopping: tuple[type[BaseException], ...] = (asyncio.CancelledError, *stopped)
        try:
            yield
            outcome = "succeeded"
        except stopping:
            outcome = "stopped"
            raise
        finally:
            self.stage_seconds.labels(stage.lower(), outcome).observe(time.perf_counter() - started)

    def observe_attempt(self, outcome: str, seconds: float) -> None:
        self.attempt_seconds.labels(outcome.replace(" ", "_")).observe(seconds)


_DISCARDED = WorkerMetrics(CollectorRegistry())


class WorkerProcessMetrics:
    """The registry of a ``studio worker`` process, served over HTTP when configured."""

    def __init__(self, settings: Settings, engine: AsyncEngine) -> None:
        self.registry = CollectorRegistry()
        self.worker = WorkerMetrics(self.registry)
        self.registry.register(
            PoolCollector(engine, settings.db_pool_size + settings.db_max_overflow)
        )
        self._server: ThreadingWSGIServer | None = None
        if settings.worker_metrics_port is not None:
            self._server = _serve(
                self.registry,
                settings.worker_metrics_host,
                settings.worker_metrics_port,
                settings.metrics_token,
            )

    @property
    def port(self) -> int | None:
        return self._server.server_port if self._server is not None else None

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _serve(
    registry: CollectorRegistry, host: str, port: int, token: str | None
) -> ThreadingWSGIServer:
    """prometheus_client's WSGI app behind the ``STUDIO_METRICS_TOKEN`` check, in a thread (the
    worker's event loop keeps its own signal handlers; uvicorn would install its own)."""
    metrics_app = make_wsgi_app(registry)

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if token is not None and not bearer_matches(environ.get("HTTP_AUTHORIZATION"), token):
            start_response("401 Unauthorized", [("WWW-Authenticate", "Bearer")])
            return [b""]
        body: Iterable[bytes] = metrics_app(environ, start_response)
        return body

    server = make_server(host, port, guarded, ThreadingWSGIServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="studio-worker-metrics", daemon=True).start()
    return server


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged."""

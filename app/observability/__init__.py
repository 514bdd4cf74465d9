"""Metrics for Prometheus (SPEC §5 Operations); the GraphQL side is `schema.extensions.telemetry`.

`metrics.Metrics` is an API process's registry and instruments (`app.middleware` counts HTTP
requests and websockets in it), `http` serves ``GET /metrics``, `collectors` reads the pool and
the job queue at scrape time, and `worker` holds what job workers measure (served by
``studio worker`` itself when configured).
"""

from app.observability.http import metrics_endpoint
from app.observability.metrics import Metrics, OperationRecord
from app.observability.worker import WorkerMetrics, WorkerProcessMetrics

__all__ = [
    "Metrics",
    "OperationRecord",
    "WorkerMetrics",
    "WorkerProcessMetrics",
    "metrics_endpoint",
]

"""``studio worker``: a process that only runs jobs, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from app.health import log_database_targets, warn_if_listener_is_deaf
from app.observability.worker import WorkerProcessMetrics
from app.settings import Settings
from app.worker.runner import LISTENER_NAME, Worker
from db.engine import create_engine, create_sessionmaker
from db.events import ChangeListener

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def run_worker_process(
    settings: Settings, concurrency: int, *, on_start: Callable[[Worker], None] | None = None
) -> None:
    """Run a `Worker` on the configured database; SIGTERM and SIGINT stop it gracefully.

    The signal handlers are this loop's while it runs; the ones installed before are put back.
    """
    # Each running job uses one pooled connection at a time, and so may a slot claiming.
    if settings.db_pool_size < concurrency + 1:
        settings = settings.model_copy(update={"db_pool_size": concurrency + 1})
    engine = create_engine(settings, application_name="studio-worker")
    metrics = WorkerProcessMetrics(settings, engine)  # served on STUDIO_WORKER_METRICS_PORT
    log_database_targets(settings)
    listener = ChangeListener(settings.direct_database, application_name=LISTENER_NAME)
    worker = Worker(
        settings,
        create_sessionmaker(engine),
        concurrency=concurrency,
        metrics=metrics.worker,
        listener=listener,
    )
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in _STOP_SIGNALS}
    for sig in _STOP_SIGNALS:
        loop.add_signal_handler(sig, worker.stop)
    try:
        await listener.start()  # a database that is down is retried meanwhile
        await warn_if_listener_is_deaf(listener, engine, settings)
        if on_start is not None:
            on_start(worker)
        await worker.run()
    finally:
        for sig, handler in previous.items():
            loop.remove_signal_handler(sig)
            signal.signal(sig, handler)
        await listener.stop()
        await asyncio.to_thread(metrics.close)  # waits for the server thread's loop to end
        await engine.dispose()

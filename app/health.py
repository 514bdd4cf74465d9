"""``GET /healthz`` (the process is alive) and ``GET /readyz`` (it can serve: SPEC §5)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse

from app.settings import Settings
from app.state import AppState
from db.engine import describe
from db.events import ChangeListener, notify_probe
from db.health import database_status, describe_error

READY_TIMEOUT_SECONDS = 2.0

logger = logging.getLogger(__name__)


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    state = AppState.of(request)
    database, listener = await asyncio.gather(
        database_status(state.engine, within=READY_TIMEOUT_SECONDS),
        listener_status(state.listener, state.engine, state.settings),
    )
    checks: dict[str, dict[str, Any]] = {
        "database": {"ok": database.reachable}
        | ({"error": database.error} if database.error else {}),
        "migrations": {
            "ok": database.reachable and database.revisions == state.head_revisions,
            "current": sorted(database.revisions),
            "head": sorted(state.head_revisions),
        },
        # The LISTEN connection that live progress (subscriptions) depends on.
        "listener": listener,
    }
    ready = all(check["ok"] for check in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
        headers={"Cache-Control": "no-store"},
    )


async def listener_status(
    listener: ChangeListener,
    engine: AsyncEngine,
    settings: Settings,
    *,
    within: float = READY_TIMEOUT_SECONDS,
) -> dict[str, Any]:
    """``{"ok": …, "error"?: …}`` for the ``LISTEN`` connection: connected, and hearing a
    notification a session of ``engine`` sends now (a pooler in transaction mode lets it connect
    and ``LISTEN`` but never delivers anything)."""
    if not await listener.check(within=within):
        return {"ok": False} | ({"error": listener.last_error} if listener.last_error else {})
    try:
        hears = await listener.probe(lambda token: notify_probe(engine, token), within=within)
    except (OSError, SQLAlchemyError) as exc:
        return {"ok": False, "error": f"cannot send a probe notification: {describe_error(exc)}"}
    return {"ok": True} if hears else {"ok": False, "error": deaf_listener_reason(settings)}


def deaf_listener_reason(settings: Settings) -> str:
    """What to tell an operator whose listener connects but hears nothing."""
    if settings.database_direct_url is None:
        cause = (
            "DATABASE_URL goes through a transaction pooler; set DATABASE_DIRECT_URL to the "
            "direct (unpooled) URL"
        )
    else:
        cause = "DATABASE_DIRECT_URL goes through a transaction pooler; give the unpooled URL"
    within = f"{READY_TIMEOUT_SECONDS:g}s"
    return f"notifications do not reach the LISTEN connection within {within}: {cause}"


async def warn_if_listener_is_deaf(
    listener: ChangeListener, engine: AsyncEngine, settings: Settings
) -> None:
    """At start-up: log, as an error, a listener that connects but hears nothing (an API
    process stays not ready until that changes: `readyz` probes again each time)."""
    status = await listener_status(listener, engine, settings)
    if not status["ok"] and listener.connected:
        logger.error("notifications will not arrive: %s", status.get("error"))


def log_database_targets(settings: Settings) -> None:
    """Say which URL each part of the process uses, passwords masked."""
    logger.info("database: queries and transactions via %s", describe(settings.database))
    logger.info(
        "database: LISTEN (live progress, job wake-ups) and migrations via %s",
        describe(settings.direct_database),
    )

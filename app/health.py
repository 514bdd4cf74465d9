"""``GET /healthz`` (the process is alive) and ``GET /readyz`` (it can serve: SPEC §5)."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from app.state import AppState
from db.health import database_status

READY_TIMEOUT_SECONDS = 2.0


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    state = AppState.of(request)
    database, listening = await asyncio.gather(
        database_status(state.engine, within=READY_TIMEOUT_SECONDS),
        state.listener.check(within=READY_TIMEOUT_SECONDS),
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
        "listener": {"ok": listening}
        | (
            {"error": state.listener.last_error}
            if not listening and state.listener.last_error
            else {}
        ),
    }
    ready = all(check["ok"] for check in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
        headers={"Cache-Control": "no-store"},
    )

"""`studio serve` hands STUDIO_WS_MAX_MESSAGE_BYTES to uvicorn, which then refuses a larger
frame before reading it whole (the app's own check, `schema.websocket_messages`, is the second
line: its close reason differs)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from db.url import DatabaseURL
from tests.support.processes import (
    clean_env,
    free_port,
    run_studio,
    start_studio,
    stop,
    wait_until_ready,
)
from tests.support.websocket import bearer, open_websocket

LIMIT = 2048


async def test_uvicorn_refuses_a_frame_over_the_limit(
    migrated_database: DatabaseURL, tmp_path: Path
) -> None:
    env = clean_env(
        DATABASE_URL=migrated_database.render(hide_password=False),
        STUDIO_WS_MAX_MESSAGE_BYTES=str(LIMIT),
    )
    issued = run_studio("token", "--email", "big.frames@example.com", env=env)
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip().splitlines()[-1]
    port, log = free_port(), tmp_path / "serve.log"
    server: subprocess.Popen[bytes] = start_studio("serve", "--port", str(port), env=env, log=log)
    try:
        wait_until_ready(port, server, log)
        async with open_websocket(f"http://127.0.0.1:{port}") as ws:
            await ws.init(bearer(token))
            await ws.subscribe("1", "{ __typename }", {"padding": "x" * (2 * LIMIT)})
            code, reason = await ws.closed()
    finally:
        stop(server)
    assert code == 1009
    assert "exceeds limit" in reason  # uvicorn's words, not the app's "Message over … bytes"

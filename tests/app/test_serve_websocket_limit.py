"""`studio serve` hands STUDIO_WS_MAX_MESSAGE_BYTES to uvicorn, which then refuses a larger
frame before reading it whole (the app's own check, `schema.transport.websocket_messages`, is
the second line: its close reason differs)."""

from __future__ import annotations

from pathlib import Path

from db.url import DatabaseURL
from tests.support.processes import clean_env, running_studio
from tests.support.websocket import open_websocket

LIMIT = 2048


async def test_uvicorn_refuses_a_frame_over_the_limit(
    migrated_database: DatabaseURL, tmp_path: Path
) -> None:
    env = clean_env(
        DATABASE_URL=migrated_database.render(hide_password=False),
        STUDIO_WS_MAX_MESSAGE_BYTES=str(LIMIT),
    )
    with running_studio(env, tmp_path, email="big.frames@example.com") as studio:
        async with open_websocket(studio.url) as ws:
            await ws.init(studio.headers)
            await ws.subscribe("1", "{ __typename }", {"padding": "x" * (2 * LIMIT)})
            code, reason = await ws.closed()
    assert code == 1009
    assert "exceeds limit" in reason  # uvicorn's words, not the app's "Message over … bytes"

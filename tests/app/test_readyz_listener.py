"""/readyz checks the notification listener too (SPEC §5 Operations: "notification listener
connected"): live progress depends on it."""

from __future__ import annotations

import httpx

from app.main import create_app
from app.settings import load_settings
from db.events import ChangeListener
from db.url import DatabaseURL
from tests.support.live_jobs import eventually
from tests.support.proxy import FlakyProxy


async def test_readyz_reports_the_listener_and_is_503_without_it(database: DatabaseURL) -> None:
    proxy = FlakyProxy(database)
    await proxy.up()
    app = create_app(load_settings(database_url=proxy.url.render(hide_password=False)))
    async with app.router.lifespan_context(app):
        listener: ChangeListener = app.state.studio.listener
        # Without /readyz, the listener would now wait a minute between attempts.
        listener.min_backoff = listener.max_backoff = 60
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://studio.test") as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 200
            assert ready.json()["checks"]["listener"] == {"ok": True}

            await proxy.down()
            await eventually(lambda: not listener.connected, within=5, what="the drop noticed")
            down = await client.get("/readyz")
            assert down.status_code == 503
            assert down.json()["checks"]["listener"]["ok"] is False
            assert down.json()["checks"]["listener"]["error"]

            # /readyz does not wait out the backoff: it makes the listener try again now.
            await proxy.up()
            again = await client.get("/readyz")
            assert again.status_code == 200, again.json()
            assert listener.connected
    await proxy.down()

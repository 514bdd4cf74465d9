"""/healthz says the process lives; /readyz says whether it can serve (SPEC §5 Operations)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from app.main import create_app
from app.settings import load_settings
from db.url import DatabaseURL
from tests.support.proxy import FlakyProxy


@asynccontextmanager
async def running_app(database: DatabaseURL) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(load_settings(database_url=database.render(hide_password=False)))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://studio.test") as client:
            yield client


async def test_healthz_answers(database: DatabaseURL) -> None:
    async with running_app(database) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_200_on_a_migrated_database(database: DatabaseURL) -> None:
    async with running_app(database) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["migrations"]["current"] == body["checks"]["migrations"]["head"]
    assert response.headers["cache-control"] == "no-store"


async def test_readyz_is_503_before_migrations(empty_database: DatabaseURL) -> None:
    async with running_app(empty_database) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == {"ok": True}
    assert checks["migrations"]["ok"] is False
    assert checks["migrations"]["current"] == []


async def test_readyz_follows_the_database_down_and_back(database: DatabaseURL) -> None:
    proxy = FlakyProxy(database)
    await proxy.up()
    async with running_app(proxy.url) as client:
        assert (await client.get("/readyz")).status_code == 200

        await proxy.down()
        down = await client.get("/readyz")
        assert down.status_code == 503
        assert down.json()["checks"]["database"]["ok"] is False
        # healthz is about the process, not its dependencies.
        assert (await client.get("/healthz")).status_code == 200

        await proxy.up()
        assert (await client.get("/readyz")).status_code == 200
    await proxy.down()

"""The Starlette application: routes, middleware and the lifespan that owns the engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route

from app.health import healthz, readyz
from app.logging import configure_logging
from app.settings import Settings, SettingsError, load_settings
from app.state import AppState
from db.engine import create_engine, create_sessionmaker
from db.migrations import head_revisions


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the application; uvicorn calls this as a factory (``app.main:create_app``)."""
    settings = settings if settings is not None else load_settings()
    if settings.database_url is None:
        raise SettingsError(
            "DATABASE_URL: not set. `studio serve` starts the embedded database and sets it; "
            "when running the app another way, point DATABASE_URL at a PostgreSQL database"
        )
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = create_engine(settings)
        app.state.studio = AppState(
            settings=settings,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            head_revisions=head_revisions(),
        )
        try:
            yield
        finally:
            await engine.dispose()

    middleware = [
        Middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            max_age=600,
        )
    ]
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)

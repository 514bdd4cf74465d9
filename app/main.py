"""The Starlette application: routes, middleware and the lifespan that owns the engine."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute

from app.csrf import CSRF_HEADERS
from app.events import EventHub
from app.graphiql_assets import assets_mount
from app.health import healthz, log_database_targets, readyz, warn_if_listener_is_deaf
from app.live_accounts import LiveAccounts
from app.logging import configure_logging
from app.media_routes import media_routes
from app.middleware import RequestMiddleware
from app.observability import Metrics, metrics_endpoint
from app.oidc import parse_providers
from app.settings import Settings, SettingsError, load_settings
from app.state import AppState
from app.worker import inprocess_worker
from db.engine import create_engine, create_sessionmaker
from db.events import ChangeListener
from db.migrations import head_revisions
from schema import create_schema
from schema.transport.view import GraphQLView


def create_app(
    settings: Settings | None = None,
    *,
    sessionmaker: async_sessionmaker[AsyncSession] | None = None,
) -> Starlette:
    """Build the application; uvicorn calls this as a factory (``app.main:create_app``).

    ``sessionmaker`` replaces the one made from the engine (tests bind it to a connection whose
    transaction they roll back).
    """
    settings = settings if settings is not None else load_settings()
    if settings.database_url is None:
        raise SettingsError(
            "DATABASE_URL: not set. `studio serve` starts the embedded database and sets it; "
            "when running the app another way, point DATABASE_URL at a PostgreSQL database"
        )
    configure_logging(settings)
    parse_providers(settings.oauth_providers)  # a bad STUDIO_OAUTH_PROVIDERS stops start-up
    metrics = Metrics(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = create_engine(settings)
        events = EventHub()
        accounts = LiveAccounts(settings.account_check_cache_seconds)

        def reconnected() -> None:
            events.resync_all()
            accounts.forget_all()

        listener = ChangeListener(
            settings.direct_database,
            on_event=events.dispatch,
            on_reconnect=reconnected,
            on_account_end=accounts.ended,
        )
        log_database_targets(settings)
        await listener.start()  # a database that is down is retried; /readyz says so
        app.state.studio = AppState(
            settings=settings,
            engine=engine,
            sessionmaker=sessionmaker or create_sessionmaker(engine),
            head_revisions=head_revisions(),
            events=events,
            listener=listener,
            metrics=metrics,
            accounts=accounts,
        )
        metrics.watch_pool(engine)
        await warn_if_listener_is_deaf(listener, engine, settings)
        try:
            # The in-process worker hears of jobs through this listener: one LISTEN per process.
            async with inprocess_worker(
                settings, app.state.studio.sessionmaker, metrics=metrics.worker, listener=listener
            ):
                if settings.gc_freeze:
                    # What start-up made (modules, the schema, the settings) lives as long as
                    # the process: out of the cyclic collector's sight, its passes walk only
                    # what requests make (a large page's were a sixth of the CPU). Those
                    # passes are also made rarer: most of what a request makes is freed by
                    # reference counting before any pass could find it.
                    gc.collect()
                    gc.freeze()
                    gc.set_threshold(settings.gc_threshold, *gc.get_threshold()[1:])
                yield
        finally:
            await listener.stop()
            await engine.dispose()

    graphql = GraphQLView(create_schema(settings), settings)
    graphql_route = Route("/graphql", graphql, methods=["GET", "POST"])
    routes = [
        # First: nearly every request is one of these (routes are matched in order); over HTTP
        # the middleware hands them to the view without matching (`RequestMiddleware`).
        graphql_route,
        WebSocketRoute("/graphql", graphql),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        *media_routes(),
        assets_mount(),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    # Request ids, metrics, CORS, body limits, who is calling and CSRF, in one layer: every
    # response (a 413 included) carries the request id and CORS headers (`app.middleware`).
    app.add_middleware(
        RequestMiddleware,
        settings=settings,
        metrics=metrics,
        cors_headers=CSRF_HEADERS,
        router=app.router,
        graphql_route=graphql_route,
    )
    return app

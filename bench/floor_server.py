"""The floor: the least a server must do to answer the benchmark's queries over HTTP.

    DATABASE_URL=postgresql://… STUDIO_SECRET_KEY=… .venv/bin/python -m bench.floor_server --port P

A minimal Starlette app behind uvicorn (the studio's HTTP stack: uvloop, httptools) with one
asyncpg pool. ``POST /graphql`` takes the same request as the studio: it verifies the bearer
token exactly as the studio does (`app.auth.viewer_from_authorization`: HS256, the same secret,
issuer, audience and required claims), reads the JSON body, picks the statement for the query
text (one of `bench.http_reads_data.QUERIES`; anything else is refused), decodes a Relay id
variable as the studio does, and sends ONE SQL statement (`bench.floor_sql`) that builds the whole
response. PostgreSQL's text is the response body, unparsed. Run by `bench/bench_http_reads.py`;
never part of the studio.

What it skips, on purpose: GraphQL parsing, validation and execution, dataloaders, the ORM,
request ids, metrics, CORS, CSRF, body limits, rate limits, and a transaction per request (the
one statement runs in autocommit; the pool does not reset connections, there is nothing to
reset). That is the gap the benchmark measures.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.auth import viewer_from_authorization
from app.errors import BadUserInput, Unauthenticated
from app.settings import Settings, load_settings
from bench.floor_sql import NESTED_SQL, PAGE_SQL, SMALL_SQL
from bench.http_reads_data import NESTED_QUERY, PAGE_QUERY, SMALL_QUERY
from schema.relay import from_global_id

APPLICATION_NAME = "studio-floor"


def _no_variables(variables: dict[str, Any]) -> list[Any]:
    return []


def _video_id(variables: dict[str, Any]) -> list[Any]:
    return [from_global_id(str(variables.get("id")), expected="Video")[1]]


#: Query text -> (statement, the parameters after the viewer's id, from the variables).
STATEMENTS: dict[str, tuple[str, Callable[[dict[str, Any]], list[Any]]]] = {
    PAGE_QUERY: (PAGE_SQL, _no_variables),
    NESTED_QUERY: (NESTED_SQL, _no_variables),
    SMALL_QUERY: (SMALL_SQL, _video_id),
}


def create_floor_app(settings: Settings) -> Starlette:
    pool: asyncpg.Pool | None = None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal pool
        pool = await _create_pool(settings)
        try:
            yield
        finally:
            await pool.close()

    async def graphql(request: Request) -> Response:
        assert pool is not None
        try:
            viewer = viewer_from_authorization(settings, request.headers.get("authorization"))
            if viewer is None:
                raise Unauthenticated("Sign in to read this.")
            body = json.loads(await request.body())
            statement, parameters = STATEMENTS[body["query"]]
            arguments = [viewer.user_id, *parameters(body.get("variables") or {})]
        except Unauthenticated as error:
            return _error(401, str(error), "UNAUTHENTICATED")
        except (ValueError, KeyError, TypeError, BadUserInput) as error:
            return _error(400, f"not a query the floor knows: {error!r}", "BAD_REQUEST")
        text = await pool.fetchval(statement, *arguments)
        return Response(text, media_type="application/json")

    async def readyz(request: Request) -> Response:
        assert pool is not None
        await pool.fetchval("SELECT 1")
        return JSONResponse({"status": "ok"})

    routes = [
        Route("/graphql", graphql, methods=["POST"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


async def _create_pool(settings: Settings) -> asyncpg.Pool:
    """As many connections as the studio's pool may hold (size + overflow), its timeout."""
    database = settings.database
    server_settings = {"application_name": APPLICATION_NAME}
    if settings.db_statement_timeout_ms:
        server_settings["statement_timeout"] = str(settings.db_statement_timeout_ms)
    return await asyncpg.create_pool(
        database.url.set(drivername="postgresql").render_as_string(hide_password=False),
        min_size=settings.db_pool_size,
        max_size=settings.db_pool_size + settings.db_max_overflow,
        reset=_keep,
        server_settings=server_settings,
        **database.connect_args(),
    )


async def _keep(connection: asyncpg.Connection) -> None:
    """The pool's reset: nothing (no transaction, no session state is ever left behind)."""


def _error(status: int, message: str, code: str) -> Response:
    errors = [{"message": message, "extensions": {"code": code}}]
    return JSONResponse({"errors": errors}, status_code=status)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    args = parser.parse_args()
    settings = load_settings()
    # uvicorn shuts down on SIGTERM, then raises it again: stopping that way is success.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(
        create_floor_app(settings),
        host=args.host,
        port=args.port,
        log_config=None,
        log_level="warning",
        access_log=False,
        proxy_headers=True,
        server_header=False,
    )


if __name__ == "__main__":
    main()

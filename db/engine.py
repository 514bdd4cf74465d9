"""The async engine and session factory, built from settings (never at import time).

Behind a transaction pooler (``DatabaseURL.transaction_pooler``: PgBouncer in
``pool_mode = transaction``, the pooled URLs hosted providers hand out) each transaction may run
on another server session, and the pooler refuses startup parameters it does not track. So there:

- no ``statement_timeout`` startup parameter: the timeout is set per transaction
  (``SET LOCAL``, one more statement per transaction), and
- no prepared statement outlives its statement: SQLAlchemy's and asyncpg's statement caches are
  off and every statement is prepared *unnamed*. Unnamed statements are re-parsed in the same
  message as their execution, so they never meet a server session that does not know them, and
  they leave nothing behind on the server (unique names, the other way out, pile up prepared
  statements on the pooler's server sessions: their ``Close`` reaches another session).
  The price is a parse per statement; README "Hosted PostgreSQL" has the figures.

A pooled connection is tested before use only when it sat idle for a while
(``STUDIO_DB_POOL_PING_AFTER_IDLE_SECONDS``): a restart or an idle timeout kills connections that
wait, not ones in steady use, and a test before every use would cost a round trip (three
statements: ``BEGIN``, ``;``, ``ROLLBACK``) per request. A connection that dies in use anyway
fails its statement; SQLAlchemy then replaces every connection the pool held at that moment, and
a read retries once (`schema.loaders.SessionGate`).

Everything that needs a session of its own (``LISTEN``, migrations) uses
``Settings.direct_database`` instead.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry, NullPool, PoolProxiedConnection

from app.settings import Settings
from db.url import DatabaseURL

APPLICATION_NAME = "studio-api"


def create_engine(
    settings: Settings,
    database: DatabaseURL | None = None,
    *,
    pooled: bool = True,
    application_name: str = APPLICATION_NAME,
) -> AsyncEngine:
    """An engine for ``database`` (default: the configured ``DATABASE_URL``).

    ``pooled=False`` gives a `NullPool` engine for one-shot commands (migrations, seeding) that
    should not keep connections open after they finish.
    """
    target = database if database is not None else settings.database
    timeout_ms = settings.db_statement_timeout_ms
    connect_args: dict[str, Any] = target.connect_args()
    server_settings = {"application_name": application_name}
    if target.transaction_pooler:
        connect_args |= {
            "statement_cache_size": 0,  # asyncpg's own
            "prepared_statement_cache_size": 0,  # SQLAlchemy's asyncpg dialect
            "prepared_statement_name_func": _unnamed,
        }
    elif timeout_ms:
        server_settings["statement_timeout"] = str(timeout_ms)
    connect_args["server_settings"] = server_settings
    options: dict[str, Any] = {
        "echo": settings.sql_echo,
        "connect_args": connect_args,
        # Before every use only when asked to (after idling: `_ping_after_idle`).
        "pool_pre_ping": settings.db_pool_pre_ping and not settings.db_pool_ping_after_idle_seconds,
    }
    if pooled:
        options |= {
            "pool_size": settings.db_pool_size,
            "max_overflow": settings.db_max_overflow,
            "pool_timeout": settings.db_pool_timeout,
            "pool_recycle": settings.db_pool_recycle,
        }
    else:
        options["poolclass"] = NullPool
    engine = create_async_engine(target.url, **options)
    if pooled and settings.db_pool_pre_ping and settings.db_pool_ping_after_idle_seconds:
        _ping_after_idle(engine, settings.db_pool_ping_after_idle_seconds)
    if target.transaction_pooler and timeout_ms:
        _set_timeout_per_transaction(engine, timeout_ms)
    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: GraphQL types keep reading attributes after the commit.
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def describe(database: DatabaseURL) -> str:
    """One line for the start-up log: the URL with its password masked, and how it is used."""
    how = (
        "transaction pooler: unnamed statements, statement timeout per transaction"
        if database.transaction_pooler
        else "direct"
    )
    return f"{database.redacted()} ({how})"


def _unnamed() -> str:
    # An empty name makes asyncpg prepare the unnamed statement; with its statement cache off it
    # then re-parses the statement in the same message batch that binds and executes it.
    return ""


def _set_timeout_per_transaction(engine: AsyncEngine, timeout_ms: int) -> None:
    statement = f"SET LOCAL statement_timeout = {int(timeout_ms)}"

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql(statement)


#: When the connection went back to the pool (``ConnectionPoolEntry.info``).
_IDLE_SINCE = "studio.idle_since"


def _ping_after_idle(engine: AsyncEngine, idle_seconds: float) -> None:
    """Test a connection on checkout if it sat in the pool for ``idle_seconds`` or more
    (SQLAlchemy's "pessimistic" recipe: a `DisconnectionError` makes the pool replace it)."""
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkin")
    def _checked_in(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _checked_out(
        dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
    ) -> None:
        since = record.info.pop(_IDLE_SINCE, None)
        if since is None or time.monotonic() - since < idle_seconds:
            return  # new, or in steady use
        try:
            dbapi_connection.ping()
        except Exception as exc:
            raise DisconnectionError("a pooled connection died while idle") from exc

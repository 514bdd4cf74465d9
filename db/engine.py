"""The async engine and session factory, built from settings (never at import time)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

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
    connect_args: dict[str, Any] = target.connect_args()
    connect_args["server_settings"] = {
        "application_name": application_name,
        "statement_timeout": str(settings.db_statement_timeout_ms),
    }
    options: dict[str, Any] = {
        "echo": settings.sql_echo,
        "connect_args": connect_args,
        "pool_pre_ping": settings.db_pool_pre_ping,
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
    return create_async_engine(target.url, **options)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: GraphQL types keep reading attributes after the commit.
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)

"""Server-level chores: create and drop databases (the embedded server, the tests, CI)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from db.url import DatabaseURL


def maintenance_engine(server: DatabaseURL) -> AsyncEngine:
    """An autocommit engine on the server's ``postgres`` database (CREATE DATABASE needs one)."""
    return create_async_engine(
        server.with_database("postgres").url,
        connect_args=server.connect_args(),
        isolation_level="AUTOCOMMIT",
        poolclass=NullPool,
    )


async def create_database(server: DatabaseURL, name: str, *, exist_ok: bool = False) -> DatabaseURL:
    """Create database ``name`` on the server; return its URL."""
    engine = maintenance_engine(server)
    try:
        async with engine.connect() as connection:
            exists = await connection.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            )
            if not exists:
                try:
                    await connection.execute(text(f"CREATE DATABASE {_quote(name)}"))
                except DBAPIError as exc:  # lost a race with another process
                    if not (exist_ok and "already exists" in str(exc.orig)):
                        raise
            elif not exist_ok:
                raise ValueError(f"database {name!r} already exists")
    finally:
        await engine.dispose()
    return server.with_database(name)


async def drop_database(server: DatabaseURL, name: str) -> None:
    """Drop the database, disconnecting anyone still on it (PostgreSQL 13+ ``WITH (FORCE)``)."""
    engine = maintenance_engine(server)
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f"DROP DATABASE IF EXISTS {_quote(name)} WITH (FORCE)"))
    finally:
        await engine.dispose()


def _quote(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"database name {name!r} must be letters, digits and underscores")
    return f'"{name}"'

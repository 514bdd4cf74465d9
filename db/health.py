"""What `/readyz` asks the database: is it reachable, and is its schema at the code's head."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from db.migrations import current_revisions


@dataclass(frozen=True)
class DatabaseStatus:
    reachable: bool
    revisions: frozenset[str] = field(default_factory=frozenset)
    error: str | None = None


async def database_status(engine: AsyncEngine, *, within: float) -> DatabaseStatus:
    """Never raises: an unreachable or slow database is reported, with a short reason."""
    try:
        async with asyncio.timeout(within), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            revisions = await current_revisions(connection)
    except TimeoutError:
        return DatabaseStatus(reachable=False, error=f"no answer within {within:g}s")
    except (SQLAlchemyError, OSError) as exc:
        return DatabaseStatus(reachable=False, error=type(exc).__name__)
    return DatabaseStatus(reachable=True, revisions=revisions)

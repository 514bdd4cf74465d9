"""What `/readyz` asks the database: is it reachable, and is its schema at the code's head."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from db.migrations import current_revisions

#: What PostgreSQL answers a client whose named prepared statements meet a transaction pooler's
#: other server sessions: duplicate_prepared_statement, invalid_sql_statement_name.
_POOLER_SQLSTATES = frozenset({"42P05", "26000"})

POOLER_CLASH = (
    "prepared statements clash: DATABASE_URL goes through a transaction pooler; set "
    "STUDIO_DB_POOLER=transaction (or add pgbouncer=true to the URL) and DATABASE_DIRECT_URL "
    "to the direct (unpooled) URL"
)


def describe_error(exc: BaseException) -> str:
    """A short reason for a failed database call: the exception's class name, or what to do
    when it is the mark of an unannounced transaction pooler."""
    return POOLER_CLASH if is_pooler_clash(exc) else type(exc).__name__


def is_pooler_clash(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if getattr(seen, "sqlstate", None) in _POOLER_SQLSTATES:
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


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
        return DatabaseStatus(reachable=False, error=describe_error(exc))
    return DatabaseStatus(reachable=True, revisions=revisions)

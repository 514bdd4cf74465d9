"""Knowing when a transaction pooler is in front (README "Hosted PostgreSQL"), and what the engine
then does differently: no startup parameter a pooler refuses, the statement timeout per
transaction, no prepared statement kept across transactions."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.settings import SettingsError, load_settings
from db.engine import create_engine
from db.health import POOLER_CLASH, describe_error
from db.url import DatabaseURL, parse_database_url
from tests.support.pgbouncer import PgBouncer

NEON_POOLED = "postgresql://alex:pw@ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech/studio"
NEON_DIRECT = "postgresql://alex:pw@ep-cool-darkness-123456.us-east-2.aws.neon.tech/studio"
SUPABASE_POOLED = "postgresql://postgres.abc:pw@aws-0-eu-west-1.pooler.supabase.com:6543/postgres"
SUPABASE_DIRECT = "postgresql://postgres:pw@db.abc.supabase.co:5432/postgres"


@pytest.mark.parametrize(
    ("pooled", "direct"), [(NEON_POOLED, NEON_DIRECT), (SUPABASE_POOLED, SUPABASE_DIRECT)]
)
def test_a_providers_pooled_url_is_known_as_one(pooled: str, direct: str) -> None:
    assert parse_database_url(pooled).looks_pooled
    assert not parse_database_url(direct).looks_pooled
    settings = load_settings(database_url=pooled)
    assert settings.database.transaction_pooler
    # With no direct URL given, the one URL serves everything (and /readyz will say so).
    assert settings.direct_database == settings.database


def test_pgbouncer_true_marks_a_url_and_survives_rendering() -> None:
    parsed = parse_database_url("postgresql://u@pool.internal:6432/studio?pgbouncer=true")
    assert parsed.transaction_pooler
    assert parse_database_url(parsed.render(hide_password=False)).transaction_pooler
    assert not parse_database_url("postgresql://u@h/db?pgbouncer=false").transaction_pooler
    with pytest.raises(ValueError, match="pgbouncer='maybe' is not true or false"):
        parse_database_url("postgresql://u@h/db?pgbouncer=maybe")


def test_a_direct_url_to_another_address_means_the_main_one_is_pooled() -> None:
    settings = load_settings(
        database_url="postgresql://u@pool.internal:6432/studio",
        database_direct_url="postgresql://u@db.internal:5432/studio",
    )
    assert settings.database.transaction_pooler
    assert not settings.direct_database.transaction_pooler
    assert settings.direct_database.url.host == "db.internal"


def test_the_same_url_twice_is_direct_and_the_setting_overrides_the_guess() -> None:
    url = "postgresql://u@db.internal:5432/studio"
    assert not load_settings(database_url=url, database_direct_url=url).database.transaction_pooler
    assert load_settings(database_url=url, db_pooler="transaction").database.transaction_pooler
    assert not load_settings(database_url=NEON_POOLED, db_pooler="none").database.transaction_pooler


def test_a_direct_url_alone_is_refused_naming_both_variables() -> None:
    with pytest.raises(SettingsError, match="DATABASE_DIRECT_URL is set but DATABASE_URL is not"):
        load_settings(database_direct_url="postgresql://u@h/db")
    with pytest.raises(SettingsError, match="DATABASE_DIRECT_URL: scheme 'mysql'"):
        load_settings(database_url="postgresql://u@h/db", database_direct_url="mysql://u@h/db")


async def test_a_direct_engine_sends_no_timeout_parameter_when_the_timeout_is_off(
    database: DatabaseURL,
) -> None:
    settings = load_settings(
        database_url=database.render(hide_password=False), db_statement_timeout_ms=0
    )
    engine = create_engine(settings, pooled=False)
    try:
        async with engine.connect() as connection:
            assert await connection.scalar(text("SHOW statement_timeout")) == "0"
    finally:
        await engine.dispose()


async def test_behind_pgbouncer_the_timeout_applies_to_every_transaction(
    pgbouncer: PgBouncer, database: DatabaseURL
) -> None:
    """PgBouncer (default settings) refuses ``statement_timeout`` as a startup parameter; the
    engine sets it with ``SET LOCAL`` in each transaction instead, and it really stops a slow
    statement."""
    settings = load_settings(
        database_url=pgbouncer.pooled(database).render(hide_password=False),
        db_pooler="transaction",
        db_statement_timeout_ms=250,
    )
    engine = create_engine(settings)
    try:
        for _ in range(3):  # new transactions, maybe on other server sessions
            async with engine.connect() as connection:
                assert await connection.scalar(text("SHOW statement_timeout")) == "250ms"
        async with engine.connect() as connection:
            with pytest.raises(DBAPIError, match="canceling statement due to statement timeout"):
                await connection.execute(text("SELECT pg_sleep(2)"))
    finally:
        await engine.dispose()


async def test_behind_pgbouncer_many_sessions_run_the_same_statements_without_clashing(
    pgbouncer: PgBouncer, database: DatabaseURL
) -> None:
    settings = load_settings(
        database_url=pgbouncer.pooled(database).render(hide_password=False),
        db_pooler="transaction",
        db_pool_size=8,
    )
    engine = create_engine(settings)

    async def read(index: int) -> int:
        async with engine.connect() as connection:
            value = await connection.scalar(text("SELECT CAST(:n AS int) + 1"), {"n": index})
            return int(value)

    try:
        for _ in range(3):
            assert await asyncio.gather(*(read(i) for i in range(40))) == [i + 1 for i in range(40)]
    finally:
        await engine.dispose()


def test_a_prepared_statement_clash_is_explained_as_an_unannounced_pooler() -> None:
    clash = asyncpg.exceptions.DuplicatePreparedStatementError(
        'prepared statement "__asyncpg_stmt_1__" already exists'
    )
    wrapped = DBAPIError("SELECT 1", None, clash)
    assert describe_error(wrapped) == POOLER_CLASH
    assert "STUDIO_DB_POOLER=transaction" in POOLER_CLASH
    assert describe_error(DBAPIError("SELECT 1", None, OSError("refused"))) == "DBAPIError"

"""Alembic environment: async, reading the same settings as the application.

The database comes from, in order: a connection handed over by the caller
(``config.attributes["connection"]``), a URL handed over by `db.migrations`
(``config.attributes["database_url"]``), the ``sqlalchemy.url`` option, then
``DATABASE_DIRECT_URL`` (else ``DATABASE_URL``).
Upgrades take a PostgreSQL advisory lock, so several processes starting at once apply each
revision exactly once.
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from sqlalchemy import text
from sqlalchemy.engine import Connection

from alembic import context
from app.settings import load_settings
from db.engine import create_engine
from db.models import Base
from db.url import parse_database_url

config = context.config
# The alembic command line gets alembic.ini's logging; code that calls Alembic keeps its own.
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata

# Any constant works; it only has to be the same in every process that migrates this database.
MIGRATION_LOCK_ID = 0x5354_5544_494F  # "STUDIO"


def _include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    # Alembic's own bookkeeping table is not part of the models.
    return not (type_ == "table" and name == "alembic_version")


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=_include_object,
        compare_type=True,
        compare_server_default=False,
        transaction_per_migration=False,
    )


def _run(connection: Connection) -> None:
    _configure(connection)
    connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    settings = load_settings()
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if url:
        database = parse_database_url(url)
    elif settings.database_url is not None:
        database = settings.direct_database  # an advisory lock: never through a pooler
    else:
        raise SystemExit(
            "DATABASE_URL is not set. Set it, or run `studio migrate`, which also works with the "
            "embedded database."
        )
    engine = create_engine(settings, database, pooled=False, application_name="studio-migrate")
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url") or load_settings().database.url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_async())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

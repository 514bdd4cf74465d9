"""DATABASE_URL in every form people paste, and sslmode reaching asyncpg (SPEC §2)."""

from __future__ import annotations

import re
import ssl

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from db.url import parse_database_url
from tests.support.server import PgServer


@pytest.mark.parametrize(
    "raw",
    [
        "postgres://u:p@db.example.com/studio",
        "postgresql://u:p@db.example.com/studio",
        "postgresql+asyncpg://u:p@db.example.com/studio",
    ],
)
def test_accepted_schemes_become_asyncpg(raw: str) -> None:
    parsed = parse_database_url(raw)
    assert parsed.url.drivername == "postgresql+asyncpg"
    assert parsed.url.host == "db.example.com"
    assert parsed.database == "studio"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("mysql://u@h/db", "scheme 'mysql' is not supported"),
        ("postgresql+psycopg://u@h/db", "is not supported"),
        ("postgresql://u@h", "names no database"),
        ("not a url", "is not a database URL"),
        ("postgresql://u@h/db?sslmode=sometimes", "sslmode='sometimes' is not one of"),
        ("postgresql://u@h/db?foo=bar", "unsupported URL parameter(s) foo"),
        ("postgresql://u@h/db?connect_timeout=soon", "is not a number of seconds"),
    ],
)
def test_bad_urls_say_why(raw: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_database_url(raw)


def test_sslmode_is_taken_out_of_the_url() -> None:
    parsed = parse_database_url("postgresql://u:p@h/db?sslmode=require")
    assert "sslmode" not in parsed.url.query
    assert parsed.connect_args() == {"ssl": "require"}


@pytest.mark.parametrize(
    ("mode", "expected"), [("disable", False), ("allow", "allow"), ("prefer", "prefer")]
)
def test_non_verifying_modes_keep_libpq_meaning(mode: str, expected: object) -> None:
    assert parse_database_url(f"postgresql://h/db?sslmode={mode}").connect_args()["ssl"] == expected


@pytest.mark.parametrize(("mode", "checks_host"), [("verify-ca", False), ("verify-full", True)])
def test_verifying_modes_build_a_verifying_context(mode: str, checks_host: bool) -> None:
    context = parse_database_url(f"postgresql://h/db?sslmode={mode}").connect_args()["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname is checks_host


def test_missing_root_certificate_is_reported() -> None:
    with pytest.raises(FileNotFoundError):
        parse_database_url(
            "postgresql://h/db?sslmode=verify-full&sslrootcert=/nonexistent/root.crt"
        ).connect_args()


def test_neon_style_url_is_accepted() -> None:
    parsed = parse_database_url(
        "postgresql://alex:AbC123dEf@ep-cool-darkness-123456.us-east-2.aws.neon.tech/dbname"
        "?sslmode=require&channel_binding=require"
    )
    assert parsed.connect_args() == {"ssl": "require"}
    assert parsed.dropped == ("channel_binding",)
    assert "channel_binding" not in parsed.url.query


def test_password_never_appears_in_redacted_form() -> None:
    parsed = parse_database_url("postgresql://u:s3cr%40t@h/db?sslmode=require")
    assert "s3cr" not in parsed.redacted()
    assert parse_database_url(parsed.render(hide_password=False)).url.password == "s3cr@t"


def test_connect_timeout_becomes_asyncpg_timeout() -> None:
    assert parse_database_url("postgresql://h/db?connect_timeout=5").connect_args() == {
        "timeout": 5.0
    }


def test_unix_socket_host_is_kept() -> None:
    parsed = parse_database_url("postgresql://postgres@/studio?host=/run/postgresql")
    assert parsed.url.query["host"] == "/run/postgresql"


async def test_sslmode_disable_connects_unencrypted(pg_server: PgServer) -> None:
    if pg_server.url.url.host is None:
        pytest.skip("the test server listens on a Unix socket only (embedded); TLS needs TCP")
    parsed = parse_database_url(pg_server.url.render(hide_password=False) + "?sslmode=disable")
    engine = create_async_engine(parsed.url, connect_args=parsed.connect_args(), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            encrypted = await connection.scalar(
                text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            )
    finally:
        await engine.dispose()
    assert encrypted is False

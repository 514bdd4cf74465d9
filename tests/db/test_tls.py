"""sslmode against a real TLS server: encrypted when asked, verified when asked (SPEC §2).

The server's certificate is signed by a CA made for the test and names only ``localhost``.
Every positive check reads ``pg_stat_ssl`` for the connection itself, so "it connected" is
never taken for "it was encrypted".
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from db.admin import create_database
from db.migrations import current_revisions, head_revisions, upgrade
from db.url import parse_database_url
from tests.support.tls_server import (
    TLS_ONLY_DATABASE,
    TlsPostgres,
    missing_requirement,
    tls_postgres,
)

SSL_IN_USE = text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")

# OpenSSL's X509_V_ERR_* codes, as `ssl.SSLCertVerificationError.verify_code` reports them.
UNABLE_TO_GET_ISSUER_CERT_LOCALLY = 20
IP_ADDRESS_MISMATCH = 64


@pytest.fixture(scope="module")
def tls_server() -> Iterator[TlsPostgres]:
    missing = missing_requirement()
    if missing is not None:
        pytest.skip(f"cannot start a TLS server here: {missing}")
    with tls_postgres() as server:
        yield server


async def _ssl_in_use(raw_url: str) -> bool:
    """Connect as the application would and ask the server whether this connection is TLS."""
    parsed = parse_database_url(raw_url)
    engine = create_async_engine(parsed.url, connect_args=parsed.connect_args(), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return bool(await connection.scalar(SSL_IN_USE))
    finally:
        await engine.dispose()


def _verification_error(exc: BaseException) -> ssl.SSLCertVerificationError:
    """The certificate verification failure behind ``exc`` (it may be wrapped)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    raise AssertionError(f"no certificate verification error behind {exc!r}") from exc


async def test_require_encrypts_without_a_certificate(tls_server: TlsPostgres) -> None:
    assert await _ssl_in_use(tls_server.url(sslmode="require"))


async def test_disable_does_not_encrypt(tls_server: TlsPostgres) -> None:
    assert not await _ssl_in_use(tls_server.url(sslmode="disable"))


async def test_verify_full_with_the_ca_accepts_the_named_host(tls_server: TlsPostgres) -> None:
    url = tls_server.url(sslmode="verify-full", sslrootcert=str(tls_server.ca_file))
    assert await _ssl_in_use(url)


async def test_verify_full_refuses_a_host_the_certificate_does_not_name(
    tls_server: TlsPostgres,
) -> None:
    url = tls_server.url(
        host="127.0.0.1", sslmode="verify-full", sslrootcert=str(tls_server.ca_file)
    )
    with pytest.raises(ssl.SSLError) as caught:
        await _ssl_in_use(url)
    error = _verification_error(caught.value)
    assert error.verify_code == IP_ADDRESS_MISMATCH, error.verify_message


async def test_verify_ca_does_not_check_the_host_name(tls_server: TlsPostgres) -> None:
    url = tls_server.url(host="127.0.0.1", sslmode="verify-ca", sslrootcert=str(tls_server.ca_file))
    assert await _ssl_in_use(url)


async def test_verify_full_with_the_system_cas_refuses_a_private_ca(
    tls_server: TlsPostgres,
) -> None:
    with pytest.raises(ssl.SSLError) as caught:
        await _ssl_in_use(tls_server.url(sslmode="verify-full"))
    error = _verification_error(caught.value)
    assert error.verify_code == UNABLE_TO_GET_ISSUER_CERT_LOCALLY, error.verify_message


async def test_a_neon_style_url_connects_encrypted(tls_server: TlsPostgres) -> None:
    url = f"postgresql://postgres@localhost:{tls_server.port}/postgres"
    assert await _ssl_in_use(f"{url}?sslmode=require&channel_binding=require")


async def test_the_tls_only_database_refuses_unencrypted_connections(
    tls_server: TlsPostgres,
) -> None:
    # What makes the migration test below a proof: a connection without TLS cannot get in.
    with pytest.raises(DBAPIError, match="no encryption"):
        await _ssl_in_use(tls_server.url(database=TLS_ONLY_DATABASE, sslmode="disable"))


async def test_migrations_keep_sslmode(tls_server: TlsPostgres) -> None:
    """The libpq parameters survive the hand-over from `db.migrations` to alembic/env.py."""
    server = parse_database_url(tls_server.url(sslmode="require"))
    database = await create_database(server, TLS_ONLY_DATABASE)

    await upgrade(database)

    engine = create_async_engine(
        database.url, connect_args=database.connect_args(), poolclass=NullPool
    )
    try:
        async with engine.connect() as connection:
            assert await connection.scalar(SSL_IN_USE)
            assert await current_revisions(connection) == head_revisions()
    finally:
        await engine.dispose()

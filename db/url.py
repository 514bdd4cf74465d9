"""Turn a libpq-style ``DATABASE_URL`` into what SQLAlchemy's asyncpg dialect accepts.

Hosted PostgreSQL services hand out URLs such as
``postgresql://user:pw@host/db?sslmode=require&channel_binding=require``. SQLAlchemy passes every
query parameter to ``asyncpg.connect()`` as a keyword, and asyncpg has no ``sslmode`` keyword, so
those URLs fail at the first connection. Here the libpq parameters are taken out of the URL and
translated into asyncpg's ``ssl`` argument (SPEC §2).

The same services also hand out a *pooled* URL, with PgBouncer in transaction mode in front of
the server (Neon's ``-pooler`` host, Supabase's pooler port 6543). A `DatabaseURL` knows whether
it goes through such a pooler (`transaction_pooler`): from ``pgbouncer=true`` in the URL (the
convention Prisma and Supabase use), from a host name the providers give their poolers, or from
``STUDIO_DB_POOLER`` (`app.settings`). `db.engine` then sends nothing a pooler refuses and keeps
no prepared statement across transactions.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

DRIVER = "postgresql+asyncpg"
_ACCEPTED_SCHEMES = ("postgres", "postgresql", "postgresql+asyncpg")
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")

# Parameters asyncpg takes as keywords, so they may stay in the URL as they are.
_ASYNCPG_PARAMS = frozenset({"host", "port", "prepared_statement_cache_size"})
# libpq parameters this module translates or deliberately drops, and ``pgbouncer=true``.
_LIBPQ_PARAMS = frozenset(
    {"sslmode", "sslrootcert", "sslcert", "sslkey", "channel_binding", "connect_timeout"}
)
_POOLER_PARAM = "pgbouncer"
#: Host names hosted providers give their transaction poolers: Neon's ``ep-…-pooler.<region>…``
#: and Supabase's ``aws-0-<region>.pooler.supabase.com``.
_POOLER_HOST_MARKS = ("-pooler.", ".pooler.supabase.com")


@dataclass(frozen=True)
class DatabaseURL:
    """A parsed database URL: the SQLAlchemy URL plus the keywords for ``asyncpg.connect``."""

    url: URL
    ssl_mode: str | None = None
    ssl_root_cert: str | None = None
    ssl_cert: str | None = None
    ssl_key: str | None = None
    connect_timeout: float | None = None
    dropped: tuple[str, ...] = field(default_factory=tuple)
    #: Connections go through a pooler in transaction mode (PgBouncer): each transaction may
    #: run on another server session, so nothing may rely on session state.
    transaction_pooler: bool = False

    @property
    def looks_pooled(self) -> bool:
        """Whether the URL says it goes through a transaction pooler (``pgbouncer=true``, or a
        host name hosted providers give their poolers)."""
        host = (self.url.host or "").lower()
        return self.transaction_pooler or any(mark in host for mark in _POOLER_HOST_MARKS)

    @property
    def database(self) -> str:
        return self.url.database or ""

    def redacted(self) -> str:
        """The URL with its password hidden, for logs and error messages."""
        return self.render(hide_password=True)

    def render(self, *, hide_password: bool = True) -> str:
        """The URL as text again, libpq parameters included (it parses back to the same value)."""
        libpq = {
            "sslmode": self.ssl_mode,
            "sslrootcert": self.ssl_root_cert,
            "sslcert": self.ssl_cert,
            "sslkey": self.ssl_key,
            "connect_timeout": None if self.connect_timeout is None else str(self.connect_timeout),
            _POOLER_PARAM: "true" if self.transaction_pooler else None,
        }
        url = self.url.update_query_dict({k: v for k, v in libpq.items() if v is not None})
        return url.render_as_string(hide_password=hide_password)

    def connect_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {}
        ssl_arg = _ssl_argument(self)
        if ssl_arg is not None:
            args["ssl"] = ssl_arg
        if self.connect_timeout is not None:
            args["timeout"] = self.connect_timeout
        return args

    def with_database(self, name: str) -> DatabaseURL:
        return replace(self, url=self.url.set(database=name))


def parse_database_url(raw: str) -> DatabaseURL:
    """Parse and normalise a URL; raises `ValueError` with a reason a person can act on."""
    try:
        url = make_url(raw.strip())
    except ArgumentError:
        raise ValueError(
            "is not a database URL; expected postgresql://user:password@host:5432/dbname"
        ) from None
    if url.drivername not in _ACCEPTED_SCHEMES:
        raise ValueError(
            f"scheme {url.drivername!r} is not supported; use postgresql://, postgres:// "
            "or postgresql+asyncpg://"
        )
    if not url.database:
        raise ValueError("names no database; add it after the host, e.g. …@host:5432/studio")

    query = dict(url.query)
    unknown = sorted(set(query) - _ASYNCPG_PARAMS - _LIBPQ_PARAMS - {_POOLER_PARAM})
    if unknown:
        supported = ", ".join(sorted(_ASYNCPG_PARAMS | _LIBPQ_PARAMS | {_POOLER_PARAM}))
        raise ValueError(f"unsupported URL parameter(s) {', '.join(unknown)}; use {supported}")

    ssl_mode = _single(query.pop("sslmode", None), "sslmode")
    if ssl_mode is not None and ssl_mode not in SSL_MODES:
        raise ValueError(f"sslmode={ssl_mode!r} is not one of {', '.join(SSL_MODES)}")
    timeout = _single(query.pop("connect_timeout", None), "connect_timeout")
    try:
        connect_timeout = float(timeout) if timeout is not None else None
    except ValueError:
        raise ValueError(f"connect_timeout={timeout!r} is not a number of seconds") from None
    pooler = _single(query.pop(_POOLER_PARAM, None), _POOLER_PARAM)
    if pooler is not None and pooler.lower() not in ("true", "false"):
        raise ValueError(f"{_POOLER_PARAM}={pooler!r} is not true or false")
    # asyncpg cannot do channel binding; TLS (sslmode) still protects the connection.
    dropped = ("channel_binding",) if query.pop("channel_binding", None) is not None else ()
    return DatabaseURL(
        ssl_mode=ssl_mode,
        ssl_root_cert=_single(query.pop("sslrootcert", None), "sslrootcert"),
        ssl_cert=_single(query.pop("sslcert", None), "sslcert"),
        ssl_key=_single(query.pop("sslkey", None), "sslkey"),
        connect_timeout=connect_timeout,
        dropped=dropped,
        transaction_pooler=pooler is not None and pooler.lower() == "true",
        url=url.set(drivername=DRIVER, query=query),
    )


def _single(value: str | tuple[str, ...] | None, name: str) -> str | None:
    if isinstance(value, tuple):
        raise ValueError(f"{name} is given more than once")
    return value


def _ssl_argument(parsed: DatabaseURL) -> bool | str | ssl.SSLContext | None:
    """asyncpg's ``ssl=`` for a libpq ``sslmode``.

    ``allow``/``prefer``/``require`` keep libpq's meaning (encrypt, do not verify) and are passed
    to asyncpg as the same words. The verifying modes get an `ssl.SSLContext` built here, so that
    ``sslrootcert`` works and, without it (or with ``sslrootcert=system``), the system's trusted
    CAs are used — what hosted providers document for ``verify-full``.
    """
    mode = parsed.ssl_mode
    if mode is None:
        return None
    if mode == "disable":
        return False
    if mode in ("allow", "prefer", "require"):
        return mode
    cafile = parsed.ssl_root_cert if parsed.ssl_root_cert not in (None, "system") else None
    context = ssl.create_default_context(cafile=cafile)
    context.check_hostname = mode == "verify-full"
    context.verify_mode = ssl.CERT_REQUIRED
    if parsed.ssl_cert:
        context.load_cert_chain(parsed.ssl_cert, parsed.ssl_key)
    return context

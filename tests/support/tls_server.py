"""A throwaway PostgreSQL server that speaks TLS, for the tests of ``sslmode`` handling.

`tls_postgres` runs ``initdb`` into a temporary folder, makes a private CA and a server
certificate with the ``openssl`` command line, starts ``postgres`` on 127.0.0.1 and a free port,
and stops the server and deletes the folder afterwards. The server certificate names only
``localhost`` (no IP address), so ``verify-full`` to 127.0.0.1 is a hostname mismatch while
``verify-ca`` to 127.0.0.1 is fine.

The PostgreSQL of the pgserver wheel is built without OpenSSL, so the binaries are the first
TLS-capable ones of: pgserver's, the ``pg_config`` on ``PATH``, ``/usr/lib/postgresql/*/bin``
(Debian). Run as root, PostgreSQL runs as the system user ``pgserver``, as pgserver itself does
(PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg

#: The server certificate's only name.
SERVER_NAME = "localhost"
#: pg_hba.conf refuses unencrypted connections to this database (and only to this one).
TLS_ONLY_DATABASE = "studio_tls_only"
SYSTEM_USER = "pgserver"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

PG_HBA = f"""\
# TYPE    DATABASE            USER  ADDRESS       METHOD
local     all                 all                 trust
hostnossl {TLS_ONLY_DATABASE} all   127.0.0.1/32  reject
hostssl   all                 all   127.0.0.1/32  trust
host      all                 all   127.0.0.1/32  trust
"""

OPENSSL_CONFIG = f"""\
[req]
distinguished_name = dn
prompt = no

[dn]
CN = Studio API test CA

[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:{SERVER_NAME}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""


@dataclass(frozen=True)
class TlsPostgres:
    port: int
    ca_file: Path
    log_file: Path

    def url(self, host: str = SERVER_NAME, database: str = "postgres", **params: str) -> str:
        """A libpq-style URL for this server, e.g. ``url(sslmode="require")``."""
        query = f"?{urlencode(params)}" if params else ""
        return f"postgresql://postgres@{host}:{self.port}/{database}{query}"

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")


def find_tls_bindir() -> Path | None:
    """The first folder of PostgreSQL server binaries built with OpenSSL, or None."""
    for bindir in _candidate_bindirs():
        if all((bindir / name).is_file() for name in ("initdb", "postgres", "pg_config")) and (
            _built_with_openssl(bindir)
        ):
            return bindir
    return None


def missing_requirement() -> str | None:
    """Why `tls_postgres` cannot run on this machine, or None when it can."""
    if find_tls_bindir() is None:
        return "no PostgreSQL server binaries built with OpenSSL (pgserver's are not)"
    if shutil.which("openssl") is None:
        return "the openssl command is not installed"
    return None


@contextmanager
def tls_postgres() -> Iterator[TlsPostgres]:
    """Start a TLS-enabled server for the duration of the ``with`` block."""
    bindir = find_tls_bindir()
    openssl = shutil.which("openssl")
    if bindir is None or openssl is None:
        raise RuntimeError(f"cannot start a TLS server: {missing_requirement()}")

    folder = Path(tempfile.mkdtemp(prefix="studio-test-tls-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        run_as = _run_as()
        if run_as:
            _hand_over(folder, run_as)
        pgdata, sockets, tls = folder / "pgdata", folder / "sockets", folder / "tls"
        sockets.mkdir()
        tls.mkdir()
        if run_as:
            _chown(sockets, run_as)
        ca_file, cert_file, key_file = _make_certificates(openssl, tls, run_as)

        _run(
            [
                str(bindir / "initdb"),
                "-D", str(pgdata),
                "-U", "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
                "--no-instructions",
            ],
            run_as,
        )  # fmt: skip
        (pgdata / "pg_hba.conf").write_text(PG_HBA)

        port = _free_port()
        server = TlsPostgres(port=port, ca_file=ca_file, log_file=folder / "postgres.log")
        with server.log_file.open("wb") as log:
            process = subprocess.Popen(
                [
                    str(bindir / "postgres"),
                    "-D", str(pgdata),
                    "-p", str(port),
                    "-k", str(sockets),
                    "-c", "listen_addresses=127.0.0.1",
                    "-c", "ssl=on",
                    "-c", f"ssl_cert_file={cert_file}",
                    "-c", f"ssl_key_file={key_file}",
                    "-c", "fsync=off",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the terminal reaches pytest only
                **run_as,
            )  # fmt: skip
        _wait_until_ready(process, server)
        yield server
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(folder, ignore_errors=True)


def _candidate_bindirs() -> Iterator[Path]:
    with warnings.catch_warnings():
        # pgserver asks platformdirs for XDG_RUNTIME_DIR at import; the /tmp fallback is fine.
        warnings.simplefilter("ignore")
        from pgserver._commands import POSTGRES_BIN_PATH

    yield POSTGRES_BIN_PATH
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        bindir = _output([pg_config, "--bindir"])
        if bindir:
            yield Path(bindir.strip())
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        versions = [p for p in debian.iterdir() if p.name.isdigit()]
        for version in sorted(versions, key=lambda p: int(p.name), reverse=True):
            yield version / "bin"


def _built_with_openssl(bindir: Path) -> bool:
    configure = _output([str(bindir / "pg_config"), "--configure"]) or ""
    return "--with-openssl" in configure or "--with-ssl=openssl" in configure


def _output(command: list[str]) -> str | None:
    try:
        return subprocess.run(command, check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None


def _run_as() -> dict[str, Any]:
    """``subprocess`` keywords that drop root for the server's own user; empty when not root."""
    if os.geteuid() != 0:
        return {}
    from pgserver.utils import ensure_user_exists

    entry = ensure_user_exists(SYSTEM_USER)
    assert entry is not None
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _hand_over(folder: Path, run_as: dict[str, Any]) -> None:
    """Give the server's user the folder and a way to reach it (what pgserver does for pgdata)."""
    from pgserver.utils import ensure_prefix_permissions

    ensure_prefix_permissions(folder)
    _chown(folder, run_as)


def _chown(path: Path, run_as: dict[str, Any]) -> None:
    os.chown(path, run_as["user"], run_as["group"])


def _make_certificates(
    openssl: str, folder: Path, run_as: dict[str, Any]
) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate it signed; returns (ca.pem, server.pem, server.key)."""
    config = folder / "openssl.cnf"
    config.write_text(OPENSSL_CONFIG)
    ca_file, ca_key = folder / "ca.pem", folder / "ca.key"
    cert_file, key_file, request = (
        folder / "server.pem",
        folder / "server.key",
        folder / "server.csr",
    )
    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _run(
        [
            openssl, "req", "-x509", "-config", str(config), "-extensions", "ca_ext", *new_key,
            "-keyout", str(ca_key), "-out", str(ca_file), "-days", "2",
            "-subj", "/CN=Studio API test CA",
        ]
    )  # fmt: skip
    _run(
        [
            openssl, "req", "-new", "-config", str(config), *new_key,
            "-keyout", str(key_file), "-out", str(request), "-subj", f"/CN={SERVER_NAME}",
        ]
    )  # fmt: skip
    _run(
        [
            openssl, "x509", "-req", "-in", str(request), "-CA", str(ca_file),
            "-CAkey", str(ca_key), "-set_serial", "2", "-days", "2",
            "-extfile", str(config), "-extensions", "server_ext", "-out", str(cert_file),
        ]
    )  # fmt: skip
    # PostgreSQL refuses a key file that is not its own user's with mode 0600.
    key_file.chmod(0o600)
    if run_as:
        _chown(key_file, run_as)
    return ca_file, cert_file, key_file


def _run(command: list[str], run_as: dict[str, Any] | None = None) -> None:
    result = subprocess.run(
        command, stdin=subprocess.DEVNULL, capture_output=True, text=True, **(run_as or {})
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{Path(command[0]).name} exited with {result.returncode}:\n"
            f"{result.stdout}{result.stderr}"
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_ready(process: subprocess.Popen[bytes], server: TlsPostgres) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"PostgreSQL exited with {process.returncode} at start:\n{server.log()}"
            )
        if asyncio.run(_accepts_connections(server.port)):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"PostgreSQL did not accept connections in {START_TIMEOUT:.0f}s:\n{server.log()}"
            )
        time.sleep(0.05)


async def _accepts_connections(port: int) -> bool:
    try:
        connection = await asyncpg.connect(
            host="127.0.0.1", port=port, user="postgres", database="postgres", ssl=False,
            timeout=2,
        )  # fmt: skip
    except (OSError, TimeoutError, asyncpg.CannotConnectNowError):
        return False
    await connection.close()
    return True


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Fast shutdown (SIGINT: roll back sessions, then exit); kill it if that hangs."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()

"""A real PgBouncer in transaction mode in front of the test server, as hosted PostgreSQL's
pooled URLs (Neon's ``-pooler`` host, Supabase's pooler port) put one in front of theirs.

`running_pgbouncer` writes a configuration into a temporary folder and starts Debian's
``pgbouncer`` on a free port of 127.0.0.1 with ``pool_mode = transaction`` and PgBouncer's
defaults otherwise: in particular ``ignore_startup_parameters`` stays empty, so a client that
sends a startup parameter PgBouncer does not track (``statement_timeout``) is refused, as it
is by the hosted poolers. Run as root, PgBouncer runs as the system user ``postgres``, or as the
embedded server's own user in front of that one (PgBouncer refuses to run as root).

A test that needs one takes the `pgbouncer` fixture (``tests/conftest.py``): it skips with the
reason when PgBouncer is not installed, unless ``STUDIO_TEST_PGBOUNCER=required`` (CI) makes
that a failure.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from db.url import DatabaseURL

SYSTEM_USER = "postgres"
START_TIMEOUT = 15.0
REQUIRED_ENV = "STUDIO_TEST_PGBOUNCER"


@dataclass(frozen=True)
class PgBouncer:
    """A running PgBouncer: its address and log."""

    host: str
    port: int
    log: Path

    def pooled(self, database: DatabaseURL) -> DatabaseURL:
        """``database``'s URL through this PgBouncer (same user, password and database name)."""
        url = database.url.set(host=self.host, port=self.port).difference_update_query(
            ["host", "port"]
        )
        return DatabaseURL(url=url)


def pgbouncer_binary() -> str:
    """The ``pgbouncer`` to run; skips the test (fails it in CI) when there is none."""
    found = shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.access(p, os.X_OK)), None
    )
    if found is None:
        reason = "PgBouncer is not installed (Debian: apt-get install pgbouncer)"
        if os.environ.get(REQUIRED_ENV, "").lower() == "required":
            pytest.fail(f"{reason}; {REQUIRED_ENV}=required")
        pytest.skip(reason)
    return found


@contextmanager
def running_pgbouncer(server: DatabaseURL, *, max_client_conn: int = 400) -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode in front of ``server`` (any database on it), until the
    block ends."""
    binary = pgbouncer_binary()
    folder = Path(tempfile.mkdtemp(prefix="studio-pgbouncer-"))
    try:
        port = _free_port()
        log = folder / "pgbouncer.log"
        # auth_type = trust still wants the user names in auth_file.
        users = {server.url.username or SYSTEM_USER, SYSTEM_USER, "root"}
        (folder / "userlist.txt").write_text("".join(f'"{user}" ""\n' for user in sorted(users)))
        (folder / "pgbouncer.ini").write_text(
            _config(server, port=port, folder=folder, max_client_conn=max_client_conn)
        )
        command = [binary, str(folder / "pgbouncer.ini")]
        if os.geteuid() == 0:
            user = _system_user(server)
            _hand_over(folder, user)
            command[1:1] = ["-u", user]
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            _wait_listening(process, port, log)
            yield PgBouncer(host="127.0.0.1", port=port, log=log)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)  # PgBouncer's "safe shutdown" is SIGINT
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _config(server: DatabaseURL, *, port: int, folder: Path, max_client_conn: int) -> str:
    url, query = server.url, _query(server)
    # A TCP server, or the embedded one's Unix socket folder (``?host=…&port=…``).
    target = f"host={url.host or query['host']} port={url.port or query.get('port', 5432)}"
    return f"""\
[databases]
* = {target}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder / "userlist.txt"}
pool_mode = transaction
max_client_conn = {max_client_conn}
default_pool_size = 20
logfile = {folder / "pgbouncer.log"}
pidfile = {folder / "pgbouncer.pid"}
admin_users = {url.username or SYSTEM_USER}
"""


def _system_user(server: DatabaseURL) -> str:
    """Who PgBouncer runs as: ``postgres``, or for a server on a Unix socket (the embedded one)
    the owner of the socket's folder, which no one else may enter."""
    socket_dir = _query(server).get("host")
    if server.url.host is None and socket_dir:
        return pwd.getpwuid(Path(socket_dir).stat().st_uid).pw_name
    return SYSTEM_USER


def _hand_over(folder: Path, name: str) -> None:
    """Let the unprivileged user write its log and pid file in ``folder``."""
    user = pwd.getpwnam(name)
    for path in (folder, *folder.iterdir()):
        os.chown(path, user.pw_uid, user.pw_gid)


def _query(server: DatabaseURL) -> dict[str, str]:
    return {k: v if isinstance(v, str) else v[0] for k, v in server.url.query.items()}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited with {process.returncode}:\n{_read(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"pgbouncer did not listen on {port} within {START_TIMEOUT}s:\n{_read(log)}")


def _read(log: Path) -> str:
    return log.read_text(errors="replace") if log.exists() else "(no log)"

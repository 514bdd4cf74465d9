"""A fresh machine: `studio serve` with no DATABASE_URL brings up the embedded PostgreSQL.

Real processes, a real embedded server in a temporary STUDIO_DATA_DIR, real HTTP.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.processes import (
    clean_env,
    free_port,
    run_studio,
    start_studio,
    stop,
    wait_until_ready,
)


def _postmaster_running(data_dir: Path) -> bool:
    return (data_dir / "pgdata" / "postmaster.pid").exists()


def test_serve_starts_migrates_and_stops_the_embedded_database(tmp_path: Path) -> None:
    env = clean_env(STUDIO_DATA_DIR=str(tmp_path))
    port, log = free_port(), tmp_path / "serve.log"
    process = start_studio("serve", "--port", str(port), env=env, log=log)
    try:
        ready = wait_until_ready(port, process, log)
        assert ready.json()["checks"]["migrations"]["ok"] is True
        assert _postmaster_running(tmp_path)
    finally:
        exit_code = stop(process)
    assert exit_code == 0, log.read_text()
    assert not _postmaster_running(tmp_path), "SIGTERM left the embedded PostgreSQL running"


def test_second_serve_reuses_the_running_embedded_database(tmp_path: Path) -> None:
    env = clean_env(STUDIO_DATA_DIR=str(tmp_path))
    first_port, second_port = free_port(), free_port()
    first = start_studio("serve", "--port", str(first_port), env=env, log=tmp_path / "first.log")
    try:
        wait_until_ready(first_port, first, tmp_path / "first.log")
        pid = (tmp_path / "pgdata" / "postmaster.pid").read_text().split()[0]
        second = start_studio(
            "serve", "--port", str(second_port), env=env, log=tmp_path / "second.log"
        )
        try:
            wait_until_ready(second_port, second, tmp_path / "second.log")
            assert (tmp_path / "pgdata" / "postmaster.pid").read_text().split()[0] == pid
            assert stop(first) == 0
            # The first process let go; the server stays up for the second.
            wait_until_ready(second_port, second, tmp_path / "second.log", timeout=5)
        finally:
            assert stop(second) == 0
    finally:
        if first.poll() is None:
            stop(first)
    assert not _postmaster_running(tmp_path)


def test_token_and_seed_attach_to_a_running_serve_quietly(tmp_path: Path) -> None:
    env = clean_env(STUDIO_DATA_DIR=str(tmp_path))
    # Alone, `studio token` starts the embedded server, and migrates the new database, saying so.
    alone = run_studio("token", "--email", "alone@example.com", env=env)
    assert alone.returncode == 0, alone.stderr
    assert "Starting the embedded PostgreSQL" in alone.stderr
    assert "Running upgrade" in alone.stderr
    assert not _postmaster_running(tmp_path)

    port, log = free_port(), tmp_path / "serve.log"
    process = start_studio("serve", "--port", str(port), env=env, log=log)
    try:
        wait_until_ready(port, process, log)
        token = run_studio("token", "--email", "attached@example.com", env=env)
        seed = run_studio("seed", "--users", "1", "--videos-per-user", "1", env=env)
    finally:
        assert stop(process) == 0, log.read_text()

    assert token.returncode == 0, token.stderr
    # Only what the command itself says: who, the GraphiQL link, how to send the token.
    assert [line.split(" ", 1)[0] for line in token.stderr.splitlines()] == [
        "created",
        "GraphiQL",
        "Requests:",
    ], token.stderr
    assert seed.returncode == 0, seed.stderr
    assert seed.stderr.splitlines()[-1].startswith("users created: 1"), seed.stderr
    for output in (token.stderr, seed.stderr):
        assert "Starting the embedded PostgreSQL" not in output
        assert " INFO " not in output  # no Alembic (or any other) log lines
    # The already migrated database was not migrated again, by serve either.
    assert "alembic" not in log.read_text()

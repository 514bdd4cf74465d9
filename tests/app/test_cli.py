"""The ``studio`` command: help everywhere, migrations, and a seed that is safe to run twice."""

from __future__ import annotations

import asyncio
import resource
import subprocess
import sys
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

from app.cli import OPEN_FILES_WANTED, cli
from db.models import GenerationJob, JobStatus, User, Video, VideoStatus, VoiceProfile
from db.url import DatabaseURL
from tests.support.processes import clean_env, run_studio


def _env(database: DatabaseURL) -> dict[str, str]:
    return clean_env(DATABASE_URL=database.render(hide_password=False))


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["migrate"],
        ["migrate", "upgrade"],
        ["migrate", "downgrade"],
        ["migrate", "current"],
        ["migrate", "history"],
        ["seed"],
        ["token"],
        ["schema"],
        ["worker"],
        ["purge"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(cli, [*command, "--help"], prog_name="studio")
    assert result.exit_code == 0, result.output
    assert "Usage: studio" in result.output


def test_bad_configuration_is_reported_by_name() -> None:
    result = run_studio(
        "migrate", "current", env=clean_env(DATABASE_URL="mysql://root@localhost/x")
    )
    assert result.returncode == 2
    assert "DATABASE_URL: scheme 'mysql' is not supported" in result.stderr
    assert "Traceback" not in result.stderr


def test_migrate_upgrade_current_downgrade(empty_database: DatabaseURL) -> None:
    env = _env(empty_database)
    assert run_studio("migrate", "current", env=env).stdout.strip() == ""
    upgraded = run_studio("migrate", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "(head)" in run_studio("migrate", "current", env=env).stdout
    downgraded = run_studio("migrate", "downgrade", "base", env=env)
    assert downgraded.returncode == 0, downgraded.stderr
    assert run_studio("migrate", "current", env=env).stdout.strip() == ""


def test_seed_refuses_an_unmigrated_database(empty_database: DatabaseURL) -> None:
    result = run_studio("seed", env=_env(empty_database))
    assert result.returncode == 1
    assert "studio migrate upgrade" in result.stderr


def test_seed_covers_every_status_and_is_safe_to_run_twice(empty_database: DatabaseURL) -> None:
    env = _env(empty_database)
    assert run_studio("migrate", "upgrade", env=env).returncode == 0
    first = run_studio("seed", "--users", "3", "--videos-per-user", "6", env=env)
    assert first.returncode == 0, first.stderr
    assert "users created: 3" in first.stderr
    counts = asyncio.run(_counts(empty_database))
    assert counts["users"] == 3
    assert counts["videos"] == 18
    assert counts["voice_profiles"] >= 3
    assert counts["video_statuses"] == set(VideoStatus)
    assert counts["job_statuses"] == set(JobStatus)

    second = run_studio("seed", "--users", "3", "--videos-per-user", "6", env=env)
    assert second.returncode == 0, second.stderr
    assert "already there: 3" in second.stderr
    assert asyncio.run(_counts(empty_database)) == counts


async def _counts(database: DatabaseURL) -> dict[str, Any]:
    engine = create_async_engine(
        database.url, connect_args=database.connect_args(), poolclass=NullPool
    )
    try:
        async with engine.connect() as connection:
            return {
                "users": await connection.scalar(select(func.count()).select_from(User)),
                "videos": await connection.scalar(select(func.count()).select_from(Video)),
                "voice_profiles": await connection.scalar(
                    select(func.count()).select_from(VoiceProfile)
                ),
                "jobs": await connection.scalar(select(func.count()).select_from(GenerationJob)),
                "video_statuses": set(
                    (await connection.scalars(select(Video.status).distinct())).all()
                ),
                "job_statuses": set(
                    (await connection.scalars(select(GenerationJob.status).distinct())).all()
                ),
            }
    finally:
        await engine.dispose()


def test_the_open_file_limit_is_raised_to_the_hard_limit() -> None:
    """Every websocket holds a file: `studio serve` lifts a low soft limit (1,024 is common)
    to the hard one before it listens, in its own process."""
    script = (
        "import resource\n"
        "from app.cli import raise_open_file_limit\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))\n"
        "raised = raise_open_file_limit()\n"
        "assert resource.getrlimit(resource.RLIMIT_NOFILE) == (raised, hard)\n"
        "print(raised, hard)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=clean_env()
    )
    raised, hard = (int(value) for value in done.stdout.split())
    assert raised == (OPEN_FILES_WANTED if hard == resource.RLIM_INFINITY else hard)
    assert raised > 256

#!/usr/bin/env python3
"""CI's migration gate, with the real `alembic` command on a fresh database:
upgrade head, `alembic check` (models and migrations agree), downgrade base, upgrade head.

The database server is chosen as the tests choose it (tests/support/server.py); the database is
created for this check and dropped after it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.server import choose_server  # noqa: E402

STEPS = (["upgrade", "head"], ["check"], ["downgrade", "base"], ["upgrade", "head"])


def main() -> int:
    server = choose_server()
    try:
        database = server.create_database(migrated=False, prefix="studio_migration_check")
        try:
            env = os.environ | {"DATABASE_URL": database.render(hide_password=False)}
            alembic = Path(sys.executable).with_name("alembic")
            for step in STEPS:
                print(f"$ alembic {' '.join(step)}", flush=True)
                subprocess.run([str(alembic), *step], cwd=ROOT, env=env, check=True)
        finally:
            server.drop_database(database)
    finally:
        server.close()
    print(f"migrations OK on the {server.kind} PostgreSQL server")
    return 0


if __name__ == "__main__":
    sys.exit(main())

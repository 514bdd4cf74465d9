"""Run the real ``studio`` command in child processes, with a clean environment.

A test that needs a real API process writes::

    with running_studio(clean_env(DATABASE_URL=...), tmp_path, email="a@example.com") as studio:
        httpx.post(f"{studio.url}/graphql", headers=studio.headers, json=...)

and one that needs two on the same database uses `running_studios` (`running_studio` twice).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

STUDIO = [sys.executable, "-m", "app.cli"]

#: Where the test run's settings and every ``studio`` process a test starts keep media
#: (generation writes audio and captions): a folder of the run's own, never the user's.
TEST_MEDIA_DIR = Path(tempfile.gettempdir()) / f"studio-test-media-{os.getpid()}"


#: Small, low-rate frames for the many tests that run whole jobs but are not about the picture
#: (the render tests set their own size): a job's render takes a fraction of the default's time.
TEST_RENDER = {
    "STUDIO_RENDER_WIDTH": "320",
    "STUDIO_RENDER_HEIGHT": "180",
    "STUDIO_RENDER_FPS": "5",
}
#: The render a user gets (the settings' defaults), for the tests about the finished video.
USER_RENDER = {
    "STUDIO_RENDER_WIDTH": "1280",
    "STUDIO_RENDER_HEIGHT": "720",
    "STUDIO_RENDER_FPS": "25",
}
#: Rate limits are off in every test but those about them, which turn them on in their settings.
TEST_RATE_LIMITS = {"STUDIO_RATE_LIMIT_ENABLED": "false"}


@dataclass(frozen=True)
class StudioProcess:
    """A running ``studio serve``: its base URL, its log, and the token of the user it was
    started for (`running_studio`'s ``email``), if any."""

    url: str
    log: Path
    issued_token: str | None = None

    @property
    def token(self) -> str:
        assert self.issued_token is not None, "started without an email: no user, no token"
        return self.issued_token

    @property
    def headers(self) -> dict[str, str]:
        """The ``Authorization`` header of the user's requests."""
        return {"Authorization": f"Bearer {self.token}"}


@contextmanager
def running_studio(
    env: Mapping[str, str], folder: Path, *, email: str | None = None, name: str = "serve"
) -> Iterator[StudioProcess]:
    """``studio serve`` on a free port of 127.0.0.1, ready (``/readyz`` answers 200) when the
    block starts; with ``email``, a token for that user from `studio_token` first.

    When the block ends the process gets SIGTERM, and must then exit cleanly (0): a block that
    passed fails otherwise, with the log (``folder / f"{name}.log"``).
    """
    token = studio_token(env, email) if email is not None else None
    port, log = free_port(), folder / f"{name}.log"
    process = start_studio("serve", "--port", str(port), env=env, log=log)
    try:
        wait_until_ready(port, process, log)
        yield StudioProcess(f"http://127.0.0.1:{port}", log, token)
    finally:
        exit_code = stop(process)
    assert exit_code == 0, f"studio serve exited with {exit_code}:\n{log.read_text()}"


@contextmanager
def running_studios(
    env: Mapping[str, str], folder: Path, count: int
) -> Iterator[list[StudioProcess]]:
    """``count`` `running_studio` processes with one environment (so on one database), logging
    to ``api1.log``, ``api2.log`` …"""
    with ExitStack() as stack:
        yield [
            stack.enter_context(running_studio(env, folder, name=f"api{index}"))
            for index in range(1, count + 1)
        ]


def studio_token(env: Mapping[str, str], email: str) -> str:
    """The token ``studio token --email`` prints as its last line, for a user it creates if new;
    it also offers GraphiQL signed in as that user, through the URL fragment."""
    issued = run_studio("token", "--email", email, env=env)
    assert issued.returncode == 0, issued.stderr
    assert issued.stdout.endswith("\n"), issued.stdout
    token = issued.stdout.splitlines()[-1]
    assert f"/graphql#token={token}" in issued.stderr, issued.stderr
    return token


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without any studio or database configuration, plus the test
    run's media folder and render size, rate limits off, plus ``extra``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("STUDIO_") and name not in ("DATABASE_URL", "TEST_DATABASE_URL")
    }
    return env | {"STUDIO_MEDIA_DIR": str(TEST_MEDIA_DIR)} | TEST_RENDER | TEST_RATE_LIMITS | extra


def run_studio(
    *args: str, env: Mapping[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*STUDIO, *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_studio(*args: str, env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [*STUDIO, *args], env=dict(env), stdout=out, stderr=subprocess.STDOUT
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_ready(
    port: int, process: subprocess.Popen[bytes], log: Path, *, timeout: float = 60
) -> httpx.Response:
    """Poll ``/readyz`` until it answers 200; fail with the server's log if it never does."""
    deadline = time.monotonic() + timeout
    last: str = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"studio exited with {process.returncode}:\n{log.read_text()}")
        try:
            response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
        except httpx.TransportError as exc:
            last = repr(exc)
        else:
            if response.status_code == 200:
                return response
            last = f"{response.status_code} {response.text}"
        time.sleep(0.1)  # polling interval, not a wait for work to finish
    raise AssertionError(f"/readyz not 200 after {timeout}s ({last}):\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes], *, timeout: float = 30) -> int:
    """SIGTERM, then wait for a clean exit."""
    process.terminate()
    return process.wait(timeout=timeout)

"""Run the real ``studio`` command in child processes, with a clean environment."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
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
#: Rate limits are off in every test but those about them, which turn them on in their settings.
TEST_RATE_LIMITS = {"STUDIO_RATE_LIMIT_ENABLED": "false"}


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

"""GraphiQL in a real browser: a server on a real port, and the scripts in tests/browser that drive
Chromium.

``run_graphiql_smoke`` works against any server that serves GraphiQL, e.g. the real app with a
viewer's token::

    with serve(create_app(settings)) as base_url:
        run_graphiql_smoke(
            f"{base_url}/graphql",
            query="{ viewer { email } }",
            expect=user.email,
            headers={"Authorization": f"Bearer {token}"},
        )

The browser tests skip on a machine without Chromium, Node.js or playwright-core (``npm ci`` in
tests/browser/), with the reason; ``STUDIO_TEST_BROWSER=required`` (set by ``.ci/run``) makes a
missing one a failure. GraphiQL's own files ship with the package.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.types import ASGIApp

ROOT = Path(__file__).resolve().parents[2]
SMOKE_SCRIPT = ROOT / "tests" / "browser" / "graphiql_smoke.mjs"
PLAYWRIGHT_CORE = ROOT / "tests" / "browser" / "node_modules" / "playwright-core"
INSTALL_PLAYWRIGHT = "(cd tests/browser && npm ci)"


@dataclass(frozen=True)
class BrowserTools:
    node: str
    chromium: str


@dataclass(frozen=True)
class SmokeReport:
    response: str | None
    requests: list[str]  # "<kind> <url>" for every request and websocket, in order
    external: list[str]
    page_errors: list[str]
    console_errors: list[str]


def browser_tools() -> BrowserTools:
    """Node.js and Chromium, or skip the test (fail it under ``STUDIO_TEST_BROWSER=required``)."""
    node = shutil.which("node")
    chromium = os.environ.get("STUDIO_CHROMIUM") or shutil.which("chromium")
    missing = [
        reason
        for reason, absent in (
            ("Chromium (`apt-get install chromium`, or set STUDIO_CHROMIUM)", chromium is None),
            ("Node.js (`node`)", node is None),
            (f"playwright-core (`{INSTALL_PLAYWRIGHT}`)", _no_playwright()),
        )
        if absent
    ]
    if missing:
        reason = "browser test needs " + ", ".join(missing)
        if os.environ.get("STUDIO_TEST_BROWSER", "").lower() == "required":
            pytest.fail(f"{reason} (STUDIO_TEST_BROWSER=required)")
        pytest.skip(reason)
    assert node is not None
    assert chromium is not None
    return BrowserTools(node=node, chromium=chromium)


def run_graphiql_smoke(
    url: str,
    query: str,
    expect: str,
    headers: dict[str, str] | None = None,
    *,
    variables: dict[str, object] | None = None,
    upload: Path | None = None,
    timeout: float = 30,
) -> SmokeReport:
    """Open GraphiQL at ``url``, run ``query``, wait for ``expect`` in the result pane.

    Fails the test if the text never appears or if the page requested anything from a host other
    than ``url``'s. ``headers`` go into GraphiQL's headers editor (its ``?headers=`` parameter),
    ``variables`` into its variables editor; ``upload`` is chosen in the page's upload bar (the
    variable path it fills keeps its default, ``input.sample``).
    """
    config = {
        "url": url,
        "query": query,
        "expect": expect,
        "headers": headers,
        "variables": variables,
        "upload": str(upload) if upload is not None else None,
        "timeoutMs": int(timeout * 1000),
    }
    # Launch, load and run each get `timeout`.
    raw, result = run_browser_script(SMOKE_SCRIPT, config, timeout=timeout * 3)
    report = SmokeReport(
        response=raw["response"],
        requests=raw["requests"],
        external=raw["external"],
        page_errors=raw["pageErrors"],
        console_errors=raw["consoleErrors"],
    )
    if result.returncode != 0:
        raise AssertionError(_describe_failure(raw["error"], report, result.stderr))
    return report


def run_browser_script(
    script: Path, config: dict[str, Any], *, timeout: float
) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    """Run one of tests/browser's scripts with ``config`` (and this machine's Chromium) as its
    argument; the JSON report it prints last, and the finished process.

    Skips (or fails) the test like `browser_tools`; fails it when the script printed no report.
    """
    tools = browser_tools()
    result = subprocess.run(
        [tools.node, str(script), json.dumps(config | {"chromium": tools.chromium})],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    try:
        report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise AssertionError(
            f"{script.name} exited with {result.returncode} without a report:\n"
            f"{result.stdout}\n{result.stderr}"
        ) from None
    return report, result


@contextmanager
def serve(app: ASGIApp) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free port of 127.0.0.1; yields the base URL.

    The socket is bound and listening before the server thread starts, so the URL answers as soon
    as it is yielded (connections wait in the backlog) and no other process can take the port.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _no_playwright() -> bool:
    return not (PLAYWRIGHT_CORE / "package.json").is_file()


def _describe_failure(error: str | None, report: SmokeReport, stderr: str) -> str:
    lines = [f"GraphiQL smoke test failed: {error}"]
    if report.external:
        lines += ["requests to other hosts:", *(f"  {request}" for request in report.external)]
    lines += [f"result pane: {report.response!r}", "requests:"]
    lines += [f"  {request}" for request in report.requests]
    for title, entries in (("page errors", report.page_errors), ("console", report.console_errors)):
        if entries:
            lines += [f"{title}:", *(f"  {entry}" for entry in entries)]
    if stderr.strip():
        lines += ["stderr:", stderr.strip()]
    return "\n".join(lines)

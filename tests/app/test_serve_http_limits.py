"""HTTP limits as a client of a real ``studio serve`` meets them, over raw sockets: a request head
over STUDIO_MAX_HEADER_BYTES is 431 (`app.server_protocol`), and a body over
STUDIO_MAX_BODY_BYTES gets its 413 answer (the server reads what is left of it before
answering, instead of closing while it still arrives)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.support.processes import StudioProcess, clean_env, running_studio
from tests.support.server import PgServer

#: The defaults of STUDIO_MAX_BODY_BYTES and STUDIO_MAX_HEADER_BYTES, which `studio serve`
#: runs with here.
MAX_BODY_BYTES = 1_000_000
MAX_HEADER_BYTES = 16 * 1024


@pytest.fixture(scope="module")
def studio(
    pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StudioProcess]:
    with pg_server.temporary_database(prefix="studio_limits") as database:
        env = clean_env(DATABASE_URL=database.render(hide_password=False))
        with running_studio(env, tmp_path_factory.mktemp("serve")) as process:
            yield process


def exchange(
    studio: StudioProcess, head: bytes, body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """Send ``head`` and ``body`` whole, then read the answer to its end (the server closes):
    the status, the headers and the body. A reset on the way raises."""
    address = urlsplit(studio.url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        sock.sendall(head + body)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head_part, _, content = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head_part.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in header_lines)
    return int(status_line.split(" ")[1]), headers, content


def post_head(length: int | None, *, connection: str = "close") -> bytes:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (
        "POST /graphql HTTP/1.1\r\nHost: studio.test\r\nContent-Type: application/json\r\n"
        f"{framing}\r\nConnection: {connection}\r\n\r\n"
    ).encode()


def assert_too_large(status: int, content: bytes) -> None:
    assert status == 413
    (error,) = json.loads(content)["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "limit": "max_body_bytes"}


def test_a_3_mb_body_gets_its_413_answer(studio: StudioProcess) -> None:
    """The client sends all of it and then reads the JSON answer: no reset, no broken pipe."""
    body = b"x" * 3_000_000
    status, headers, content = exchange(studio, post_head(len(body)), body)
    assert_too_large(status, content)
    assert headers["content-type"] == "application/json"


def test_a_3_mb_chunked_body_gets_its_413_answer(studio: StudioProcess) -> None:
    piece = b"x" * 100_000
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(30)) + b"0\r\n\r\n"
    status, _, content = exchange(studio, post_head(None), chunks)
    assert_too_large(status, content)


def get_head(target: str = "/healthz", *, header: str = "") -> bytes:
    extra = f"{header}\r\n" if header else ""
    return (
        f"GET {target} HTTP/1.1\r\nHost: studio.test\r\n{extra}Connection: close\r\n\r\n".encode()
    )


@pytest.mark.parametrize("size", [1_000_000, 8_000_000])
def test_a_header_of_megabytes_is_431(studio: StudioProcess, size: int) -> None:
    """It was answered 200: llhttp keeps header fields of any size."""
    status, headers, content = exchange(studio, get_head(header="X-Padding: " + "a" * size))
    assert status == 431
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    (error,) = json.loads(content)["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "limit": "max_header_bytes"}
    assert str(MAX_HEADER_BYTES) in error["message"]


@pytest.mark.parametrize(
    "head",
    [
        get_head("/healthz?" + "a" * MAX_HEADER_BYTES),  # the request line counts
        get_head(header="\r\n".join(f"X-Field-{n}: {'v' * 100}" for n in range(200))),
    ],
    ids=["long-url", "many-fields"],
)
def test_a_head_over_the_limit_in_any_part_is_431(studio: StudioProcess, head: bytes) -> None:
    assert exchange(studio, head)[0] == 431


def test_a_head_within_the_limit_is_served(studio: StudioProcess) -> None:
    status, _, content = exchange(studio, get_head(header="X-Padding: " + "a" * 15_000))
    assert status == 200
    assert json.loads(content) == {"status": "ok"}

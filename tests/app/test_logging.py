"""Structured logs (SPEC §5 Operations): one JSON access line per GraphQL operation with the
request id, operation, viewer, duration and outcome; ``X-Request-ID`` taken from the client when
it is plain and returned; and never a token, an id token or the secret key in any line."""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.logging import HANDLER_NAME, REDACTED
from app.main import create_app
from app.request_context import new_request_id
from app.settings import LogFormat, LogLevel, Settings
from tests.factories import make_user
from tests.support.graphql import GraphQLClient
from tests.support.oidc_issuer import LocalIssuer, running_issuer

SIGN_IN = """
mutation SignIn($input: SignInInput!) {
  signIn(input: $input) { accessToken user { id email } }
}
"""


class LogCapture:
    """What the studio's log handler wrote, one JSON object per line."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    @property
    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def access(self) -> list[dict[str, Any]]:
        return [entry for entry in self.entries if entry["logger"] == "studio.access"]


@contextmanager
def captured_log() -> Iterator[LogCapture]:
    """Point the handler `configure_logging` installed (its filters and format stay) at memory."""
    (handler,) = [h for h in logging.getLogger().handlers if h.get_name() == HANDLER_NAME]
    assert isinstance(handler, logging.StreamHandler)
    capture = LogCapture()
    previous = handler.setStream(capture.stream)
    try:
        yield capture
    finally:
        handler.setStream(previous)


@contextmanager
def restored_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:], root.level = handlers, level


def json_settings(settings: Settings, **overrides: Any) -> Settings:
    return settings.model_copy(
        update={"log_format": LogFormat.JSON, "log_level": LogLevel.DEBUG} | overrides
    )


@pytest.fixture
async def json_http(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app logging JSON at DEBUG (everything any library says)."""
    with restored_root_logger():
        app = create_app(json_settings(settings), sessionmaker=sessionmaker)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://studio.test") as c:
                yield c


# --- access lines -----------------------------------------------------------------------------


async def test_each_operation_writes_one_access_line(
    json_http: httpx.AsyncClient, settings: Settings, session: AsyncSession
) -> None:
    user = await make_user(session)
    client = GraphQLClient(json_http, settings).as_user(user.id)
    with captured_log() as log:
        response = await client.execute(
            "query ViewerEmail { viewer { email } }", headers={"X-Request-ID": "client-req.42"}
        )
    assert response.ok() == {"viewer": {"email": user.email}}
    (line,) = log.access()
    assert line["request_id"] == "client-req.42"
    assert line["operation_type"] == "query"
    assert line["operation_name"] == "ViewerEmail"
    assert line["viewer_id"] == str(user.id)
    assert line["outcome"] == "ok"
    assert line["error_codes"] == []
    assert line["transport"] == "http"
    assert isinstance(line["duration_ms"], int | float)
    assert line["duration_ms"] >= 0
    assert line["level"] == "INFO"


async def test_access_lines_carry_outcome_and_error_codes(
    json_http: httpx.AsyncClient, settings: Settings
) -> None:
    client = GraphQLClient(json_http, settings)
    with captured_log() as log:
        await client.execute("query Mine { videos { totalCount } }")
        await client.execute("query Broken { noSuchField }")
    unauthenticated, rejected = log.access()
    assert unauthenticated["operation_name"] == "Mine"
    assert unauthenticated["outcome"] == "error"
    assert unauthenticated["error_codes"] == ["UNAUTHENTICATED"]
    assert unauthenticated["viewer_id"] is None
    assert rejected["outcome"] == "rejected"
    assert rejected["error_codes"] == ["BAD_USER_INPUT"]


async def test_variables_are_never_logged(json_http: httpx.AsyncClient, settings: Settings) -> None:
    marker = "a-value-only-the-variables-hold"
    with captured_log() as log:
        await GraphQLClient(json_http, settings).execute(
            "query Search($s: String) { videos(filter: {search: $s}) { totalCount } }",
            {"s": marker},
        )
    assert log.access()
    assert marker not in log.text


# --- request ids ------------------------------------------------------------------------------


async def test_a_plain_request_id_is_kept_returned_and_logged(json_http: httpx.AsyncClient) -> None:
    offered = "Trace-7f3a.b2:c_9"
    with captured_log() as log:
        response = await json_http.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"X-Request-ID": offered}
        )
    assert response.headers["x-request-id"] == offered
    assert [line["request_id"] for line in log.access()] == [offered]


@pytest.mark.parametrize(
    "offered", ["x" * 129, "two words", "line\nbreak", "naïve", 'quote"d', "a/b", "{json}"]
)
async def test_an_unusable_request_id_is_replaced_everywhere(
    json_http: httpx.AsyncClient, offered: str
) -> None:
    with captured_log() as log:
        response = await json_http.post(
            "/graphql",
            json={"query": "{ __typename }"},
            headers=[(b"X-Request-ID", offered.encode())],
        )
    returned = response.headers["x-request-id"]
    assert returned != offered
    assert [line["request_id"] for line in log.access()] == [returned]
    assert offered not in log.text


def test_a_request_id_must_be_plain_to_the_end() -> None:
    assert new_request_id("abc-1") == "abc-1"
    for offered in ("abc-1\n", "abc-1\r\nSet-Cookie: x", "", "x" * 129):
        assert new_request_id(offered) != offered
    assert new_request_id("x" * 128) == "x" * 128


# --- no secrets -------------------------------------------------------------------------------


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    with running_issuer() as issuer:
        yield issuer


async def test_signing_in_and_using_the_token_logs_no_token(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], issuer: LocalIssuer
) -> None:
    configured = json_settings(settings, oauth_providers={"local": issuer.provider_config()})
    id_token = issuer.token()
    forged = issuer.token(key=issuer.add_key("EC", publish=False))
    with restored_root_logger():
        app = create_app(configured, sessionmaker=sessionmaker)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://studio.test") as c:
                client = GraphQLClient(c, configured)
                with captured_log() as log:
                    signed_in = await client.execute(
                        SIGN_IN, {"input": {"provider": "local", "idToken": id_token}}
                    )
                    access_token = signed_in.ok()["signIn"]["accessToken"]
                    refused = await client.execute(
                        SIGN_IN, {"input": {"provider": "local", "idToken": forged}}
                    )
                    assert refused.codes == ["UNAUTHENTICATED"]
                    client.token = access_token
                    (await client.execute("query Me { viewer { email } }")).ok()
                    # A bearer token that is not valid is not logged either.
                    bad = GraphQLClient(c, configured, token=access_token[:-4] + "AAAA")
                    await bad.execute("{ viewer { email } }")
                    await c.get("/metrics", headers={"Authorization": f"Bearer {access_token}"})

    lines = log.access()
    assert [line["operation_name"] for line in lines] == ["SignIn", "SignIn", "Me", None]
    assert lines[0]["viewer_id"] is not None  # signed in by the operation itself
    assert lines[1]["viewer_id"] is None
    for secret in (id_token, forged, access_token, configured.secret_key):
        for part in {secret, *secret.split(".")}:
            if len(part) >= 16:
                assert part not in log.text, "a token or secret reached the log"


def test_a_token_inside_a_message_or_traceback_is_redacted(
    settings: Settings, issuer: LocalIssuer
) -> None:
    token = issuer.token()
    with restored_root_logger():
        create_app(json_settings(settings))  # configures logging
        with captured_log() as log:
            logger = logging.getLogger("studio.test")
            logger.warning("refused %s with Authorization: Bearer opaque-value-123", token)
            try:
                raise ValueError(f"cannot decode {token} (key {settings.secret_key})")
            except ValueError:
                logger.exception("failed", extra={"detail": f"token was {token}"})
    assert token not in log.text
    assert settings.secret_key not in log.text
    assert "opaque-value-123" not in log.text
    warning, failure = log.entries
    assert warning["message"] == f"refused {REDACTED} with Authorization: Bearer {REDACTED}"
    assert REDACTED in failure["exception"]
    assert failure["detail"] == f"token was {REDACTED}"


# --- uvicorn's own access lines ---------------------------------------------------------------


@contextmanager
def serve_with_access_log(app: Any) -> Iterator[str]:
    """uvicorn as `studio serve` runs it: no logging config of its own, access lines on."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=True))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


async def test_uvicorn_access_lines_leave_out_query_strings(
    settings: Settings, issuer: LocalIssuer
) -> None:
    token = issuer.token()
    with restored_root_logger():
        app = create_app(json_settings(settings))
        with captured_log() as log, serve_with_access_log(app) as base_url:
            async with httpx.AsyncClient(base_url=base_url) as http:
                params = {"query": "{ __typename }", "variables": json.dumps({"idToken": token})}
                assert (await http.get("/graphql", params=params)).status_code == 200
                media = await http.get("/media/voice-samples/a.wav?expires=1&sig=media-signature")
                assert media.status_code == 403
    access = [e for e in log.entries if e["logger"] == "uvicorn.access"]
    assert len(access) == 2, log.text
    assert '"GET /graphql?… HTTP/1.1" 200' in access[0]["message"]
    assert token not in log.text
    assert "media-signature" not in log.text

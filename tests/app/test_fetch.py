"""Fetching the page behind a URL video (app/pipeline/fetch.py, app/pipeline/extract.py).

Pages come from a small site on 127.0.0.1, reachable only because the tests allow that host
(``STUDIO_FETCH_ALLOWED_HOSTS``). Every other address is refused before a connection is made:
the `connections` guard fails a test that tries one, and names resolve only through a fake
resolver, so nothing here touches the network beyond 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from pathlib import Path

import pytest

from app.pipeline import fetch
from app.pipeline.extract import read_page
from app.pipeline.fetch import FetchError, address_problem, fetch_page
from app.settings import Settings, load_settings
from tests.support.pages import (
    ARTICLE_PARAGRAPHS,
    ARTICLE_TITLE,
    PLAIN_TEXT,
    ConnectionLog,
    fake_resolver,
    make_tls_files,
    serve_tls,
    site_app,
)

MAX_BYTES = 100_000
TIMEOUT = 0.5
NAMES = {
    "internal.example": ["10.1.2.3"],
    "mixed.example": ["93.184.216.34", "10.9.8.7"],
    "pages.test": ["127.0.0.1"],
}


@pytest.fixture
def port(site: str) -> int:
    return int(site.rsplit(":", 1)[1])


@pytest.fixture(autouse=True)
def connections(monkeypatch: pytest.MonkeyPatch) -> ConnectionLog:
    log = ConnectionLog()
    original = asyncio.base_events.BaseEventLoop.create_connection
    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "create_connection", log.wrap(original))
    return log


@pytest.fixture(autouse=True)
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr(fetch, "resolve_host", fake_resolver(NAMES, calls))
    return calls


def _settings(*allowed: str) -> Settings:
    return load_settings(
        fetch_allowed_hosts=list(allowed),
        fetch_timeout_seconds=TIMEOUT,
        fetch_max_bytes=MAX_BYTES,
    )


async def _refused(url: str, settings: Settings | None = None) -> str:
    with pytest.raises(FetchError) as refused:
        await fetch_page(url, settings=settings or _settings())
    return refused.value.user_message


# --- pages that are read ------------------------------------------------------------------


async def test_an_article_becomes_its_title_and_main_text(site: str) -> None:
    page = await read_page(f"{site}/article", settings=_settings("127.0.0.1"))
    assert page.title == ARTICLE_TITLE
    assert page.text.split("\n\n") == ARTICLE_PARAGRAPHS  # no menu, footer, script or heading
    assert page.url == f"{site}/article"


async def test_a_plain_text_page_is_used_as_it_is(site: str) -> None:
    page = await read_page(f"{site}/plain", settings=_settings("127.0.0.1"))
    assert page.title is None
    assert page.text == PLAIN_TEXT.strip()


async def test_the_declared_charset_decodes_the_page(site: str) -> None:
    fetched = await fetch_page(f"{site}/latin1", settings=_settings("127.0.0.1"))
    assert fetched.charset == "iso-8859-1"
    page = await read_page(f"{site}/latin1", settings=_settings("127.0.0.1"))
    assert page.text == "Café crème, s'il vous plaît."


async def test_a_gzip_body_is_inflated_even_unasked(site: str) -> None:
    page = await read_page(f"{site}/gzip", settings=_settings("127.0.0.1"))
    assert page.text.split("\n\n") == ARTICLE_PARAGRAPHS


async def test_redirects_are_followed_up_to_five(site: str) -> None:
    fetched = await fetch_page(f"{site}/redirect/5", settings=_settings("127.0.0.1"))
    assert fetched.final_url == f"{site}/article"
    assert fetched.content_type == "text/html"


async def test_a_page_with_no_text_is_refused_readably(site: str) -> None:
    with pytest.raises(FetchError, match=r"^The page has no readable text\.$"):
        await read_page(f"{site}/no-text", settings=_settings("127.0.0.1"))


async def test_the_connection_goes_to_the_checked_address_with_the_host_name(
    site: str, port: int, connections: ConnectionLog, lookups: list[str]
) -> None:
    page = await read_page(f"http://pages.test:{port}/echo-host", settings=_settings("pages.test"))
    assert page.text == f"Asked for pages.test:{port}."
    assert lookups == ["pages.test"]  # resolved once; the connection used that answer
    assert connections.attempts == [("127.0.0.1", port)]


async def test_https_verifies_the_host_name_on_the_checked_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, connections: ConnectionLog
) -> None:
    # The certificate names only pages.test: the connection goes to 127.0.0.1 (the checked
    # address) while TLS sends and verifies the host name.
    tls = make_tls_files(tmp_path, "pages.test")
    allowed = _settings("pages.test")
    with serve_tls(site_app(), tls) as tls_port:
        url = f"https://pages.test:{tls_port}/article"
        message = await _refused(url, allowed)  # the test CA is not trusted by default
        assert message.startswith("Could not connect to pages.test securely: ")
        trusting = ssl.create_default_context(cadata=tls.ca_pem)
        monkeypatch.setattr(fetch, "_ssl_context", lambda: trusting)
        page = await read_page(url, settings=allowed)
    assert page.title == ARTICLE_TITLE
    assert connections.attempts == [("127.0.0.1", tls_port)] * 2


# --- refused before any connection ------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:{port}/article", "The address 127.0.0.1 is not allowed (loopback)."),
        ("http://10.0.0.1/", "The address 10.0.0.1 is not allowed (private network)."),
        (
            "http://169.254.169.254/latest/meta-data/",
            "The address 169.254.169.254 is not allowed (link-local).",
        ),
        ("http://[::1]:{port}/article", "The address ::1 is not allowed (loopback)."),
        (
            "http://[::ffff:127.0.0.1]:{port}/article",
            "The address ::ffff:127.0.0.1 is not allowed (loopback).",
        ),
        (
            "https://internal.example/wiki",
            "The address internal.example (10.1.2.3) is not allowed (private network).",
        ),
        (
            "https://mixed.example/",
            "The address mixed.example (10.9.8.7) is not allowed (private network).",
        ),
        ("http://100.64.1.1/", "The address 100.64.1.1 is not allowed (shared address space)."),
        ("http://0.0.0.0:{port}/", "The address 0.0.0.0 is not allowed (unspecified address)."),
        (
            "file:///etc/passwd",
            "Only http:// and https:// web pages can be fetched, not file:// (file:///etc/passwd).",
        ),
        (
            "gopher://127.0.0.1:{port}/_GET",
            "Only http:// and https:// web pages can be fetched, not gopher://",
        ),
        ("example.com/page", "example.com/page is not a web address: it should start with"),
        ("http:///no-host", "is not a valid web address"),
    ],
)
async def test_unsafe_addresses_are_refused_without_connecting(
    url: str, message: str, port: int, connections: ConnectionLog
) -> None:
    assert message in await _refused(url.format(port=port))
    assert connections.attempts == []


async def test_loopback_is_refused_unless_allowed_even_by_another_spelling(
    site: str, port: int, connections: ConnectionLog
) -> None:
    # Allowing 127.0.0.1 does not allow ::1 or the IPv4-mapped form of 127.0.0.1.
    allowed = _settings("127.0.0.1")
    assert "(loopback)" in await _refused(f"http://[::ffff:127.0.0.1]:{port}/article", allowed)
    assert "(loopback)" in await _refused(f"http://[::1]:{port}/article", allowed)
    assert connections.attempts == []


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("http://10.0.0.1/admin", "The address 10.0.0.1 is not allowed (private network)."),
        (
            "http://169.254.169.254/latest/meta-data/",
            "The address 169.254.169.254 is not allowed (link-local).",
        ),
        (
            "http://internal.example/",
            "The address internal.example (10.1.2.3) is not allowed (private network).",
        ),
        ("http://[::ffff:10.0.0.1]/", "The address ::ffff:10.0.0.1 is not allowed (private"),
        ("file:///etc/passwd", "Only http:// and https:// web pages can be fetched, not file://"),
    ],
)
async def test_a_redirect_to_a_refused_address_is_refused(
    site: str, port: int, location: str, message: str, connections: ConnectionLog
) -> None:
    url = f"{site}/to?location={location}"
    assert (await _refused(url, _settings("127.0.0.1"))).startswith(message)
    assert connections.attempts == [("127.0.0.1", port)]  # the allowed site, and nothing else


async def test_too_many_redirects_are_refused(site: str, port: int) -> None:
    message = await _refused(f"{site}/redirect/6", _settings("127.0.0.1"))
    assert message.startswith("Too many redirects (more than 5)")


# --- limits -----------------------------------------------------------------------------------


async def test_a_body_announced_over_the_limit_is_refused_unread(site: str) -> None:
    message = await _refused(f"{site}/huge-announced", _settings("127.0.0.1"))
    assert message == "The page is larger than 0.1 MB."


async def test_a_streamed_body_is_cut_off_at_the_limit(site: str) -> None:
    started = time.monotonic()
    message = await _refused(f"{site}/huge-streamed", _settings("127.0.0.1"))
    assert message == "The page is larger than 0.1 MB."
    assert time.monotonic() - started < TIMEOUT  # stopped reading, did not wait for the rest


async def test_a_compressed_body_is_not_inflated_past_the_limit(site: str) -> None:
    message = await _refused(f"{site}/gzip-bomb", _settings("127.0.0.1"))
    assert message == "The page is larger than 0.1 MB."


async def test_a_slow_server_is_given_up_on(site: str) -> None:
    started = time.monotonic()
    message = await _refused(f"{site}/slow", _settings("127.0.0.1"))
    assert message == "The page took too long to answer (more than 0.5 seconds)."
    assert time.monotonic() - started < TIMEOUT + 0.5


async def test_only_web_pages_are_read(site: str) -> None:
    message = await _refused(f"{site}/image.png", _settings("127.0.0.1"))
    assert message == f"{site}/image.png is not a web page (image/png)."


async def test_an_error_status_is_reported(site: str) -> None:
    message = await _refused(f"{site}/missing", _settings("127.0.0.1"))
    assert message == "The page could not be fetched: 127.0.0.1 answered 404 Not Found."


async def test_an_unknown_host_and_a_closed_port_are_reported(site: str, port: int) -> None:
    assert await _refused("http://nowhere.invalid/") == (
        "Could not connect to nowhere.invalid: no such host was found."
    )
    with socket.socket() as sock:  # a port that was just bound and is closed now
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    message = await _refused(f"http://127.0.0.1:{closed_port}/", _settings("127.0.0.1"))
    assert message == "Could not connect to 127.0.0.1."


# --- the address check ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("127.0.0.1", "loopback"),
        ("10.255.0.1", "private network"),
        ("172.16.5.4", "private network"),
        ("192.168.1.1", "private network"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "shared address space"),
        ("0.0.0.0", "unspecified address"),
        ("224.0.0.251", "multicast"),
        ("240.0.0.1", "reserved address"),
        ("255.255.255.255", "reserved address"),
        ("192.0.2.10", "private network"),  # documentation range
        ("::", "unspecified address"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private network"),
        ("fd12:3456::1", "private network"),
        ("fec0::1", "private network"),  # site-local
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:169.254.169.254", "link-local"),
        ("::127.0.0.1", "loopback"),  # IPv4-compatible
        ("::8.8.8.8", "reserved address"),  # IPv4-compatible addresses are obsolete
        ("64:ff9b::10.0.0.1", "private network"),  # NAT64
        ("64:ff9b:1::1", "private network"),  # local-use NAT64
        ("2002:7f00:1::1", "loopback"),  # 6to4 of 127.0.0.1
        ("2002:c0a8:101::1", "private network"),  # 6to4 of 192.168.1.1
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "private network"),  # Teredo
        ("2001:db8::1", "private network"),  # documentation range
    ],
)
def test_non_public_addresses_are_refused(address: str, problem: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) == problem


@pytest.mark.parametrize(
    "address",
    ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is None

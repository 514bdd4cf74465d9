"""Fetching the web page behind a URL video, safely (SPEC §5 Fetching URLs).

A URL typed by a user is fetched by the server, from inside its network, so it must not become a
way to reach what only the server can reach (a metadata service, a database, an admin page on
localhost). `fetch_page` therefore:

* accepts only ``http`` and ``https`` URLs;
* resolves the host itself and refuses it if *any* of its addresses is not a public unicast
  address (`address_problem`): loopback, private networks, link-local (169.254.169.254, the cloud
  metadata service), shared address space (100.64.0.0/10), multicast, reserved, unspecified, and
  the same inside IPv6 (IPv4-mapped and -compatible addresses, NAT64, 6to4 and Teredo are judged by
  the IPv4 address they carry);
* connects to an address it checked, never resolving the name a second time (a DNS answer that
  changes between the check and the connection cannot slip through): the connection goes to the
  checked IP while the request keeps the host name in its ``Host`` header and, for https, in TLS
  (SNI and certificate verification);
* follows at most `MAX_REDIRECTS` redirects itself, each checked like the first URL;
* gives up after ``STUDIO_FETCH_TIMEOUT_SECONDS`` in total (resolving, connecting, redirects and
  reading together; each single connect or read is bounded by the same time) and once the body
  passes ``STUDIO_FETCH_MAX_BYTES`` (before reading it all when the server announces its length);
* accepts only HTML (``text/html``, ``application/xhtml+xml``) and plain text.

`fetch_image` fetches a picture of that page the same way (every rule above: addresses,
redirects, time, size), accepting only JPEG, PNG, WebP and GIF by their content type; what the
bytes really are is for its caller to check (`app.pipeline.pictures`).

``STUDIO_FETCH_ALLOWED_HOSTS`` names hosts (names or IP addresses, matched against the URL's
host as written) that may resolve to otherwise refused addresses: an intranet wiki, or the
tests' pages on 127.0.0.1. Without it, loopback is refused like every other private address.

Every refusal or failure is a `FetchError` whose ``user_message`` says what went wrong in words
a person understands; the SCRIPT stage turns it into the job's error.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
import zlib
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from http import HTTPStatus

import httpcore
import httpx

from app.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: Content types that hold a readable page.
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
TEXT_TYPES = frozenset({"text/plain"})
#: Content types that may hold a picture for a video's scenes.
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})
USER_AGENT = "StudioAPI/0.1 (page fetcher for video scripts)"

_SHARED_ADDRESS_SPACE = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)


class FetchError(Exception):
    """A page could not be fetched or was refused; ``user_message`` says why, readably."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


@dataclass(frozen=True)
class FetchedPage:
    url: str  # as asked for
    final_url: str  # after redirects
    content_type: str  # "text/html", "application/xhtml+xml" or "text/plain"
    text: str  # the body, decoded
    charset: str  # the encoding the body was decoded with

    @property
    def is_html(self) -> bool:
        return self.content_type in HTML_TYPES


@dataclass(frozen=True)
class FetchedImage:
    url: str  # as asked for
    final_url: str  # after redirects
    content_type: str  # one of `IMAGE_TYPES`, as the server said
    body: bytes


@dataclass(frozen=True)
class _Kind:
    """What a fetch accepts: content types, the ``Accept`` header, and how to name it."""

    types: frozenset[str]
    accept: bytes
    noun: str  # "page" or "picture"


_PAGE = _Kind(
    HTML_TYPES | TEXT_TYPES, b"text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.1", "page"
)
_IMAGE = _Kind(IMAGE_TYPES, b"image/jpeg,image/png,image/webp,image/gif;q=0.9", "picture")


# --- checking addresses -----------------------------------------------------------------------


def address_problem(address: IPAddress) -> str | None:
    """Why a connection to ``address`` is refused (``"loopback"``, ``"private network"`` …), or
    ``None`` for a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            address = ipaddress.IPv6Address(address.compressed.partition("%")[0])
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            problem = address_problem(embedded)
            # An IPv4 address written as IPv6 (mapped, or through a NAT64 gateway) is that IPv4
            # address; the other embeddings are judged on their IPv6 address as well.
            if problem is not None or address.ipv4_mapped is not None or address in _NAT64:
                return problem
        if address in _NAT64_LOCAL or address.is_site_local:
            return "private network"
    checks: Sequence[tuple[bool, str]] = (
        (address.is_unspecified, "unspecified address"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (address in _SHARED_ADDRESS_SPACE, "shared address space"),
        (address.is_reserved, "reserved address"),
        (address.is_private, "private network"),
        (not address.is_global, "not a public address"),
    )
    return next((reason for refused, reason in checks if refused), None)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client; the server part is checked as an IPv6 address
    return None


def parse_address(text: str) -> IPAddress | None:
    """``text`` as an IP address (brackets and an IPv6 zone allowed), or ``None``."""
    text = text.strip().removeprefix("[").removesuffix("]")
    try:
        return ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to, in the resolver's order (the one lookup per URL)."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    addresses: list[IPAddress] = []
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            address = parse_address(str(sockaddr[0]))
            if address is not None and address not in addresses:
                addresses.append(address)
    return addresses


@dataclass(frozen=True)
class _Target:
    """One checked request: the URL and the addresses it may connect to."""

    url: httpx.URL
    host: str  # as in the URL (IDNA-encoded; IPv6 without brackets)
    port: int
    addresses: tuple[IPAddress, ...]


def _normalise_host(host: str) -> str:
    host = host.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")
    address = parse_address(host)
    return address.compressed if address is not None else host


def _parse_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError, ValueError):
        raise FetchError(f"{_shorten(url)} is not a valid web address.") from None
    if not parsed.scheme:
        raise FetchError(
            f"{_shorten(url)} is not a web address: it should start with http:// or https://."
        )
    if parsed.scheme not in ("http", "https"):
        raise FetchError(
            f"Only http:// and https:// web pages can be fetched, "
            f"not {parsed.scheme}:// ({_shorten(url)})."
        )
    if not parsed.host:
        raise FetchError(f"{_shorten(url)} is not a valid web address (it has no host).")
    return parsed


async def _check(url: httpx.URL, allowed_hosts: frozenset[str]) -> _Target:
    """Resolve ``url``'s host once and refuse it unless every address is allowed."""
    host = url.raw_host.decode("ascii")
    port = url.port or (443 if url.scheme == "https" else 80)
    literal = parse_address(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = await resolve_host(host, port)
        except (socket.gaierror, UnicodeError):
            raise FetchError(f"Could not connect to {host}: no such host was found.") from None
        if not addresses:
            raise FetchError(f"Could not connect to {host}: it has no usable address.")
    if _normalise_host(host) not in allowed_hosts:
        for address in addresses:
            problem = address_problem(address)
            if problem is not None:
                shown = host if literal is not None else f"{host} ({address.compressed})"
                raise FetchError(f"The address {shown} is not allowed ({problem}).")
    return _Target(url=url, host=host, port=port, addresses=tuple(addresses))


# --- connecting to the checked address -----------------------------------------------------


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects to the checked addresses of one host, whatever the resolver would say now."""

    def __init__(self, target: _Target) -> None:
        self._target = target
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if (host, port) != (self._target.host, self._target.port):  # never happens: one pool
            raise httpcore.ConnectError(f"refusing to connect to unchecked host {host}:{port}")
        error: Exception | None = None
        for address in self._target.addresses:
            try:
                return await self._backend.connect_tcp(
                    address.compressed,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not fetched")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


@cache
def _ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


@asynccontextmanager
async def _request(
    target: _Target, seconds: float, accept: bytes
) -> AsyncIterator[httpcore.Response]:
    """One GET of ``target`` through a connection to its checked addresses; each connect, read
    and write may take ``seconds``."""
    url = target.url
    headers = [
        (b"Host", url.netloc),
        (b"User-Agent", USER_AGENT.encode()),
        (b"Accept", accept),
        (b"Accept-Encoding", b"identity"),
    ]
    request_url = httpcore.URL(
        scheme=url.raw_scheme, host=url.raw_host, port=target.port, target=url.raw_path
    )
    extensions = {"timeout": dict.fromkeys(("connect", "read", "write", "pool"), seconds)}
    pool = httpcore.AsyncConnectionPool(
        ssl_context=_ssl_context(),
        max_connections=1,
        retries=0,
        network_backend=_PinnedBackend(target),
    )
    async with (
        pool,
        pool.stream("GET", request_url, headers=headers, extensions=extensions) as response,
    ):
        yield response


# --- fetching -------------------------------------------------------------------------------


async def fetch_page(url: str, *, settings: Settings) -> FetchedPage:
    """The page at ``url``, fetched as the module docstring describes; `FetchError` otherwise."""
    final_url, content_type, charset, body = await _timed(
        url, settings, _PAGE, settings.fetch_max_bytes
    )
    text, charset = _decode(body, charset, html=content_type in HTML_TYPES)
    return FetchedPage(
        url=url, final_url=final_url, content_type=content_type, text=text, charset=charset
    )


async def fetch_image(url: str, *, settings: Settings, max_bytes: int) -> FetchedImage:
    """The picture at ``url``, fetched as safely as a page (the same addresses, redirects and
    time limit) but at most ``max_bytes`` long; `FetchError` otherwise."""
    final_url, content_type, _, body = await _timed(url, settings, _IMAGE, max_bytes)
    return FetchedImage(url=url, final_url=final_url, content_type=content_type, body=body)


async def _timed(
    url: str, settings: Settings, kind: _Kind, max_bytes: int
) -> tuple[str, str, str | None, bytes]:
    seconds = settings.fetch_timeout_seconds
    try:
        async with asyncio.timeout(seconds):
            return await _fetch(url, settings, kind, max_bytes)
    except (TimeoutError, httpcore.TimeoutException):
        raise FetchError(
            f"The {kind.noun} took too long to answer (more than {seconds:g} seconds)."
        ) from None


async def _fetch(
    url: str, settings: Settings, kind: _Kind, max_bytes: int
) -> tuple[str, str, str | None, bytes]:
    """The final URL, content type, declared charset and body of what ``url`` leads to."""
    allowed = frozenset(_normalise_host(host) for host in settings.fetch_allowed_hosts)
    current = _parse_url(url)
    for _ in range(MAX_REDIRECTS + 1):
        target = await _check(current, allowed)
        try:
            async with _request(target, settings.fetch_timeout_seconds, kind.accept) as response:
                if response.status in REDIRECT_STATUSES:
                    current = _redirect(current, response)
                    continue
                if not 200 <= response.status < 300:
                    raise FetchError(
                        f"The {kind.noun} could not be fetched: {target.host} answered "
                        f"{_status_text(response.status)}."
                    )
                content_type, charset = _content_type(response, current, kind)
                body = await _read_body(response, max_bytes, kind)
        except httpcore.ConnectError as exc:
            raise FetchError(_connect_failure(target.host, exc)) from None
        except (httpcore.NetworkError, httpcore.ProtocolError):
            raise FetchError(
                f"The connection to {target.host} failed before the {kind.noun} was complete."
            ) from None
        return str(current), content_type, charset, body
    raise FetchError(f"Too many redirects (more than {MAX_REDIRECTS}) starting at {_shorten(url)}.")


def _redirect(current: httpx.URL, response: httpcore.Response) -> httpx.URL:
    location = _header(response, b"location")
    if not location:
        raise FetchError(
            f"The page could not be fetched: {current.host} answered "
            f"{_status_text(response.status)} without saying where to."
        )
    try:
        joined = current.join(location.strip())
    except (httpx.InvalidURL, ValueError):
        raise FetchError(
            f"The page redirects to an invalid address ({_shorten(location)})."
        ) from None
    return _parse_url(str(joined))


def _content_type(
    response: httpcore.Response, url: httpx.URL, kind: _Kind
) -> tuple[str, str | None]:
    header = _header(response, b"content-type") or ""
    media_type, _, params = header.partition(";")
    media_type = media_type.strip().lower()
    if media_type not in kind.types:
        shown = media_type or "no content type"
        what = "web page" if kind is _PAGE else "picture"
        raise FetchError(f"{_shorten(str(url))} is not a {what} ({shown}).")
    match = re.search(r"""charset\s*=\s*["']?([^"';\s]+)""", params, re.I)
    return media_type, match.group(1) if match else None


async def _read_body(response: httpcore.Response, max_bytes: int, kind: _Kind) -> bytes:
    too_large = FetchError(f"The {kind.noun} is larger than {_megabytes(max_bytes)}.")
    length = _header(response, b"content-length")
    if length is not None and length.strip().isdigit() and int(length) > max_bytes:
        raise too_large
    encoding = (_header(response, b"content-encoding") or "identity").strip().lower()
    decoder = _Decompressor(encoding, max_bytes, kind.noun)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_stream():
        data = decoder.feed(chunk)
        size += len(data)
        if size > max_bytes or decoder.overflowed:
            raise too_large
        chunks.append(data)
    tail = decoder.flush()
    if size + len(tail) > max_bytes or decoder.overflowed:
        raise too_large
    return b"".join([*chunks, tail])


class _Decompressor:
    """Undoes a gzip/deflate ``Content-Encoding`` (sent although ``identity`` was asked for)
    without ever inflating more than the size limit allows."""

    def __init__(self, encoding: str, max_bytes: int, noun: str = "page") -> None:
        self.overflowed = False
        self._limit = max_bytes + 1
        self._inflated = 0
        if encoding in ("identity", ""):
            self._zlib = None
        elif encoding in ("gzip", "x-gzip", "deflate"):
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib, by header
        else:
            raise FetchError(
                f"The {noun} is compressed in a way that is not supported ({encoding})."
            )

    def feed(self, chunk: bytes) -> bytes:
        if self._zlib is None:
            return chunk
        try:
            data = self._zlib.decompress(chunk, max(1, self._limit - self._inflated))
        except zlib.error:
            raise FetchError("The page's compressed content is damaged.") from None
        self._inflated += len(data)
        if self._zlib.unconsumed_tail:  # more would come out than the limit allows
            self.overflowed = True
        return data

    def flush(self) -> bytes:
        return b"" if self._zlib is None else self._zlib.flush()


def _decode(body: bytes, declared: str | None, *, html: bool) -> tuple[str, str]:
    """The body as text: the declared charset, a byte-order mark, an HTML ``<meta charset>``,
    UTF-8, then Windows-1252 (which decodes any byte), in that order."""
    candidates: list[str] = []
    if body.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        candidates.append("utf-8-sig" if body.startswith(b"\xef\xbb\xbf") else "utf-16")
    if declared:
        candidates.append(declared)
    if html and (meta := _META_CHARSET.search(body[:4096])):
        candidates.append(meta.group(1).decode("ascii"))
    for charset in [*candidates, "utf-8"]:
        try:
            return body.decode(charset), charset.lower()
        except (LookupError, UnicodeDecodeError):
            continue
    return body.decode("windows-1252", errors="replace"), "windows-1252"


# --- messages ---------------------------------------------------------------------------------


def _header(response: httpcore.Response, name: bytes) -> str | None:
    for key, value in response.headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _status_text(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _connect_failure(host: str, error: httpcore.ConnectError) -> str:
    cause: BaseException | None = error
    for _ in range(10):  # the chain of causes, not far: it is never long
        if cause is None:
            break
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"Could not connect to {host} securely: {cause.verify_message}."
        if isinstance(cause, ssl.SSLError):
            return f"Could not connect to {host} securely."
        cause = cause.__cause__ or cause.__context__
    return f"Could not connect to {host}."


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:g} MB"


def _shorten(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else f"{text[: limit - 1]}…"

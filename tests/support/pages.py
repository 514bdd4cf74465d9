"""A small web site on 127.0.0.1 for the page-fetching tests, and guards that keep those tests
from reaching anything else.

`site_app` serves an article, a long article with headings (`tests.support.articles`), plain
text, an image, redirects (chains, and to any address a test names), an oversized body
(announced or streamed), a slow answer, gzip bodies and the ``Host`` header it was asked for.
Serve it with `tests.support.browser.serve`, or over https with `serve_tls` and a certificate
from `make_tls_files`.

`ConnectionLog` records every TCP connection the test's event loop opens and refuses any to an
address other than 127.0.0.1 or ::1 before it is made, so a refusal the fetcher forgot would fail
the test instead of reaching the network. `fake_resolver` stands in for DNS: names resolve only
to what the test says, and nothing is ever looked up for real.
"""

from __future__ import annotations

import asyncio
import datetime
import gzip
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from app.pipeline.fetch import IPAddress, parse_address
from tests.support.articles import long_article_html

ARTICLE_TITLE = "How solar panels work"
ARTICLE_PARAGRAPHS = [
    "Sunlight knocks electrons loose in a thin layer of silicon. Because the layer is doped on "
    "both sides, the loose electrons can only flow one way, and that flow is a current.",
    "An inverter turns the panel's direct current into the alternating current a house uses. "
    "Most inverters also track the point at which the panel gives the most power.",
    "Panels facing south and tilted at the latitude's angle collect the most light over a year; "
    "panels facing east or west collect less, but spread it more evenly across the day.",
]
ARTICLE = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{ARTICLE_TITLE} | Example Energy</title>
  <script>window.analytics = {{track() {{}}}};</script>
  <style>body {{ font-family: serif; }}</style>
</head>
<body>
  <nav><a href="/">Home</a> <a href="/shop">Shop</a> <a href="/about">About us</a></nav>
  <article>
    <h1>{ARTICLE_TITLE}</h1>
    {"".join(f"<p>{paragraph}</p>" for paragraph in ARTICLE_PARAGRAPHS)}
  </article>
  <footer>Copyright 2025 Example Energy. All rights reserved. Cookie settings.</footer>
</body>
</html>
"""
PLAIN_TEXT = "Tides.\n\nThe moon pulls the sea towards it. The sea rises and falls twice a day.\n"
CHUNK = b"<p>" + b"x" * 16_381 + b"</p>"  # 16 KiB of HTML


async def article(request: Request) -> Response:
    return Response(ARTICLE, media_type="text/html")


async def long_article(request: Request) -> Response:
    return Response(long_article_html(), media_type="text/html")


async def plain(request: Request) -> Response:
    return PlainTextResponse(PLAIN_TEXT)


async def image(request: Request) -> Response:
    return Response(b"\x89PNG\r\n\x1a\n" + bytes(64), media_type="image/png")


async def no_text(request: Request) -> Response:
    return Response(
        "<html><head><title></title><script>render()</script></head><body>  </body></html>",
        media_type="text/html",
    )


async def latin1(request: Request) -> Response:
    body = "<html><body><p>Café crème, s'il vous plaît.</p></body></html>".encode("latin-1")
    return Response(body, headers={"Content-Type": "text/html; charset=ISO-8859-1"})


async def missing(request: Request) -> Response:
    return PlainTextResponse("gone", status_code=404)


async def redirect_chain(request: Request) -> Response:
    """``/redirect/N``: N redirects, then the article."""
    remaining = int(request.path_params["count"])
    target = f"/redirect/{remaining - 1}" if remaining > 1 else "/article"
    return RedirectResponse(target, status_code=302)


async def redirect_to(request: Request) -> Response:
    """``/to?location=…``: a redirect to wherever the test says."""
    return RedirectResponse(request.query_params["location"], status_code=302)


async def huge_announced(request: Request) -> Response:
    """A body whose Content-Length alone is over the tests' limit."""
    return Response(CHUNK * 16, media_type="text/html")


async def huge_streamed(request: Request) -> Response:
    """A body with no length that goes on far past the limit (until the client hangs up)."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10_000):
            yield CHUNK

    return StreamingResponse(chunks(), media_type="text/html")


async def slow(request: Request) -> Response:
    """Answers after two seconds, or stops waiting once the client has given up."""
    for _ in range(40):
        if await request.is_disconnected():
            break
        await asyncio.sleep(0.05)
    return Response(ARTICLE, media_type="text/html")


async def gzipped(request: Request) -> Response:
    """The article gzip-compressed although the client asked for ``identity``."""
    return Response(
        gzip.compress(ARTICLE.encode()),
        headers={"Content-Type": "text/html", "Content-Encoding": "gzip"},
    )


async def gzip_bomb(request: Request) -> Response:
    """A few kilobytes that inflate to 16 MB."""
    return Response(
        gzip.compress(b"<p>" + b" " * 16_000_000 + b"</p>"),
        headers={"Content-Type": "text/html", "Content-Encoding": "gzip"},
    )


async def echo_host(request: Request) -> Response:
    host = request.headers.get("host", "")
    return Response(
        f"<html><head><title>Host</title></head><body><p>Asked for {host}.</p></body></html>",
        media_type="text/html",
    )


def site_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/article", article),
            Route("/long-article", long_article),
            Route("/plain", plain),
            Route("/image.png", image),
            Route("/no-text", no_text),
            Route("/latin1", latin1),
            Route("/missing", missing),
            Route("/redirect/{count:int}", redirect_chain),
            Route("/to", redirect_to),
            Route("/huge-announced", huge_announced),
            Route("/huge-streamed", huge_streamed),
            Route("/slow", slow),
            Route("/gzip", gzipped),
            Route("/gzip-bomb", gzip_bomb),
            Route("/echo-host", echo_host),
        ]
    )


# --- https ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    ca_pem: str  # the test CA's certificate, for an ssl.SSLContext that trusts it
    certfile: Path  # the server's certificate, for `server_name` only (no IP address)
    keyfile: Path


def make_tls_files(folder: Path, server_name: str) -> TlsFiles:
    """A throwaway CA and a server certificate for ``server_name``, written into ``folder``."""
    now = datetime.datetime.now(datetime.UTC)

    def certificate(
        subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, signer: Any, *, ca: bool
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Studio API test pages CA")])
    ca = certificate("Studio API test pages CA", ca_key, ca_name, ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = certificate(server_name, server_key, ca_name, ca_key, ca=False)
    certfile, keyfile = folder / "server.pem", folder / "server.key"
    certfile.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ca_pem = ca.public_bytes(serialization.Encoding.PEM).decode()
    return TlsFiles(ca_pem=ca_pem, certfile=certfile, keyfile=keyfile)


@contextmanager
def serve_tls(app: ASGIApp, tls: TlsFiles) -> Iterator[int]:
    """Serve ``app`` over https on a free port of 127.0.0.1; yields the port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    config = uvicorn.Config(
        app, log_level="warning", ssl_certfile=tls.certfile, ssl_keyfile=tls.keyfile
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


# --- guards -----------------------------------------------------------------------------------

LOCAL_ADDRESSES = frozenset({"127.0.0.1", "::1"})


@dataclass
class ConnectionLog:
    """Every ``(host, port)`` the event loop was asked to connect to, in order."""

    attempts: list[tuple[str, int]] = field(default_factory=list)

    def wrap(self, create_connection: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
        log = self

        async def guarded(loop: Any, protocol_factory: Any, host: Any = None, port: Any = None,
                          *args: Any, **kwargs: Any) -> Any:  # fmt: skip
            log.attempts.append((str(host), int(port or 0)))
            if str(host) not in LOCAL_ADDRESSES:
                raise AssertionError(f"the test tried to connect to {host}:{port}")
            return await create_connection(loop, protocol_factory, host, port, *args, **kwargs)

        return guarded


def fake_resolver(
    names: Mapping[str, list[str]], calls: list[str]
) -> Callable[[str, int], Awaitable[list[IPAddress]]]:
    """A stand-in for `app.pipeline.fetch.resolve_host`: ``names`` and nothing else."""

    async def resolve(host: str, port: int) -> list[IPAddress]:
        calls.append(host)
        if host not in names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [address for text in names[host] if (address := parse_address(text)) is not None]

    return resolve

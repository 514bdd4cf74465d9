"""Count SQL statements at the wire: a TCP proxy in front of PostgreSQL that reads the protocol.

The server behind it is a TCP one, or one on a Unix socket (the embedded server's
``?host=/folder&port=…``); clients reach the proxy over TCP either way.

pg_stat_statements needs ``shared_preload_libraries`` (a server restart), which a shared server
seldom has; this needs nothing. Every message a client sends to PostgreSQL is framed (a type byte,
then its length), so the proxy can tell, without changing a byte:

* ``Q`` (simple query: ``BEGIN``, ``ROLLBACK`` … one message, its text),
* ``E`` (execute a bound prepared statement: what asyncpg sends for every query, cached or not),
  named after the statement whose ``P`` (parse) it binds, so each execution has its SQL text.

A statement is one ``Q`` or one ``E``. Pool pings, ``BEGIN`` and ``ROLLBACK`` count too: they are
round trips the server serves. Connect through `CountingProxy.url` with ``sslmode=disable``
(TLS would hide the messages). The proxy runs on its own thread, so a blocking caller can use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace

from db.url import DatabaseURL

_UNTYPED_CODES = {80877103, 80877104}  # SSLRequest, GSSENCRequest: a StartupMessage follows


class CountingProxy:
    def __init__(self, upstream: DatabaseURL) -> None:
        self.upstream = upstream
        self.port = 0
        self._lock = threading.Lock()
        self._statements: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="wire-count", daemon=True)

    @property
    def url(self) -> DatabaseURL:
        """The upstream database through the proxy, without TLS."""
        url = self.upstream.url.difference_update_query(["host", "port"])
        url = url.set(host="127.0.0.1", port=self.port)
        return replace(self.upstream, url=url, ssl_mode="disable")

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def take(self) -> list[str]:
        """The statements sent since the last call (their SQL text), and forget them."""
        with self._lock:
            taken, self._statements = self._statements, []
        return taken

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port)
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        # Stopped: close the listening socket and every proxied connection, then the loop.
        server.close()
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.run_until_complete(server.wait_closed())
        self._loop.close()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await self._open_upstream()
        tasks = [
            asyncio.ensure_future(self._client_to_server(client_r, server_w)),
            asyncio.ensure_future(_pipe(server_r, client_w)),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for writer in (client_w, server_w):
                writer.close()

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        target = self.upstream.url
        if target.host:
            return await asyncio.open_connection(target.host, target.port or 5432)
        query = target.query
        folder, port = query.get("host"), query.get("port", "5432")
        if not isinstance(folder, str) or not isinstance(port, str):
            raise ValueError(f"no server to proxy in {target!r}")
        return await asyncio.open_unix_connection(f"{folder}/.s.PGSQL.{port}")

    async def _client_to_server(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        prepared: dict[str, str] = {}  # statement name -> SQL, per connection
        bound: dict[str, str] = {}  # portal name -> SQL
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:  # untyped start-up messages: length, then a code
                head = await reader.readexactly(8)
                length, code = struct.unpack("!ii", head)
                writer.write(head + await reader.readexactly(length - 8))
                if code not in _UNTYPED_CODES:
                    break
            while True:
                head = await reader.readexactly(5)
                kind, length = head[:1], struct.unpack("!i", head[1:])[0]
                payload = await reader.readexactly(length - 4)
                writer.write(head + payload)
                await writer.drain()
                self._note(kind, payload, prepared, bound)

    def _note(
        self, kind: bytes, payload: bytes, prepared: dict[str, str], bound: dict[str, str]
    ) -> None:
        if kind == b"P":
            name, sql = _cstrings(payload, 2)
            prepared[name] = sql
        elif kind == b"B":
            portal, name = _cstrings(payload, 2)
            bound[portal] = prepared.get(name, f"<statement {name!r}>")
        elif kind in (b"E", b"Q"):
            (text,) = _cstrings(payload, 1)
            sql = text if kind == b"Q" else bound.get(text, "<unknown portal>")
            with self._lock:
                self._statements.append(sql)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()


def _cstrings(payload: bytes, count: int) -> list[str]:
    parts = payload.split(b"\0", count)
    return [part.decode("utf-8", "replace") for part in parts[:count]]


@contextlib.contextmanager
def counting_proxy(upstream: DatabaseURL) -> Iterator[CountingProxy]:
    proxy = CountingProxy(upstream)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


def summarize(statements: list[str], requests: int) -> list[tuple[str, float]]:
    """Each distinct statement (its first line, shortened) and how often per request it ran."""
    counts = Counter(" ".join(sql.split())[:90] for sql in statements)
    return [(sql, count / requests) for sql, count in counts.most_common()]

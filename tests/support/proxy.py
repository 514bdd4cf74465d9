"""A TCP proxy in front of the test PostgreSQL that a test can take down and bring back.

It makes "the database is unreachable" real (connections refused, open ones cut) without
touching the shared server.
"""

from __future__ import annotations

import asyncio
import contextlib

from db.url import DatabaseURL


class FlakyProxy:
    def __init__(self, upstream: DatabaseURL) -> None:
        self.upstream = upstream
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> DatabaseURL:
        """The upstream database, reached through the proxy."""
        query = {k: v for k, v in self.upstream.url.query.items() if k not in ("host", "port")}
        return DatabaseURL(url=self.upstream.url.set(host="127.0.0.1", port=self.port, query=query))

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        """Stop listening and cut every open connection."""
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()
        self._server = None

    async def _connect_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        url = self.upstream.url
        if url.host:
            return await asyncio.open_connection(url.host, url.port or 5432)
        socket_dir, port = url.query["host"], url.query.get("port", "5432")
        return await asyncio.open_unix_connection(f"{socket_dir}/.s.PGSQL.{port}")

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await self._connect_upstream()
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._writers -= {writer, up_writer}
            for w in (writer, up_writer):
                w.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()

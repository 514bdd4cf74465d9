"""A raw GraphQL websocket client, for assertions about the protocols themselves.

It speaks whichever subprotocol it is opened with (``graphql-transport-ws`` or the legacy
``graphql-ws``) message by message: tests send exactly what a client sends and look at exactly
what comes back, close codes included. For the everyday client, see the ``gql`` tests.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"
TIMEOUT = 10.0
KEEP_ALIVES = frozenset({"ka", "ping", "pong"})


def websocket_url(base_url: str) -> str:
    """``http://host:port`` -> ``ws://host:port/graphql``."""
    return base_url.replace("http://", "ws://", 1).rstrip("/") + "/graphql"


class GraphQLWebSocket:
    def __init__(self, connection: ClientConnection, protocol: str) -> None:
        self.connection = connection
        self.protocol = protocol

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(message))

    async def send_raw(self, frame: str | bytes) -> None:
        """Send a frame as it is (text for ``str``, binary for ``bytes``), valid or not."""
        await self.connection.send(frame)

    async def receive(self, *, within: float = TIMEOUT) -> dict[str, Any]:
        """The next message other than keep-alives (``ka``, ``ping``/``pong``)."""
        while True:
            message = await self.receive_any(within=within)
            if message.get("type") not in KEEP_ALIVES:
                return message

    async def receive_any(self, *, within: float = TIMEOUT) -> dict[str, Any]:
        """The next message, keep-alives included."""
        raw = await _within(self.connection.recv(), within)
        message: dict[str, Any] = json.loads(raw)
        return message

    async def init(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send ``connection_init`` and return the server's answer (ack or error)."""
        await self.send({"type": "connection_init", "payload": payload or {}})
        return await self.receive()

    async def subscribe(
        self, operation_id: str, query: str, variables: dict[str, Any] | None = None
    ) -> None:
        kind = "subscribe" if self.protocol == TRANSPORT_WS else "start"
        payload = {"query": query, "variables": variables or {}}
        await self.send({"id": operation_id, "type": kind, "payload": payload})

    async def stop(self, operation_id: str) -> None:
        kind = "complete" if self.protocol == TRANSPORT_WS else "stop"
        await self.send({"id": operation_id, "type": kind})

    async def next_data(self, operation_id: str, *, within: float = TIMEOUT) -> dict[str, Any]:
        """The payload of the next result of ``operation_id`` (``next`` or legacy ``data``)."""
        message = await self.receive(within=within)
        assert message.get("id") == operation_id, message
        assert message["type"] in ("next", "data"), message
        payload: dict[str, Any] = message["payload"]
        return payload

    async def closed(self, *, within: float = TIMEOUT) -> tuple[int | None, str]:
        """Wait (``within`` seconds in all, keep-alives or not) for the server to close the
        connection; its close code and reason."""
        try:
            async with asyncio.timeout(within):
                while True:
                    await self.connection.recv()
        except ConnectionClosed as closed:
            if closed.rcvd is None:
                return None, ""
            return closed.rcvd.code, closed.rcvd.reason


@asynccontextmanager
async def open_websocket(
    base_url: str, *, protocol: str = TRANSPORT_WS, headers: dict[str, str] | None = None
) -> AsyncIterator[GraphQLWebSocket]:
    async with connect(
        websocket_url(base_url),
        subprotocols=[Subprotocol(protocol)],
        additional_headers=headers,
        proxy=None,
        open_timeout=TIMEOUT,
    ) as connection:
        assert connection.subprotocol == protocol
        yield GraphQLWebSocket(connection, protocol)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _within(awaitable: Any, seconds: float) -> Any:
    async with asyncio.timeout(seconds):
        return await awaitable

"""What a client may send over a GraphQL websocket: frame size, JSON, and message shapes.

`SizeLimitedWebSocket` is Strawberry's websocket adapter with a limit: a message over
``STUDIO_WS_MAX_MESSAGE_BYTES`` (UTF-8 bytes) closes the socket with 1009 "Message Too Big"
(RFC 6455), the code uvicorn sends for a frame over its ``--ws-max-size`` (which `studio serve`
sets to the same value), so the limit holds under any server. The ``*_message_problem`` functions
say why a decoded message is not one the protocol describes; `schema.transport.websocket`
closes with 4400 (graphql-transport-ws) or answers ``connection_error`` (graphql-ws) with that
reason.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from json import JSONDecodeError
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.async_base_view import AsyncBaseHTTPView
from strawberry.http.exceptions import (
    NonJsonMessageReceived,
    NonTextMessageReceived,
    WebSocketDisconnected,
)

from app.state import AppState
from schema.client_json import ClientJSONError

#: RFC 6455 "Message Too Big".
CLOSE_TOO_BIG = 1009
#: A close frame's reason holds at most 123 bytes (RFC 6455 §5.5).
_MAX_REASON_BYTES = 123


class SizeLimitedWebSocket(ASGIWebSocketAdapter):
    """Strawberry's websocket adapter, closing with `CLOSE_TOO_BIG` on a message over
    ``STUDIO_WS_MAX_MESSAGE_BYTES``, and cutting close reasons to what a close frame holds."""

    def __init__(
        self,
        view: AsyncBaseHTTPView[Any, Any, Any, Any, Any, Any, Any],
        request: WebSocket,
        response: WebSocket,
    ) -> None:
        super().__init__(view, request, response)
        self.max_bytes = AppState.of(response).settings.ws_max_message_bytes

    async def iter_json(
        self, *, ignore_parsing_errors: bool = False
    ) -> AsyncGenerator[object, None]:
        try:
            while self.ws.application_state != WebSocketState.DISCONNECTED:
                text = await self.ws.receive_text()  # KeyError: a binary frame
                if len(text) > self.max_bytes or len(text.encode()) > self.max_bytes:
                    await self.close(CLOSE_TOO_BIG, f"Message over {self.max_bytes} bytes")
                    return
                try:
                    message = self.view.decode_json(text)
                except (JSONDecodeError, ClientJSONError) as error:  # e.g. nested too deep
                    if ignore_parsing_errors:
                        continue
                    raise NonJsonMessageReceived from error
                yield message
        except KeyError as error:
            raise NonTextMessageReceived from error
        except WebSocketDisconnect:
            pass

    async def send_text(self, text: str) -> None:
        """A message already encoded (`schema.transport.feeds`: one encoding, many sockets)."""
        try:
            await self.ws.send_text(text)
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc

    async def close(self, code: int, reason: str) -> None:
        # A longer reason (a long operation id in "Subscriber for … already exists") would make
        # the server fail the close itself.
        fitted = reason.encode()[:_MAX_REASON_BYTES].decode(errors="ignore")
        await super().close(code, fitted)


_TRANSPORT_CLIENT_TYPES = frozenset({"connection_init", "ping", "pong", "subscribe", "complete"})
_OPTIONAL_OBJECTS = ("variables", "extensions")


def transport_message_problem(message: object) -> str | None:
    """Why ``message`` is not a client message of graphql-transport-ws (the 4400 reason)."""
    if not isinstance(message, dict):
        return "Message must be a JSON object"
    kind = message.get("type")
    if not isinstance(kind, str) or kind not in _TRANSPORT_CLIENT_TYPES:
        return f"Unknown message type: {kind!r}"
    if kind in ("subscribe", "complete") and not _is_id(message.get("id")):
        return f"{kind} needs a non-empty string id"
    payload = message.get("payload")
    if kind != "subscribe":
        return None if payload is None or isinstance(payload, dict) else f"Invalid {kind} payload"
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return "subscribe needs a payload with a query string"
    if not isinstance(payload.get("operationName"), str | None):
        return "operationName must be a string or null"
    for key in _OPTIONAL_OBJECTS:
        if not isinstance(payload.get(key), dict | None):
            return f"{key} must be an object or null"
    return None


def legacy_message_problem(message: object) -> str | None:
    """Why ``message`` would break Strawberry's graphql-ws handler (unknown types it ignores)."""
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return "Message must be a JSON object with a string type"
    kind = message["type"]
    if kind in ("start", "stop") and not _is_id(message.get("id")):
        return f"{kind} needs a non-empty string id"
    if kind == "start":
        payload = message.get("payload")
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            return "start needs a payload with a query string"
        if not isinstance(payload.get("operationName"), str | None):
            return "operationName must be a string or null"
        if not isinstance(payload.get("variables"), dict | None):
            return "variables must be an object or null"
    return None


def _is_id(value: object) -> bool:
    return isinstance(value, str) and bool(value)

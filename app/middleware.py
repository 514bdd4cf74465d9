"""Pure ASGI middleware: request ids, request body limits, and who is calling.

Each one handles HTTP and websocket scopes the same way and puts what it learns on the scope
(Starlette's pattern for per-request state), where the GraphQL view reads it.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth import Viewer, viewer_from_authorization
from app.errors import Unauthenticated
from app.request_context import new_request_id, request_id_var
from app.settings import Settings

REQUEST_ID_HEADER = "x-request-id"


class RequestIdMiddleware:
    """Accepts ``X-Request-ID`` (or makes one), exposes it to logs, and echoes it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = new_request_id(Headers(scope=scope).get(REQUEST_ID_HEADER))
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            elif message["type"] == "websocket.accept":  # the upgrade's 101 response
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", request_id.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


class BodySizeLimitMiddleware:
    """Refuses request bodies over the limit with 413, before the application reads them.

    A declared ``Content-Length`` is checked up front; a chunked body is counted as it arrives.
    Multipart requests (file uploads) may be larger: up to ``max_upload_bytes`` plus the normal
    limit for the operation and the multipart framing.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, max_upload_bytes: int = 0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        limit = self.max_bytes
        if headers.get("content-type", "").lower().startswith("multipart/form-data"):
            limit += self.max_upload_bytes
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(limit)(scope, receive, send)
            return

        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if response_started:
                raise
            await _too_large(limit)(scope, receive, send)


def graphql_error(status: int, message: str, **extensions: str) -> JSONResponse:
    """A GraphQL-shaped error answered by middleware, before any operation runs."""
    error = {"message": message, "extensions": extensions}
    return JSONResponse({"errors": [error]}, status_code=status)


def _too_large(limit: int) -> JSONResponse:
    message = f"The request body is larger than {limit} bytes."
    return graphql_error(413, message, code="BAD_USER_INPUT", limit="max_body_bytes")


class _BodyTooLarge(Exception):
    pass


class AuthenticationMiddleware:
    """Reads ``Authorization: Bearer`` into ``scope["studio.viewer"]``.

    A bad token is not answered here: it is kept in ``scope["studio.auth_error"]`` and the
    GraphQL layer answers UNAUTHENTICATED in GraphQL's own error format.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            viewer, error = authenticate(self.settings, Headers(scope=scope).get("authorization"))
            scope["studio.viewer"] = viewer
            scope["studio.auth_error"] = error
        await self.app(scope, receive, send)


def authenticate(
    settings: Settings, authorization: str | None
) -> tuple[Viewer | None, Unauthenticated | None]:
    try:
        return viewer_from_authorization(settings, authorization), None
    except Unauthenticated as exc:
        return None, exc


def scope_viewer(scope: MutableMapping[str, Any]) -> tuple[Viewer | None, Unauthenticated | None]:
    return scope.get("studio.viewer"), scope.get("studio.auth_error")

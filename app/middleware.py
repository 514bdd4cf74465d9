"""Pure ASGI middleware: request ids, request body limits, and who is calling.

Each one handles HTTP and websocket scopes the same way and puts what it learns in the request's
`RequestState` (on the scope), where the GraphQL layer reads it.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth import Viewer, viewer_from_authorization
from app.errors import Unauthenticated
from app.request_context import STATE_KEY, RequestState, new_request_id, request_id_var
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
        scope[STATE_KEY] = RequestState(request_id)
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

    The rest of a refused body is read and thrown away before the 413 is sent, up to
    `DRAIN_FACTOR` times the limit in all: a server that closes while the body is still
    arriving makes the client's side see a reset (or a broken pipe) and lose the answer
    (nginx's "lingering close" exists for this). A larger body, or one whose client waits for
    ``100 Continue``, is answered at once, with ``Connection: close``.
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
        drain = _Drain(limit, waits_for_continue="100-continue" in headers.get("expect", ""))
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            drained = int(declared) <= drain.budget and await drain.read_rest(receive)
            await _too_large(limit, drained)(scope, receive, send)
            return

        response_started = False

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                drain.received += len(message.get("body", b""))
                if drain.received > limit:
                    raise _BodyTooLarge(message.get("more_body", False))
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge as too_large:
            if response_started:
                raise
            drain.waits_for_continue = False  # the application's read asked for the body
            drained = not too_large.more_body or await drain.read_rest(receive)
            await _too_large(limit, drained)(scope, receive, send)


#: How much of a refused body is read and thrown away, as a multiple of the limit.
DRAIN_FACTOR = 4


class _Drain:
    """What is left of a refused body, read and thrown away."""

    def __init__(self, limit: int, *, waits_for_continue: bool) -> None:
        self.budget = DRAIN_FACTOR * limit
        self.received = 0
        self.waits_for_continue = waits_for_continue

    async def read_rest(self, receive: Receive) -> bool:
        """Whether the whole body arrived within the budget (the connection can then go on).
        A client waiting for ``100 Continue`` has sent nothing: reading would invite it."""
        if self.waits_for_continue:
            return False
        while self.received <= self.budget:
            message = await receive()
            if message["type"] != "http.request":
                return False  # the client went away
            self.received += len(message.get("body", b""))
            if not message.get("more_body", False):
                return True
        return False


def graphql_error(
    status: int, message: str, *, headers: Mapping[str, str] | None = None, **extensions: str
) -> JSONResponse:
    """A GraphQL-shaped error answered by middleware, before any operation runs."""
    error = {"message": message, "extensions": extensions}
    return JSONResponse({"errors": [error]}, status_code=status, headers=headers)


def _too_large(limit: int, drained: bool) -> JSONResponse:
    message = f"The request body is larger than {limit} bytes."
    headers = None if drained else {"Connection": "close"}  # the rest is still unread
    return graphql_error(
        413, message, headers=headers, code="BAD_USER_INPUT", limit="max_body_bytes"
    )


class _BodyTooLarge(Exception):
    def __init__(self, more_body: bool) -> None:
        super().__init__("request body over the limit")
        self.more_body = more_body


class AuthenticationMiddleware:
    """Reads ``Authorization: Bearer`` into the request's `RequestState` (``viewer``).

    A bad token is not answered here: it is kept as ``auth_error`` and the GraphQL layer answers
    UNAUTHENTICATED in GraphQL's own error format.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            viewer, error = authenticate(self.settings, Headers(scope=scope).get("authorization"))
            state = RequestState.of(scope)
            state.viewer, state.auth_error = viewer, error
        await self.app(scope, receive, send)


def authenticate(
    settings: Settings, authorization: str | None
) -> tuple[Viewer | None, Unauthenticated | None]:
    try:
        return viewer_from_authorization(settings, authorization), None
    except Unauthenticated as exc:
        return None, exc

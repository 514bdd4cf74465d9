"""The one ASGI layer in front of the routes: what every HTTP request and websocket goes through.

`RequestMiddleware` reads the request's header fields once and wraps ``send`` once, and does, in
this order (each step sees the responses of the steps after it):

1. the request id: ``X-Request-ID`` kept when plain (else a new one), on the request's
   `RequestState` and in logs (`request_id_var`), sent back on every response (a 413 or a CSRF
   refusal too) and on a websocket's upgrade;
2. metrics: every HTTP request counted and timed by route template and status, open websockets
   counted (`app.observability.metrics.Metrics`);
3. CORS: Starlette's `CORSMiddleware` for a request with an ``Origin`` (its preflight answer, or
   its headers on the response); a request without one gets only ``Vary: Origin``, which is all
   `CORSMiddleware` would add to it;
4. the body limit (`app.body_limit`): 413 for a body over the limit;
5. who is calling: ``Authorization: Bearer`` read into `RequestState` (``viewer``, or
   ``auth_error``, which the GraphQL layer answers as UNAUTHENTICATED in its own format);
6. CSRF (`app.csrf`): a simple cross-site form post without a custom header is refused;
7. ``/graphql`` over HTTP straight to the GraphQL view, as Starlette's router would hand it
   (everything else, websockets included, goes through Starlette's exception handling and
   router, which the layer wraps).

One layer instead of one per step: under a small read, each layer's own call, its copy of the
header fields and its wrapper of every message it sends cost more than what it does.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth import Viewer, viewer_from_authorization
from app.body_limit import BodyTooLarge, Drain, counting, limit_for, too_large_message
from app.csrf import CSRF_HEADERS, csrf_refusal
from app.errors import Unauthenticated
from app.observability.metrics import Metrics
from app.request_context import STATE_KEY, RequestState, new_request_id, request_id_var
from app.settings import Settings

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID = REQUEST_ID_HEADER.encode()
_VARY = b"vary"
_CSRF = tuple(name.lower().encode() for name in CSRF_HEADERS)

#: The request header fields the layer reads (ASGI servers give names in lower case).
_READ = frozenset(
    {
        b"authorization",
        b"content-length",
        b"content-type",
        b"expect",
        b"origin",
        b"transfer-encoding",
        _REQUEST_ID,
        *_CSRF,
    }
)


class RequestMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        metrics: Metrics,
        cors_headers: Sequence[str] = (),
        router: Router | None = None,
        graphql_route: Route | None = None,
    ) -> None:
        self.app = app
        self.router = router
        self.graphql_route = graphql_route
        self.settings = settings
        self.metrics = metrics
        self.max_bytes = settings.max_body_bytes
        self.max_upload_bytes = settings.max_upload_bytes
        # Only its preflight answer and its `send` are used (requests without an Origin skip it).
        self.cors = CORSMiddleware(
            app,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID", *cors_headers],
            expose_headers=["X-Request-ID"],
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        fields = _read_fields(scope["headers"])
        state = self._start(scope, fields)
        origin = fields.get(b"origin")
        answer = _Answer(send, state.request_id.encode(), vary_origin=origin is None)
        token = request_id_var.set(state.request_id)
        try:
            if origin is None:
                await self._guarded(scope, receive, answer, answer, fields)
                return
            headers = Headers(scope=scope)
            if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
                await self.cors.preflight_response(request_headers=headers)(scope, receive, answer)
                return

            async def cors_send(message: Message) -> None:
                await self.cors.send(message, answer, headers)

            await self._guarded(scope, receive, cors_send, answer, fields)
        finally:
            request_id_var.reset(token)
            route = getattr(scope.get("route"), "path", None)
            # A 500 when the application failed before answering (Starlette's answer then).
            status = answer.status or 500
            self.metrics.record_http(scope["method"], route, status, time.perf_counter() - started)

    async def _guarded(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        answer: _Answer,
        fields: Mapping[bytes, bytes],
    ) -> None:
        """The body limit and CSRF around the application."""
        content_type = fields.get(b"content-type", b"").decode("latin-1")
        limit = limit_for(content_type, self.max_bytes, self.max_upload_bytes)
        expect = fields.get(b"expect", b"").decode("latin-1")
        drain = Drain(limit, waits_for_continue="100-continue" in expect)
        declared = fields.get(b"content-length", b"").decode("latin-1")
        if declared.isdigit() and int(declared) > limit:
            drained = int(declared) <= drain.budget and await drain.read_rest(receive)
            await _too_large(limit, drained)(scope, receive, send)
            return
        if scope["method"] == "POST":
            sent = [fields[name].decode("latin-1") for name in _CSRF if name in fields]
            refusal = csrf_refusal(content_type, sent)
            if refusal is not None:
                header = CSRF_HEADERS[0]
                response = graphql_error(400, refusal, code="BAD_USER_INPUT", header=header)
                await response(scope, receive, send)
                return
        if declared.isdigit() and b"transfer-encoding" not in fields:
            # The server hands over exactly the declared length, which is within the limit.
            await self._route(scope, receive, send, answer)
            return
        try:
            await self._route(scope, counting(receive, drain, limit), send, answer)
        except BodyTooLarge as too_large:
            if answer.status is not None:
                raise
            drain.waits_for_continue = False  # the application's read asked for the body
            drained = not too_large.more_body or await drain.read_rest(receive)
            await _too_large(limit, drained)(scope, receive, send)

    async def _route(self, scope: Scope, receive: Receive, send: Send, answer: _Answer) -> None:
        """The GraphQL endpoint's requests straight to its view, as Starlette's router would
        hand them (the route on the scope; an `HTTPException` answered as Starlette's
        `ExceptionMiddleware` answers it); anything else through those two."""
        route = self.graphql_route
        if (
            route is None
            or scope["path"] != route.path
            or scope.get("root_path")
            or scope["method"] not in (route.methods or ())
        ):
            await self.app(scope, receive, send)
            return
        scope["router"], scope["route"] = self.router, route
        scope["endpoint"], scope["path_params"] = route.endpoint, {}
        try:
            await route.app(scope, receive, send)
        except HTTPException as exc:
            if answer.status is not None:
                raise RuntimeError(
                    "Caught handled exception, but response already started."
                ) from exc
            await _http_exception(exc)(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self._start(scope, _read_fields(scope["headers"]))
        request_id = state.request_id.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "websocket.accept":  # the upgrade's 101 response
                headers = [(k, v) for k, v in message.get("headers", []) if k != _REQUEST_ID]
                message = {**message, "headers": [*headers, (_REQUEST_ID, request_id)]}
            await send(message)

        token = request_id_var.set(state.request_id)
        self.metrics.websockets.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.metrics.websockets.dec()
            request_id_var.reset(token)

    def _start(self, scope: Scope, fields: Mapping[bytes, bytes]) -> RequestState:
        """The request's `RequestState`: its id and who is calling."""
        offered = fields.get(_REQUEST_ID)
        state = RequestState(new_request_id(offered.decode("latin-1") if offered else None))
        authorization = fields.get(b"authorization")
        state.viewer, state.auth_error = authenticate(
            self.settings, authorization.decode("latin-1") if authorization is not None else None
        )
        scope[STATE_KEY] = state
        return state


class _Answer:
    """The ``send`` the application is given: it records the response's status and puts the
    request id (and ``Vary: Origin``, when CORS is not asked) on the response."""

    __slots__ = ("request_id", "send", "status", "vary_origin")

    def __init__(self, send: Send, request_id: bytes, *, vary_origin: bool) -> None:
        self.send = send
        self.request_id = request_id
        self.vary_origin = vary_origin
        self.status: int | None = None

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            headers = list(message.get("headers", ()))
            if self.vary_origin:  # all that CORSMiddleware adds to a request without Origin
                _set(headers, _VARY, b", ".join([*_values(headers, _VARY), b"Origin"]))
            _set(headers, _REQUEST_ID, self.request_id)
            message["headers"] = headers
        await self.send(message)


def authenticate(
    settings: Settings, authorization: str | None
) -> tuple[Viewer | None, Unauthenticated | None]:
    try:
        return viewer_from_authorization(settings, authorization), None
    except Unauthenticated as exc:
        return None, exc


def graphql_error(
    status: int, message: str, *, headers: Mapping[str, str] | None = None, **extensions: str
) -> JSONResponse:
    """A GraphQL-shaped error answered by middleware, before any operation runs."""
    error = {"message": message, "extensions": extensions}
    return JSONResponse({"errors": [error]}, status_code=status, headers=headers)


def _too_large(limit: int, drained: bool) -> JSONResponse:
    headers = None if drained else {"Connection": "close"}  # the rest is still unread
    message = too_large_message(limit)
    return graphql_error(
        413, message, headers=headers, code="BAD_USER_INPUT", limit="max_body_bytes"
    )


def _http_exception(exc: HTTPException) -> Response:
    """Starlette's own answer to an `HTTPException` (`ExceptionMiddleware.http_exception`)."""
    if exc.status_code in {204, 304}:
        return Response(status_code=exc.status_code, headers=exc.headers)
    return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)


def _read_fields(raw: Iterable[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """The first value of each header field the layer reads (as `Headers.get` would give)."""
    fields: dict[bytes, bytes] = {}
    for name, value in raw:
        if name in _READ and name not in fields:
            fields[name] = value
    return fields


def _values(headers: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    return [value for key, value in headers if key == name]


def _set(headers: list[tuple[bytes, bytes]], name: bytes, value: bytes) -> None:
    """``headers[name] = value`` as `MutableHeaders` sets it: the first entry replaced in place,
    any later ones removed, or appended when there is none."""
    found = [index for index, (key, _) in enumerate(headers) if key == name]
    for index in reversed(found[1:]):
        del headers[index]
    if found:
        headers[found[0]] = (name, value)
    else:
        headers.append((name, value))

"""``GET /metrics`` and the middleware that counts HTTP requests and open websockets.

``/metrics`` is served in the Prometheus text format (OpenMetrics when the scraper asks for it).
Who may read it (``STUDIO_METRICS_ENABLED``, ``STUDIO_METRICS_TOKEN``): anyone in development;
in production only with the token, unless enabled explicitly; nobody when disabled (404).
"""

from __future__ import annotations

import time

from prometheus_client.exposition import choose_encoder
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability.access import bearer_matches
from app.observability.metrics import Metrics
from app.state import AppState

#: The route label of a request no route matched (any path: not worth a series each).
UNMATCHED = "unmatched"


async def metrics_endpoint(request: Request) -> Response:
    state = AppState.of(request)
    settings = state.settings
    if not settings.metrics_served:
        return PlainTextResponse("Not Found", status_code=404)
    token = settings.metrics_token
    if token is not None and not bearer_matches(request.headers.get("authorization"), token):
        return PlainTextResponse(
            "Send the metrics token: Authorization: Bearer <STUDIO_METRICS_TOKEN>.",
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    await state.metrics.refresh(state.sessionmaker)
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(
        encode(state.metrics.registry),
        headers={"Content-Type": content_type, "Cache-Control": "no-store"},
    )


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template; counts open websockets."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            self.metrics.websockets.inc()
            try:
                await self.app(scope, receive, send)
            finally:
                self.metrics.websockets.dec()
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        status = 500  # what the client gets if the application fails before answering

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            self.metrics.record_http(scope["method"], route, status, time.perf_counter() - started)

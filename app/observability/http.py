"""``GET /metrics`` (HTTP requests and open websockets are counted by `app.middleware`).

``/metrics`` is served in the Prometheus text format (OpenMetrics when the scraper asks for it).
Who may read it (``STUDIO_METRICS_ENABLED``, ``STUDIO_METRICS_TOKEN``): anyone in development;
in production only with the token, unless enabled explicitly; nobody when disabled (404).
"""

from __future__ import annotations

from prometheus_client.exposition import choose_encoder
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from app.observability.access import bearer_matches
from app.state import AppState


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

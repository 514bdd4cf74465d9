"""GraphiQL works in a real Chromium that cannot reach the internet (SPEC §5 Operations).

The server is a small Strawberry app with the same GraphiQL page and assets as the studio, on a
real port; the browser resolves no host name but the server's, and every request is recorded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import strawberry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route, WebSocketRoute
from strawberry.asgi import GraphQL
from strawberry.types import Info

from app.graphiql import render_graphiql_page
from app.graphiql_assets import ASSETS_URL_PATH, assets_mount
from tests.support.browser import browser_tools, run_graphiql_smoke, serve

PAGE_HEADERS = {"Authorization": "Bearer graphiql-smoke"}


@strawberry.type
class Query:
    @strawberry.field
    def hello(self, info: Info[dict[str, Any], None]) -> str:
        request: Request = info.context["request"]
        return f"Hello, {request.headers.get('authorization', 'anonymous')}"


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def hello(self, info: Info[dict[str, Any], None]) -> AsyncIterator[str]:
        params = info.context.get("connection_params") or {}
        yield f"Hello over websocket, {params.get('Authorization', 'anonymous')}"


class GraphiQLView(GraphQL[dict[str, Any], None]):
    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(render_graphiql_page(self.graphql_ide_html, headers=PAGE_HEADERS))


@pytest.fixture(scope="module")
def graphql_url() -> Iterator[str]:
    browser_tools()  # skip before starting a server when the browser cannot run
    view = GraphiQLView(strawberry.Schema(query=Query, subscription=Subscription))
    app = Starlette(
        routes=[
            Route("/graphql", view, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", view),
            assets_mount(),
        ]
    )
    with serve(app) as base_url:
        yield f"{base_url}/graphql"


def test_graphiql_runs_a_query_offline_with_the_pages_headers(graphql_url: str) -> None:
    report = run_graphiql_smoke(graphql_url, "{ hello }", expect="Hello, Bearer graphiql-smoke")
    assert report.external == []
    # React, React DOM, js-cookie, GraphiQL's script and stylesheet, the explorer's two
    assets = [request for request in report.requests if f"{ASSETS_URL_PATH}/" in request]
    assert len(assets) == 7, report.requests
    assert report.page_errors == []


def test_graphiql_subscription_authenticates_in_connection_init(graphql_url: str) -> None:
    report = run_graphiql_smoke(
        graphql_url,
        "subscription { hello }",
        expect="Hello over websocket, Bearer graphiql-smoke",
    )
    assert any(request.startswith("websocket ws://127.0.0.1:") for request in report.requests)


def test_headers_given_to_the_smoke_run_replace_the_pages(graphql_url: str) -> None:
    run_graphiql_smoke(
        graphql_url,
        "{ hello }",
        expect="Hello, Bearer from-the-test",
        headers={"Authorization": "Bearer from-the-test"},
    )

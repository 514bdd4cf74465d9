"""The GraphQL endpoint: Strawberry's ASGI view with one database session per operation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from app.graphiql import render_graphiql_page
from app.middleware import scope_viewer
from app.settings import Environment, Settings
from app.state import AppState
from schema.context import Context
from schema.errors import coded_error
from schema.loaders import Loaders, SessionGate
from schema.streaming import ConnectionContext
from schema.websocket import (
    ConnectionLimiter,
    LegacyWSHandler,
    TransportWSHandler,
    accept_connection,
)
from schema.websocket_messages import SizeLimitedWebSocket

_SESSION_KEY = "studio.session"


class GraphQLView(GraphQL[Context, None]):
    # Websockets: token from connection_init or the upgrade request, close codes, timeouts and
    # limits for both protocols (schema/websocket.py).
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler
    websocket_adapter_class = SizeLimitedWebSocket

    def __init__(self, schema: Any, settings: Settings) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql_enabled else None,
            allow_queries_via_get=True,
            # The GraphQL multipart request spec, for voice samples (`Upload`).
            multipart_uploads_enabled=True,
            max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
            allowed_origins=settings.cors_origins,  # browser pages that may open a websocket
            connection_init_wait_timeout=timedelta(
                seconds=settings.ws_connection_init_timeout_seconds
            ),
            # `ka` over graphql-ws; the graphql-transport-ws handler sends `ping` at this pace.
            keep_alive=settings.ws_keep_alive_seconds > 0,
            keep_alive_interval=settings.ws_keep_alive_seconds,
        )
        self.settings = settings
        self.connections = ConnectionLimiter(settings.max_connections_per_user)

    async def run(  # type: ignore[override]  # one body for both of the base's overloads
        self,
        request: Request | WebSocket,
        context: Context = UNSET,
        root_value: None = UNSET,
    ) -> Response | WebSocket:
        if isinstance(request, WebSocket):
            connection = ConnectionContext.open(self.settings, request)
            try:
                return await super().run(request, connection, root_value)
            finally:
                self.connections.release(connection)
        # One session for the whole operation, closed (rolled back unless committed) before the
        # response leaves; queries never commit.
        async with AppState.of(request).sessionmaker() as session:
            request.scope[_SESSION_KEY] = session
            try:
                return await super().run(request, context, root_value)
            finally:
                del request.scope[_SESSION_KEY]
                await request.close()  # a parsed multipart form's temporary files

    async def render_graphql_ide(self, request: Request) -> Response:
        # GraphiQL's files come from the app itself (works offline); in development the page
        # takes a token from its URL fragment, as `studio token` prints it.
        page = render_graphiql_page(
            self.graphql_ide_html,
            token_from_fragment=self.settings.env is Environment.DEVELOPMENT,
        )
        return HTMLResponse(page)

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        # Errors raised before execution (a document that does not parse, or is over the token
        # limit) end the operation before `ErrorCodes` runs: code them here too (idempotent).
        if result.errors:
            request_id = request.scope.get("state", {}).get("request_id")
            result.errors = [coded_error(error, request_id) for error in result.errors]
        return await super().process_result(request, result)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        viewer, auth_error = scope_viewer(request.scope)
        gate = SessionGate(request.scope[_SESSION_KEY])
        return Context(
            settings=self.settings,
            request_id=request.scope.get("state", {}).get("request_id", ""),
            gate=gate,
            loaders=Loaders(gate, viewer.user_id if viewer else None),
            viewer=viewer,
            auth_error=auth_error,
            request=request,
            response=response,
        )

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        assert isinstance(context, ConnectionContext)
        accept_connection(self.settings, self.connections, context)  # or ConnectionRefused
        no_payload: UnsetType = UNSET  # a connection_ack without a payload
        return no_payload

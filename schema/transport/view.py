"""The GraphQL endpoint: Strawberry's ASGI view with one database session per operation,
answering as GraphQL over HTTP specifies (media types and status codes: `http_protocol`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.websockets import WebSocket
from strawberry import Schema
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.unset import UNSET, UnsetType

from app.graphiql import render_graphiql_page
from app.request_context import RequestState
from app.settings import Environment, Settings
from app.state import AppState
from schema import StudioSchema, client_json
from schema.compiled.json_text import encode_response
from schema.context import Context
from schema.extensions.errors import coded_error
from schema.loaders import SessionGate
from schema.transport import http_protocol
from schema.transport.feeds import Feeds
from schema.transport.http_protocol import RequestRefused
from schema.transport.streaming import ConnectionContext, ShortSessionGate
from schema.transport.websocket import (
    ConnectionLimiter,
    LegacyWSHandler,
    TransportWSHandler,
    accept_connection,
)
from schema.transport.websocket_messages import SizeLimitedWebSocket

C = TypeVar("C", bound=Context)


class GraphQLView(GraphQL[Context, None]):
    request_adapter_class = http_protocol.RequestAdapter
    # Websockets: token from connection_init or the upgrade request, close codes, timeouts and
    # limits for both protocols (schema/transport/websocket.py).
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler
    websocket_adapter_class = SizeLimitedWebSocket

    def __init__(self, schema: Schema, settings: Settings) -> None:
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
        #: Subscriptions run once for all who subscribe to the same (`schema.transport.feeds`).
        self.feeds = (
            Feeds(schema, self.encode_json)
            if isinstance(schema, StudioSchema) and settings.shared_subscriptions
            else None
        )

    async def run(  # type: ignore[override]  # one body for both of the base's overloads
        self,
        request: Request | WebSocket,
        context: Context = UNSET,
        root_value: None = UNSET,
    ) -> Response | WebSocket:
        if isinstance(request, WebSocket):
            # The viewer so far is the upgrade request's ``Authorization`` header (if any).
            connection = _context_of(
                ConnectionContext,
                self.settings,
                request,
                request,
                ShortSessionGate(AppState.of(request).sessionmaker),
            )
            try:
                return await super().run(request, connection, root_value)
            finally:
                self.connections.release(connection)
        # GraphQL over HTTP (`http_protocol`): the response's media type, and a POST body this
        # endpoint reads, are settled before anything else (and before a session).
        media_type = http_protocol.JSON
        try:
            renders_ide = request.method == "GET" and self.should_render_graphql_ide(
                self.request_adapter_class(request)
            )
            if not renders_ide:
                accept = ",".join(request.headers.getlist("accept")) or None
                media_type = http_protocol.response_media_type(accept)
            if request.method == "POST":
                http_protocol.check_request_content_type(request.headers.get("content-type"))
        except RequestRefused as refusal:
            return _refusal_response(refusal, media_type)
        schema = self.schema
        if (
            isinstance(schema, StudioSchema)
            and schema.known_reads is not None
            and request.method == "POST"
            and _is_json(request)
        ):
            # An operation the compiled path answered before (`schema.compiled.known`).
            data = await schema.known_reads.answer(request, schema._schema)
            if data is not None:
                return _data_response(data, media_type)
        state = RequestState.of(request.scope)
        state.media_type = media_type
        # One session for the whole operation, closed (rolled back unless committed) before the
        # response leaves; queries never commit.
        async with AppState.of(request).sessionmaker() as session:
            gate = state.gate = SessionGate(session)
            try:
                response = await super().run(request, context, root_value)
            except RequestRefused as refusal:
                return _refusal_response(refusal, media_type)
            except HTTPException as exc:  # Strawberry's own refusals, as GraphQL errors
                return _refusal_response(_from_http_exception(exc), media_type)
            finally:
                state.gate = None
                await gate.close()  # no loader batch outlives the response (`SessionGate.close`)
                await request.close()  # a parsed multipart form's temporary files
        if state.answered:  # a GraphQL response (not GraphiQL's page)
            response.headers["content-type"] = http_protocol.CONTENT_TYPES[media_type]
            response.headers.add_vary_header("Accept")  # caches of GET queries keep both types
            if state.status is not None:
                response.status_code = state.status
        return response

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
        # Every error leaves coded: those made outside an operation (Strawberry's own HTTP
        # refusals, turned into GraphQL errors here) never pass `ErrorCodes` (idempotent).
        state = RequestState.of(request.scope)
        if result.errors:
            result.errors = [coded_error(error, state.request_id) for error in result.errors]
        response = await super().process_result(request, result)
        status: int | None = None  # as Strawberry sets it: 200, or the context's response's
        if http_protocol.is_request_error(result):
            # Nothing ran: a GraphQL request error, whose response has no `data` entry.
            response.pop("data", None)
            if state.media_type == http_protocol.GRAPHQL_RESPONSE_JSON:
                status = http_protocol.request_error_status(result, state.phase)
        state.answered, state.status = True, status
        return response

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        media_type = (request.content_type or "").partition(";")[0].strip()
        if request.method == "POST" and media_type == http_protocol.JSON:
            # Starlette keeps the body it reads here for Strawberry to parse.
            http_protocol.check_json_body(await request.get_body())
        data = await super().parse_http_body(request)
        if isinstance(data, GraphQLRequestData):
            if not isinstance(data.operation_name, str | None):
                raise RequestRefused(
                    400, "The GraphQL operation's `operationName` must be a string or null."
                )
            data.operation_name = data.operation_name or None  # "" is no name (GET)
        return data

    async def parse_multipart(  # the base's annotation; the values are any JSON
        self, request: AsyncHTTPRequestAdapter
    ) -> dict[str, str]:
        try:
            form = await request.get_form_data()
        except StarletteHTTPException as exc:
            # Starlette's own refusal of the body (no boundary, a part without a name, too many
            # parts or fields, a part too large …), which would leave as plain text.
            message = f"Unable to parse the multipart body: {exc.detail}"
            raise RequestRefused(400, message) from exc
        except ValueError as exc:
            raise RequestRefused(400, "Unable to parse the multipart body.") from exc
        return http_protocol.operations_with_files(form.form, form.files, self.parse_json)

    def parse_json(self, data: str | bytes) -> Any:
        # An HTTP request's JSON: the body, a GET's parameters, a multipart request's fields.
        try:
            return super().parse_json(data)
        except client_json.ClientJSONError as exc:
            limit = {"limit": exc.limit} if exc.limit else None
            raise RequestRefused(400, exc.message, extensions=limit) from exc

    def encode_json(self, data: object) -> str:
        # A compiled read's `data` is JSON text from PostgreSQL: spliced in, never re-parsed.
        return encode_response(data)

    def decode_json(self, data: str | bytes) -> object:
        # Every JSON a client sends, websocket messages included (`schema.client_json`).
        # Request bodies are UTF-8 (GraphQL over HTTP); `json.loads` would guess UTF-16/32.
        if isinstance(data, bytes):
            try:
                data = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise RequestRefused(400, "The request body is not valid UTF-8.") from exc
        return client_json.loads(data, max_depth=self.settings.max_json_depth)

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        try:
            return await super().execute_single(
                request=request,
                request_adapter=request_adapter,
                sub_response=sub_response,
                context=context,
                root_value=root_value,
                request_data=request_data,
            )
        except HTTPException as exc:
            if isinstance(exc.__cause__, InvalidOperationTypeError):
                # A mutation over GET: 405 with the method that would run it (GraphQL over
                # HTTP, "GET"); refused before execution, so nothing is written.
                message = f"{exc.reason}; send mutations with POST."
                raise RequestRefused(405, message, headers={"Allow": "POST"}) from exc
            if isinstance(exc.__cause__, CannotGetOperationTypeError):
                # A GraphQL request error ("operation cannot be determined"), not a malformed
                # request: 200 under application/json, 400 under the newer type.
                return PreExecutionError(data=None, errors=[GraphQLError(exc.reason)])
            raise

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        gate: SessionGate = RequestState.of(request.scope).gate
        return _context_of(Context, self.settings, request, response, gate)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        assert isinstance(context, ConnectionContext)
        accept_connection(self.settings, self.connections, context)  # or ConnectionRefused
        no_payload: UnsetType = UNSET  # a connection_ack without a payload
        return no_payload


def _context_of(
    kind: type[C],
    settings: Settings,
    request: Request | WebSocket,
    response: Response | WebSocket,
    gate: SessionGate,
) -> C:
    """A context for ``request``: its id, viewer and refused credentials as the middleware left
    them on its scope (`app.request_context.RequestState`)."""
    state = RequestState.of(request.scope)
    return kind(
        settings=settings,
        request_id=state.request_id,
        gate=gate,
        viewer=state.viewer,
        auth_error=state.auth_error,
        request=request,
        response=response,
        accounts=AppState.of(request).accounts,
    )


def _is_json(request: Request) -> bool:
    content_type = request.headers.get("content-type", "")
    return content_type.partition(";")[0].strip().lower() == http_protocol.JSON


def _data_response(data: str, media_type: str) -> Response:
    """A response whose ``data`` is JSON text, as the full path answers it."""
    response = Response(
        '{"data":' + data + "}",
        media_type=http_protocol.CONTENT_TYPES[media_type],
    )
    response.raw_headers.append((b"vary", b"Accept"))  # a new response has no Vary yet
    return response


def _refusal_response(refusal: RequestRefused, media_type: str) -> Response:
    response = Response(
        refusal.body(),
        status_code=refusal.status,
        headers=refusal.headers,
        media_type=http_protocol.CONTENT_TYPES[media_type],
    )
    response.headers.add_vary_header("Accept")
    return response


def _from_http_exception(exc: HTTPException) -> RequestRefused:
    if exc.status_code == 405:  # a method other than GET and POST (HEAD)
        return RequestRefused(405, exc.reason, headers={"Allow": "GET, POST"})
    if exc.status_code == 404:  # GraphiQL asked for while it is turned off
        return RequestRefused(404, exc.reason, code="NOT_FOUND")
    return RequestRefused(exc.status_code, exc.reason)

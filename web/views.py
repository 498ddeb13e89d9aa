"""The GraphQL view: strawberry's ASGI app, answering GraphQL over HTTP as the spec asks (and the websocket)."""

from __future__ import annotations

from typing import Any, cast

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException, StarletteRequestAdapter
from graphql import GraphQLError, OperationDefinitionNode, OperationType
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from resolvers.context import Context, build_context, with_viewer
from resolvers.state import AppState
from schema import build_schema
from schema.core import websocket
from schema.core.limits import parse_cached
from schema.core.websocket import SessionWatch, SocketHandler, TextWebSocketAdapter
from services.platform.errors import Unauthenticated
from web.caching import cached_get
from web.public_cache import PublicAnswers
from web.refusals import GRAPHQL_RESPONSE, JSON, HttpRefusal, refusal, response_media_type

NO_ACK_PAYLOAD = cast(UnsetType, UNSET)


class _Adapter(StarletteRequestAdapter):
    """Strawberry's view of a Starlette request, keeping the scope: the view reads the request RequestGuard checked."""

    def __init__(self, request: Request) -> None:
        super().__init__(request)
        self.scope = request.scope


def _checked(request: AsyncHTTPRequestAdapter) -> dict[str, Any] | None:
    scope = getattr(request, "scope", None) or {}
    checked: dict[str, Any] | None = scope.get("state", {}).get("graphql_request")
    return checked


def _request_error(code: str, message: str) -> ExecutionResult:
    return ExecutionResult(data=None, errors=[GraphQLError(message, extensions={"code": code})])


def _is_request_error(result: ExecutionResult) -> bool:
    """Refused before execution (parse, validation, limits, variables, choosing the operation): no field ran, so no
    error has a path, and the response has no `data` (GraphQL spec, "Response")."""
    return result.data is None and bool(result.errors) and all(e.path is None for e in result.errors or ())


# Strawberry's own HTTP refusals (a safety net: RequestGuard and the view's checks come first), as coded JSON.
_HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 415: "UNSUPPORTED_MEDIA_TYPE"}


class GraphQLView(GraphQL[Context, None]):
    """Strawberry's ASGI view, answering GraphQL over HTTP as the spec asks: the media type the client accepts
    (application/graphql-response+json gets 4xx for requests refused before execution, application/json gets 200),
    one named operation or an error, mutations only over POST, and every refusal in JSON with a code."""

    request_adapter_class = _Adapter

    # graphql-transport-ws only (schema/core/websocket.py applies the HTTP rules to it; the legacy protocol would not).
    websocket_adapter_class = TextWebSocketAdapter
    graphql_transport_ws_handler_class = SocketHandler

    def __init__(self, state: AppState) -> None:
        super().__init__(
            build_schema(production=state.settings.is_production),
            graphql_ide="graphiql" if state.settings.graphiql else None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        )
        self.state = state
        self.sessions = SessionWatch(state.broker)
        self.public = PublicAnswers(state)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        media_type = response_media_type(Headers(scope=scope).get("accept"))
        response: Response
        request = Request(scope, receive)
        try:
            response = await self.public.answer(request, lambda: self.run(request))
        except HttpRefusal as refused:
            response = refused.response(media_type)
        except HTTPException as exc:
            response = refusal(exc.status_code, _HTTP_CODES.get(exc.status_code, "BAD_REQUEST"), exc.reason, media_type)
        response.headers["vary"] = "Accept"
        settings = self.state.settings
        response = cached_get(
            request, response, max_age_s=settings.public_max_age_s, stale_while_revalidate_s=settings.public_swr_s
        )
        await response(scope, receive, send)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)  # HTTP bodies as bytes; the websocket sends the same JSON as text frames

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        return _checked(cast(AsyncHTTPRequestAdapter, request)) is None and super().should_render_graphql_ide(request)

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> GraphQLRequestData | list[GraphQLRequestData]:
        checked = _checked(request)
        if checked is None:  # no RequestGuard in front (it always is in create_app)
            return await super().parse_http_body(request)
        return GraphQLRequestData(
            query=checked.get("query"),
            variables=checked.get("variables"),
            operation_name=checked.get("operationName"),
            extensions=checked.get("extensions"),
        )

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        refused = self._choose_operation(request_adapter.method, request_data)
        if refused is not None:
            return refused
        return await super().execute_single(
            request=request,
            request_adapter=request_adapter,
            sub_response=sub_response,
            context=context,
            root_value=root_value,
            request_data=request_data,
        )

    def _choose_operation(self, method: str, data: GraphQLRequestData) -> ExecutionResult | None:
        """The operation to run, as the GraphQL spec chooses it (strawberry runs the first of several when no name is
        given, and answers an unknown name in plain text): a request error, a 405 for a mutation over GET, or None."""
        try:
            document = parse_cached(data.query or "", self.state.limits.max_tokens)
        except GraphQLError:
            return None  # strawberry reports the syntax error the usual way
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if data.operation_name is None:
            if len(operations) > 1:
                message = "The document has several operations: name the one to run in `operationName`."
                return _request_error("OPERATION_NAME_REQUIRED", message)
            chosen = operations[0] if operations else None
        else:
            chosen = next((o for o in operations if o.name and o.name.value == data.operation_name), None)
        if chosen is None:
            return _request_error(
                "OPERATION_NOT_FOUND",
                "The document has no operation of that name."
                if data.operation_name is not None
                else "The document has no operation.",
            )
        if chosen.operation is OperationType.MUTATION and method != "POST":
            raise HttpRefusal(405, "METHOD_NOT_ALLOWED", "Mutations are sent with POST.", {"allow": "POST"})
        if chosen.operation is OperationType.SUBSCRIPTION:
            return _request_error("BAD_REQUEST", "Subscriptions run over the websocket (graphql-transport-ws).")
        return None

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        sub_response.media_type = response_media_type(request.headers.get("accept"))
        return sub_response

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        response = await super().process_result(request, result)
        if _is_request_error(result):
            response.pop("data", None)
        return response

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        media_type = sub_response.media_type or JSON
        response.headers["content-type"] = media_type
        if media_type == GRAPHQL_RESPONSE and isinstance(response_data, dict) and "data" not in response_data:
            codes = {
                (e.get("extensions") or {}).get("code")
                for e in response_data.get("errors") or ()
                if isinstance(e, dict)
            }
            response.status_code = (
                500 if "INTERNAL_SERVER_ERROR" in codes else 503 if "TEMPORARILY_UNAVAILABLE" in codes else 400
            )
        return response

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket | None) -> Context:
        return build_context(self.state, request, response if isinstance(response, Response) else None)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """A websocket signs in with connection_init {"authorization": "Bearer <token>"}; no token is anonymous."""
        try:
            with_viewer(context, await websocket.sign_in(context))
        except Unauthenticated as exc:
            raise ConnectionRejectionError({"code": exc.code, "reason": exc.reason}) from exc
        return NO_ACK_PAYLOAD

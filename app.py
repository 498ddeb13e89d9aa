"""The Starlette app: /graphql (HTTP and websocket), /healthz, /readyz."""

from __future__ import annotations

import asyncio
import gc
import hmac
import logging
import os
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast
from urllib.parse import parse_qsl

import mimeparse
import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException, StarletteRequestAdapter
from graphql import GraphQLError, OperationDefinitionNode, OperationType
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from resolvers.context import Context, build_context, with_viewer
from resolvers.state import AppState, build_state
from schema import build_schema
from schema.core import trusted, websocket
from schema.core.errors import RETRYABLE, transient
from schema.core.limits import parse_cached
from schema.core.websocket import SessionWatch, SocketHandler, TextWebSocketAdapter
from services.access.auth import authenticate
from services.access.scope import Viewer
from services.orders import notifications
from services.platform import jobs, logs
from services.platform.config import Settings
from services.platform.db import write_transaction
from services.platform.errors import DomainError, Unauthenticated
from services.platform.events import take_pending
from services.platform.metrics import Metrics

log = logging.getLogger("chain.app")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9\-_.]{8,64}$")
NO_ACK_PAYLOAD = cast(UnsetType, UNSET)


class RequestIdMiddleware:
    """Give every request an id (the caller's X-Request-ID if sane), echo it, and log with it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get("x-request-id", "")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = logs.request_id_var.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["x-request-id"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            logs.request_id_var.reset(token)


class HttpMetrics:
    """Count HTTP requests by route (a known path, else "other"), method (a standard one, else "other") and status:
    every label from a bounded set, whatever the caller sends."""

    ROUTES = frozenset({"/graphql", "/healthz", "/readyz", "/metrics"})
    METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        route = path if path in self.ROUTES else "/payments/notify" if path.startswith("/payments/notify/") else "other"
        status = [500]

        async def record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            method = scope["method"] if scope["method"] in self.METHODS else "other"
            self.metrics.http.labels(route, method, str(status[0])).inc()


class ViewerGate:
    """Turn the bearer token into the viewer before GraphQL runs; a bad token is a 401, not anonymity."""

    def __init__(self, app: ASGIApp, state: AppState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        header = Headers(scope=scope).get("authorization")
        if scope["type"] == "http" and header:
            scheme, _, token = header.partition(" ")
            try:
                if scheme.lower() != "bearer" or not token:
                    raise Unauthenticated("Use an Authorization: Bearer token.", reason="TOKEN_INVALID")
                async with self.state.read_sessionmaker() as session:
                    viewer = await authenticate(session, self.state.security, token.strip())
            except Unauthenticated as exc:
                body = {"errors": [{"message": exc.message, "extensions": {"code": exc.code, "reason": exc.reason}}]}
                response = JSONResponse(body, status_code=401, headers={"www-authenticate": "Bearer"})
                await response(scope, receive, send)
                return
            except Exception as exc:
                if not transient(exc):
                    raise
                log.warning("transient database failure checking a token: %s", type(exc).__name__)
                message = "The service is briefly unavailable. Try again."
                body = {"errors": [{"message": message, "extensions": RETRYABLE}]}
                await JSONResponse(body, status_code=503, headers={"retry-after": "1"})(scope, receive, send)
                return
            scope.setdefault("state", {})["viewer"] = viewer
        await self.app(scope, receive, send)


GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"


def response_media_type(accept: str | None) -> str:
    """The media type of the answer, by the client's Accept (GraphQL over HTTP): application/graphql-response+json
    when the client prefers it, else application/json, which is also the answer to no Accept, `*/*`, and an Accept
    naming neither or not parsing (the spec lets a server disregard such a header rather than refuse with 406)."""
    try:
        # In order of increasing preference on a tie, so that `*/*` and `application/*` get application/json.
        chosen: str = mimeparse.best_match([GRAPHQL_RESPONSE, JSON], accept or "*/*")
    except mimeparse.MimeTypeParseException:
        return JSON
    return chosen or JSON


def _refusal(status: int, code: str, message: str, media_type: str = JSON,
             headers: dict[str, str] | None = None) -> Response:  # fmt: skip
    """A request refused before it runs: a GraphQL response with one coded error and no `data`."""
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return Response(orjson.dumps(body), status_code=status, media_type=media_type, headers=headers)


class HttpRefusal(Exception):
    """Raised while handling a GraphQL request that is refused with an HTTP status (the view answers it)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers

    def response(self, media_type: str) -> Response:
        return _refusal(self.status, self.code, self.message, media_type, self.headers)


# Parameters of a GraphQL-over-HTTP request: the JSON type each must have when present and not null.
_PARAMETERS: dict[str, tuple[type, str]] = {
    "query": (str, "a string"),
    "operationName": (str, "a string"),
    "variables": (dict, "an object"),
    "extensions": (dict, "an object"),
    "documentId": (str, "a string"),
}


def request_shape_error(data: object) -> str | None:
    """Why `data` (a decoded JSON body, or GET's parameters) is not a GraphQL-over-HTTP request, or None if it is.

    Checked before strawberry sees the request: it would answer some of these in plain text and fail on others."""
    if isinstance(data, list):
        return "Batching is not supported: send one operation per request."
    if not isinstance(data, dict):
        return "The body must be a JSON object with `query` (or `documentId`), `variables` and `operationName`."
    for name, (kind, described) in _PARAMETERS.items():
        value = data.get(name)
        if value is not None and not isinstance(value, kind):
            return f"`{name}` must be {described} or null."
    persisted = (data.get("extensions") or {}).get("persistedQuery")
    if persisted is not None and not (isinstance(persisted, dict) and isinstance(persisted.get("sha256Hash"), str)):
        return "`extensions.persistedQuery` must be an object with a string `sha256Hash`."
    return None


class RequestGuard:
    """HTTP rules for /graphql before GraphQL sees a request: GET and POST only, JSON bodies only, a size limit, the
    request's shape (GraphQL over HTTP), and trusted documents. Every refusal is JSON with an `extensions.code`.

    A request may name a trusted document (`{"documentId": "sha256:..."}`): its text is put in. In production a member
    or an anonymous caller may send nothing else (staff consoles may send text). The request as checked is left in
    the scope's state (`graphql_request`) for the view, which does not read the body again.
    """

    ALLOW = {"allow": "GET, POST"}

    def __init__(self, app: ASGIApp, state: AppState) -> None:
        self.app = app
        self.state = state
        self.max_body = state.limits.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            data = await self._read(scope, receive, headers)
            if data is not None:
                scope.setdefault("state", {})["graphql_request"] = self._admit(data, scope)
        except HttpRefusal as refused:
            await refused.response(response_media_type(headers.get("accept")))(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _read(self, scope: Scope, receive: Receive, headers: Headers) -> dict[str, Any] | None:
        """The request's parameters; None for a GET that asks for GraphiQL."""
        if scope["method"] == "GET":
            return self._get_parameters(scope, headers)
        if scope["method"] != "POST":
            raise HttpRefusal(405, "METHOD_NOT_ALLOWED", "Use GET (queries) or POST.", self.ALLOW)
        content_type, _, parameters = headers.get("content-type", "").partition(";")
        charset = next((v.strip().strip('"').lower() for k, _, v in (p.partition("=") for p in parameters.split(";"))
                        if k.strip().lower() == "charset"), "utf-8")  # fmt: skip
        if content_type.strip().lower() != "application/json" or charset not in {"utf-8", "utf8"}:
            raise HttpRefusal(415, "UNSUPPORTED_MEDIA_TYPE", "Send application/json (UTF-8).")
        declared = headers.get("content-length") or "0"
        if not declared.isdigit():
            raise HttpRefusal(400, "BAD_REQUEST", "Content-Length is not a number.")
        if int(declared) > self.max_body:
            raise HttpRefusal(413, "REQUEST_TOO_LARGE", f"At most {self.max_body} bytes.")
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body:
                raise HttpRefusal(413, "REQUEST_TOO_LARGE", f"At most {self.max_body} bytes.")
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise HttpRefusal(400, "BAD_REQUEST", "The body is not valid JSON.") from None
        return self._shaped(data)

    def _get_parameters(self, scope: Scope, headers: Headers) -> dict[str, Any] | None:
        pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = dict(pairs)
        if len(given) != len(pairs):
            raise HttpRefusal(400, "BAD_REQUEST", "Give each parameter once.")
        if not given.get("query") and not given.get("documentId"):
            accept = headers.get("accept", "")
            if "text/html" in accept or "*/*" in accept:
                return None  # GraphiQL in development; a JSON 404 in production
            raise HttpRefusal(400, "BAD_REQUEST", "Send a `query` (or a `documentId`) parameter.")
        data: dict[str, Any] = {k: v for k, v in given.items() if k in {"query", "operationName", "documentId"} and v}
        for name in ("variables", "extensions"):
            if given.get(name):
                try:
                    data[name] = orjson.loads(given[name])
                except orjson.JSONDecodeError:
                    raise HttpRefusal(400, "BAD_REQUEST", f"`{name}` is not valid JSON.") from None
        return self._shaped(data)

    @staticmethod
    def _shaped(data: object) -> dict[str, Any]:
        problem = request_shape_error(data)
        if problem is not None:
            raise HttpRefusal(400, "BAD_REQUEST", problem)
        return cast(dict[str, Any], data)

    def _admit(self, data: dict[str, Any], scope: Scope) -> dict[str, Any]:
        viewer: Viewer | None = scope.get("state", {}).get("viewer")
        try:
            admitted = trusted.admit(data, viewer, production=self.state.settings.is_production)
        except trusted.Refused as exc:
            raise HttpRefusal(400, exc.code, exc.message) from exc
        if not admitted.get("query"):
            raise HttpRefusal(400, "BAD_REQUEST", "Send a `query` (or a trusted `documentId`).")
        return admitted


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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        media_type = response_media_type(Headers(scope=scope).get("accept"))
        response: Response
        try:
            response = await self.run(Request(scope, receive))
        except HttpRefusal as refused:
            response = refused.response(media_type)
        except HTTPException as exc:
            response = _refusal(
                exc.status_code, _HTTP_CODES.get(exc.status_code, "BAD_REQUEST"), exc.reason, media_type
            )
        response.headers["vary"] = "Accept"
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
            return _request_error("OPERATION_NOT_FOUND", "The document has no operation of that name."
                                  if data.operation_name is not None else "The document has no operation.")  # fmt: skip
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
            response.status_code = (500 if "INTERNAL_SERVER_ERROR" in codes
                                    else 503 if "TEMPORARILY_UNAVAILABLE" in codes else 400)  # fmt: skip
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


def create_app(settings: Settings | None = None, state: AppState | None = None) -> Starlette:
    settings = settings or (state.settings if state else Settings.from_env())
    state = state or build_state(settings)
    graphql = ViewerGate(RequestGuard(GraphQLView(state), state), state)

    async def metrics(request: Request) -> Response:
        """Prometheus text for the scraper: open in development; with METRICS_TOKEN set, only for that bearer token;
        in production without METRICS_TOKEN, for no one (the set of operations and the pool are not public)."""
        expected = settings.metrics_token
        if expected is None and not settings.is_production:
            return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        matches = bool(expected) and hmac.compare_digest(given.strip().encode(), (expected or "").encode())
        if scheme.lower() != "bearer" or not matches:
            message = "Metrics need the scraper's token (METRICS_TOKEN)."
            return _refusal(401, "UNAUTHENTICATED", message, headers={"www-authenticate": "Bearer"})
        return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        try:
            async with state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            log.exception("database not reachable")
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok"})

    async def payment_notify(request: Request) -> Response:
        """A provider's signed payment notification: verified, applied once, answered so it stops retrying."""
        provider = state.payment_providers.get(request.path_params["provider"])
        if provider is None:
            return JSONResponse({"code": "FAIL", "message": "unknown provider"}, status_code=404)
        body = await request.body()
        try:
            note = provider.verify_notification({k.lower(): v for k, v in request.headers.items()}, body)
            async with write_transaction(state.sessionmaker) as session:
                await notifications.apply(session, provider.name, note)
                events = take_pending(session)
        except DomainError as exc:
            log.warning("payment notification refused: %s", exc.code)
            return JSONResponse({"code": "FAIL", "message": exc.code.value}, status_code=400)
        await state.broker.publish(events)
        return JSONResponse({"code": "SUCCESS"})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[dict[str, Any]]:
        log.info("chain-bff starting (%s, %s)", settings.env, state.engine.url.get_backend_name())
        job_runner = (
            asyncio.create_task(
                jobs.runner(
                    state.sessionmaker,
                    state.broker,
                    interval_s=settings.jobs_interval_s,
                    providers=state.payment_providers,
                    facts_interval_s=settings.facts_interval_s,
                    report_failed=state.metrics.set_failed_jobs,
                )
            )
            if settings.run_jobs
            else None
        )
        try:
            yield {}
        finally:
            if job_runner is not None:
                job_runner.cancel()
            await state.broker.close()
            await state.engine.dispose()

    middleware = [Middleware(RequestIdMiddleware), Middleware(HttpMetrics, metrics=state.metrics)]
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["authorization", "content-type", "x-request-id"],
            )
        )
    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=None),  # RequestGuard answers other methods (405, in JSON)
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/metrics", metrics),
            Route("/readyz", readyz),
            Route("/payments/notify/{provider}", payment_notify, methods=["POST"]),
        ],
        middleware=middleware,
        lifespan=lifespan,
    )
    app.state.chain = state
    return app


def _default_app() -> Starlette:
    settings = Settings.from_env()
    logs.configure(json_lines=settings.log_json, level=os.environ.get("LOG_LEVEL", "INFO").upper())
    app = create_app(settings)
    # The server's one app: what is alive now (schema, mappers, settings) lives as long as the process, so keep it
    # out of every garbage collection; each collection then walks only what requests made.
    gc.collect()
    gc.freeze()
    return app


def __getattr__(name: str) -> Starlette:
    # `uvicorn app:app` builds the app on first access, so importing this module has no side effects.
    if name == "app":
        built = _default_app()
        globals()["app"] = built
        return built
    raise AttributeError(name)

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

import orjson
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
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from resolvers.context import Context, build_context, with_viewer
from resolvers.state import AppState, build_state
from schema import build_schema, trusted, websocket
from schema.errors import RETRYABLE, transient
from schema.websocket import SessionWatch, SocketHandler, TextWebSocketAdapter
from services import jobs, logs, notifications
from services.auth import authenticate
from services.config import Settings
from services.db import write_transaction
from services.errors import DomainError, Unauthenticated
from services.events import take_pending
from services.metrics import Metrics
from services.scope import Viewer

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
    """Count HTTP requests by route (a known path, else "other"), method and status."""

    ROUTES = frozenset({"/graphql", "/healthz", "/readyz", "/metrics"})

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
            self.metrics.http.labels(route, scope["method"], str(status[0])).inc()


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


def _refusal(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status_code=status)


class RequestGuard:
    """HTTP rules for /graphql before GraphQL sees a request: JSON bodies only, a size limit, and trusted documents.

    A body may name a trusted document (`{"documentId": "sha256:..."}`): its text is put in. In production a member
    or an anonymous caller may send nothing else (staff consoles may send text).
    """

    def __init__(self, app: ASGIApp, state: AppState) -> None:
        self.app = app
        self.state = state
        self.max_body = state.limits.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in {"POST", "GET"}:
            await self.app(scope, receive, send)
            return
        viewer = scope.get("state", {}).get("viewer")
        trusted_only = self.state.settings.is_production and not (viewer is not None and viewer.is_staff)
        if scope["method"] == "GET":
            query = dict(parse_qsl(scope.get("query_string", b"").decode()))
            if trusted_only and "query" in query:
                await _refusal(400, "TRUSTED_DOCUMENT_REQUIRED", "Send a trusted document id.")(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            await _refusal(415, "UNSUPPORTED_MEDIA_TYPE", "Send application/json.")(scope, receive, send)
            return
        if int(headers.get("content-length") or 0) > self.max_body:
            await _refusal(413, "REQUEST_TOO_LARGE", f"At most {self.max_body} bytes.")(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body:
                await _refusal(413, "REQUEST_TOO_LARGE", f"At most {self.max_body} bytes.")(scope, receive, send)
                return
        try:
            body = self._trusted(body, viewer)
        except trusted.Refused as exc:
            await _refusal(400, exc.code, exc.message)(scope, receive, send)
            return

        async def replay() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _trusted(self, body: bytes, viewer: Viewer | None) -> bytes:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body  # GraphQL answers malformed JSON itself
        if not isinstance(data, dict):
            return body
        admitted = trusted.admit(data, viewer, production=self.state.settings.is_production)
        return body if admitted is data else orjson.dumps(admitted)


class GraphQLView(GraphQL[Context, None]):
    # graphql-transport-ws only (schema/websocket.py applies the HTTP rules to it; the legacy protocol would not).
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

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)  # HTTP bodies as bytes; the websocket sends the same JSON as text frames

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
        expected = settings.metrics_token
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if expected and not hmac.compare_digest(given, expected):
            return JSONResponse({"error": "metrics need the scraper's token"}, status_code=401)
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
            asyncio.create_task(jobs.runner(state.sessionmaker, state.broker, providers=state.payment_providers))
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
            Route("/graphql", graphql, methods=["GET", "POST"]),
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

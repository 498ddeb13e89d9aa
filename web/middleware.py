"""The ASGI middlewares in front of /graphql and the other routes: a request id, HTTP metrics, the bearer token,
and the HTTP rules for GraphQL requests (RequestGuard)."""

from __future__ import annotations

import logging
import re
import uuid
from functools import partial
from typing import Any, cast
from urllib.parse import parse_qsl

import orjson
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from resolvers.state import AppState
from schema.core import trusted
from schema.core.errors import RETRYABLE, transient
from services.access.auth import session_viewer
from services.access.scope import Viewer
from services.platform import logs
from services.platform.errors import Unauthenticated
from services.platform.metrics import Metrics
from web.refusals import HttpRefusal, response_media_type

log = logging.getLogger("chain.app")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9\-_.]{8,64}$")


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
                viewer = await self.state.viewers.check(token.strip(), partial(self._authenticate, token.strip()))
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

    async def _authenticate(self, token: str) -> tuple[Viewer, float]:
        claims = self.state.security.decode_access_token(token)
        async with self.state.read_sessionmaker() as session:
            return await session_viewer(session, claims), claims.expires_at


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
        charset = next(
            (
                v.strip().strip('"').lower()
                for k, _, v in (p.partition("=") for p in parameters.split(";"))
                if k.strip().lower() == "charset"
            ),
            "utf-8",
        )
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

"""graphql-transport-ws with the rules HTTP keeps: text frames, trusted documents, a session that is re-checked while
the socket is open, and a context of its own for every operation.

A socket signs in once, at connection_init (`{"authorization": "Bearer <token>"}`), but that viewer is not trusted
for the socket's life. Every operation re-authenticates the token before it runs, so a revoked session's mutation
is refused even before its socket closes. And the socket closes with 4403 ("Forbidden"), ending its running
subscriptions, when its session ends: at once when the revocation is announced through the event broker (every
instance hears it through Redis), at the latest at the next periodic check (`Settings.ws_session_check_s`), and
when the access token expires. graphql-ws clients then connect again with a fresh token.

Operations on one socket run concurrently (strawberry runs each in a task), so each gets its own context: its own
viewer, dataloaders and mutation transaction. Queries, mutations and subscriptions go through the same schema
extensions as over HTTP, so the query limits and rate limits apply as they are.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing, suppress
from contextvars import ContextVar
from typing import Any, cast

from starlette.websockets import WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import NonJsonMessageReceived, NonTextMessageReceived, WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import Message, SubscribeMessage

from resolvers import Unauthenticated
from resolvers import auth as auth_resolvers
from resolvers.auth import SESSION_REVOKED
from resolvers.context import ANONYMOUS, Context, Viewer, for_operation
from resolvers.state import Broker, Settings
from schema.core import trusted
from schema.core.errors import RETRYABLE, transient

log = logging.getLogger("chain.websocket")

FORBIDDEN = 4403  # graphql-ws: the client may connect again (with a fresh token)
MESSAGE_TOO_BIG = 1009  # RFC 6455


def bearer(params: Mapping[str, object] | None) -> str | None:
    """The access token of a connection_init payload, or None for an anonymous socket."""
    header = (params or {}).get("authorization") or (params or {}).get("Authorization")
    if header is None:
        return None
    scheme, _, token = str(header).partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Use an authorization: Bearer token.", reason="TOKEN_INVALID")
    return token.strip()


async def sign_in(context: Context) -> Viewer:
    """The viewer a socket's connection_init payload names, checked as HTTP checks a bearer token."""
    token = bearer(context.connection_params)
    if token is None:
        return ANONYMOUS
    return await auth_resolvers.authenticate(context.app, token)


class TextWebSocketAdapter(ASGIWebSocketAdapter):
    """Sends every message as a text frame: graphql-ws (Apollo, urql, Relay) and gql refuse binary ones, and orjson
    encodes to bytes. Refuses a message larger than an HTTP body may be."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        try:
            await self.ws.send_text(self.view.encode_json_string(message))
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc

    async def iter_json(self, *, ignore_parsing_errors: bool = False) -> AsyncGenerator[object, None]:
        max_size = cast(Any, self.view).state.limits.max_body_bytes
        try:
            while self.ws.application_state != WebSocketState.DISCONNECTED:
                text = await self.ws.receive_text()
                if len(text) > max_size:
                    await self.close(MESSAGE_TOO_BIG, f"At most {max_size} characters.")
                    return
                try:
                    yield self.view.decode_json(text)
                except ValueError as exc:  # orjson's JSONDecodeError
                    if not ignore_parsing_errors:
                        raise NonJsonMessageReceived from exc
        except KeyError as exc:  # a binary frame
            raise NonTextMessageReceived from exc
        except WebSocketDisconnect:
            pass


class SessionWatch:
    """This instance's sockets by session, and one broker subscription that tells them their session was revoked.

    The subscription runs while at least one signed-in socket is open. Should the broker fail, the periodic check
    remains the bound.
    """

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._sockets: defaultdict[int, set[asyncio.Event]] = defaultdict(set)
        self._listener: asyncio.Task[None] | None = None

    def watch(self, session_id: int) -> asyncio.Event:
        """An event set when `session_id` is announced revoked."""
        revoked = asyncio.Event()
        self._sockets[session_id].add(revoked)
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen())
        return revoked

    def forget(self, session_id: int, revoked: asyncio.Event) -> None:
        events = self._sockets.get(session_id)
        if events is not None:
            events.discard(revoked)
            if not events:
                del self._sockets[session_id]
        if not self._sockets and self._listener is not None:
            self._listener.cancel()
            self._listener = None

    async def _listen(self) -> None:
        while True:
            try:
                async with aclosing(self._broker.subscribe(SESSION_REVOKED)) as events:
                    async for event in events:
                        for session_id in event.payload.get("sessionIds", ()):
                            for revoked in self._sockets.get(session_id, ()):
                                revoked.set()
            except Exception:
                log.warning("revocations are not heard (the periodic check still runs)", exc_info=True)
                await asyncio.sleep(1)


# The context of the operation a task runs; unset in the socket's own task, which holds the connection's context.
_OPERATION_CONTEXT: ContextVar[Context | None] = ContextVar("ws_operation_context", default=None)


class SocketHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """strawberry's graphql-transport-ws handler, with the rules above."""

    _connection: Context
    _watch: asyncio.Task[None] | None = None
    _ended = False

    # strawberry runs every operation with `self.context`; here each operation's task sees its own.
    @property
    def context(self) -> Context:
        return _OPERATION_CONTEXT.get() or self._connection

    @context.setter
    def context(self, value: Context) -> None:
        self._connection = value

    @property
    def _settings(self) -> Settings:
        return self._connection.app.settings

    async def handle_connection_init(self, message: Any) -> None:
        await super().handle_connection_init(message)
        session_id = self._connection.viewer.session_id
        if self.connection_acknowledged and session_id is not None and self._watch is None:
            self._watch = asyncio.create_task(self._watch_session(session_id))
            self._watch.add_done_callback(self._task_done)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if self._ended:
            return  # sent before the client saw the close
        if not self.connection_acknowledged or message.get("id") in self.operations:
            await super().handle_subscribe(message)  # strawberry closes the socket: 4401, or 4409
            return
        payload: Any = message.get("payload")
        if not isinstance(message.get("id"), str) or not _well_formed(payload):
            await self.websocket.close(4400, "Invalid subscribe message")
            return
        try:
            admitted = trusted.admit(payload, self._connection.viewer, production=self._settings.is_production)
        except trusted.Refused as exc:
            error = {"message": exc.message, "extensions": {"code": exc.code}}
            await self.send_message(cast(Message, {"id": message["id"], "type": "error", "payload": [error]}))
            return
        if not isinstance(admitted.get("query"), str):
            await self.websocket.close(4400, "Invalid subscribe message")
            return
        await super().handle_subscribe(cast(SubscribeMessage, {**message, "payload": admitted}))

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        context = await self._operation_context(operation)
        if context is not None:
            _OPERATION_CONTEXT.set(context)  # this operation's task only
            await super().run_operation(operation)

    async def _operation_context(self, operation: Operation[Context, None]) -> Context | None:
        """The operation's own context with the viewer as it stands now; None when it may not run (told why)."""
        try:
            viewer = await sign_in(self._connection)
        except Unauthenticated as exc:
            await self._refuse(operation, exc.message, {"code": exc.code, "reason": exc.reason})
            await self._end()
            return None
        except Exception as exc:
            if not transient(exc):
                log.exception("could not check the session of a websocket operation")
                await self._refuse(operation, "Internal server error.", {"code": "INTERNAL_SERVER_ERROR"})
                return None
            await self._refuse(operation, "The service is briefly unavailable. Try again.", RETRYABLE)
            return None
        return for_operation(self._connection, viewer)

    @staticmethod
    async def _refuse(operation: Operation[Context, None], message: str, extensions: Mapping[str, object]) -> None:
        error = {"message": message, "extensions": dict(extensions)}
        await operation.send_operation_message(cast(Message, {"id": operation.id, "type": "error", "payload": [error]}))

    async def _watch_session(self, session_id: int) -> None:
        """Close the socket once its session ends: announced, found at a periodic check, or the token expired."""
        expires_at = self._expires_at()
        sessions: SessionWatch = cast(Any, self.view).sessions
        revoked = sessions.watch(session_id)
        try:
            while not revoked.is_set():
                every = max(self._settings.ws_session_check_s, 0.1)
                wait = min(every, max(expires_at - time.time(), 0.0) + 0.01)
                with suppress(TimeoutError):
                    await asyncio.wait_for(revoked.wait(), wait)
                if revoked.is_set() or not await self._still_valid():
                    break
            await self._end()
        finally:
            sessions.forget(session_id, revoked)

    def _expires_at(self) -> float:
        """When the socket's access token expires (now, if it already has)."""
        with suppress(Unauthenticated):
            token = bearer(self._connection.connection_params)
            if token is not None:
                return self._connection.app.security.decode_access_token(token).expires_at
        return time.time()

    async def _still_valid(self) -> bool:
        """False once the session no longer stands; a database that failed in passing is asked again next time."""
        try:
            await sign_in(self._connection)
        except Unauthenticated:
            return False
        except Exception as exc:
            if not transient(exc):
                log.exception("could not re-check a websocket's session; closing it")
                return False
            log.warning("could not re-check a websocket's session: %s; trying again", type(exc).__name__)
        return True

    async def _end(self) -> None:
        """The session ended: stop every operation, then close the socket with 4403."""
        if self._ended:
            return
        self._ended = True
        for operation_id in list(self.operations):
            await self.cleanup_operation(operation_id)
        with suppress(Exception):
            await self.websocket.close(FORBIDDEN, "Forbidden")

    async def shutdown(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with suppress(asyncio.CancelledError):
                await self._watch
        await super().shutdown()


def _well_formed(payload: object) -> bool:
    """A subscribe payload as graphql-transport-ws defines it (a document id may stand in for the query)."""
    if not isinstance(payload, dict):
        return False
    shapes: dict[str, type | tuple[type, ...]] = {
        "query": str,
        "variables": dict,
        "operationName": str,
        "extensions": dict,
        "documentId": str,
    }
    return all(payload.get(key) is None or isinstance(payload[key], shape) for key, shape in shapes.items())

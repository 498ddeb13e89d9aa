"""The per-request context: viewer, request id, loaders, and the mutation's transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from resolvers.loaders import Loaders
from resolvers.state import AppState
from services.access.scope import ANONYMOUS, Acting, Viewer, ViewerKind
from services.platform.logs import operation_var

# Re-exported for schema/, which imports no service: who is asking, and the operation every log line names.
__all__ = [
    "ANONYMOUS",
    "Context",
    "Viewer",
    "ViewerKind",
    "build_context",
    "for_operation",
    "operation_var",
    "with_viewer",
]


@dataclass
class Context:
    app: AppState
    request: Request | WebSocket
    response: Response | None
    viewer: Viewer
    request_id: str
    ip: str | None
    loaders: Loaders
    # Set by the mutation extension for the length of one mutation: its one transaction.
    tx: AsyncSession | None = None
    # Ids the mutation touched, beyond those visible in its input and payload (for the audit log).
    audit_targets: list[str] = field(default_factory=list)
    # Where the mutation acted, as its rules found it (the store whose scope it passed; at sign-in, the account).
    acting: Acting = field(default_factory=Acting)
    # graphql-transport-ws connection_init payload; the viewer of a websocket comes from it.
    connection_params: dict[str, object] | None = None

    @property
    def session(self) -> AsyncSession:
        """The current mutation's session; resolvers of mutations always run inside one."""
        if self.tx is None:
            raise RuntimeError("no mutation transaction is open")
        return self.tx

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A short session for a query resolver: sibling fields run concurrently, so never share one."""
        async with self.app.read_sessionmaker() as session:
            yield session


def with_viewer(ctx: Context, viewer: Viewer) -> None:
    """Switch a (websocket) context to a newly authenticated viewer, with loaders scoped to it."""
    ctx.viewer = viewer
    ctx.loaders = Loaders(ctx.app.read_sessionmaker, viewer, ctx.app.chain_settings)


def for_operation(ctx: Context, viewer: Viewer) -> Context:
    """One websocket operation's own context: operations on one socket run at once, so each has its own viewer (as
    re-checked when it starts), loaders and mutation transaction; none can close what another is using."""
    return replace(
        ctx,
        viewer=viewer,
        loaders=Loaders(ctx.app.read_sessionmaker, viewer, ctx.app.chain_settings),
        tx=None,
        audit_targets=[],
        acting=Acting(),
    )


def build_context(app: AppState, request: Request | WebSocket, response: Response | None) -> Context:
    state = request.scope.get("state") or {}
    viewer: Viewer = state.get("viewer", ANONYMOUS)
    client = request.client
    return Context(
        app=app,
        request=request,
        response=response,
        viewer=viewer,
        request_id=state.get("request_id", "-"),
        ip=client.host if client else None,
        loaders=Loaders(app.read_sessionmaker, viewer, app.chain_settings),
    )

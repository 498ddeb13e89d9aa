"""The Starlette app: /graphql (HTTP and websocket), /healthz, /readyz, /metrics and payment notifications, and its
lifespan. The middlewares, the GraphQL view and the endpoints live beside it, in web/."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Route, WebSocketRoute

import services.registry  # noqa: F401  (imports every domain, so their jobs are registered)
from resolvers.state import AppState, LifespanState, build_state
from services.platform import jobs, logs
from services.platform.config import Settings
from web.endpoints import Endpoints
from web.middleware import HttpMetrics, RequestGuard, RequestIdMiddleware, ViewerGate
from web.views import GraphQLView

log = logging.getLogger("chain.app")


def create_app(settings: Settings | None = None, state: AppState | None = None) -> Starlette:
    settings = settings or (state.settings if state else Settings.from_env())
    state = state or build_state(settings)
    return Starlette(
        routes=_routes(settings, state),
        middleware=_middleware(settings, state),
        lifespan=_lifespan(settings, state),
    )


def _routes(settings: Settings, state: AppState) -> list[BaseRoute]:
    """/graphql behind the token check and the HTTP rules, and the plain endpoints."""
    graphql = ViewerGate(RequestGuard(GraphQLView(state), state), state)
    endpoints = Endpoints(settings, state)
    return [
        Route("/graphql", graphql, methods=None),  # RequestGuard answers other methods (405, in JSON)
        WebSocketRoute("/graphql", graphql),
        Route("/healthz", endpoints.healthz),
        Route("/metrics", endpoints.metrics),
        Route("/readyz", endpoints.readyz),
        Route("/payments/notify/{provider}", endpoints.payment_notify, methods=["POST"]),
    ]


def _middleware(settings: Settings, state: AppState) -> list[Middleware]:
    """Around every route: the request id, HTTP metrics, and CORS when origins are configured."""
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
    return middleware


def _lifespan(settings: Settings, state: AppState) -> Callable[[Starlette], AbstractAsyncContextManager[LifespanState]]:
    """Start the job runner (when the settings run jobs) for the app's life; close the broker and the engine after.
    The lifespan's state (`request.state` in every request) is the app's state, typed."""

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[LifespanState]:
        log.info("chain-bff starting (%s, %s)", settings.env, state.engine.url.get_backend_name())
        job_runner = _start_jobs(settings, state) if settings.run_jobs else None
        announcements = asyncio.create_task(state.follow_announcements())
        try:
            yield LifespanState(chain=state)
        finally:
            announcements.cancel()
            if job_runner is not None:
                job_runner.cancel()
            await state.public_reads.close()
            await state.broker.close()
            await state.engine.dispose()

    return lifespan


def _start_jobs(settings: Settings, state: AppState) -> asyncio.Task[None]:
    return asyncio.create_task(
        jobs.runner(
            state.sessionmaker,
            state.broker,
            interval_s=settings.jobs_interval_s,
            providers=state.payment_providers,
            facts_interval_s=settings.facts_interval_s,
            report_failed=state.metrics.set_failed_jobs,
            intervals={"messages.send": settings.messages_interval_s},
        )
    )


GC_YOUNG_THRESHOLD = 50_000


def _default_app() -> Starlette:
    settings = Settings.from_env()
    logs.configure(json_lines=settings.log_json, level=os.environ.get("LOG_LEVEL", "INFO").upper())
    app = create_app(settings)
    # The server's one app: what is alive now (schema, mappers, settings) lives as long as the process, so keep it
    # out of every garbage collection; each collection then walks only what requests made.
    gc.collect()
    gc.freeze()
    # A GraphQL answer makes tens of thousands of short-lived objects; at the default threshold (700 allocations)
    # the young generation is collected dozens of times a request, each walk costing CPU and reclaiming little
    # that reference counting did not. Measured in one process (bench/profile_reads.py): menu 7.1-9.4 -> 6.3-6.6 ms,
    # store list 16.2-16.7 -> 13.5-14.9 ms of CPU per request; it holds a few MB more between collections.
    gc.set_threshold(GC_YOUNG_THRESHOLD, 50, 100)
    return app


def __getattr__(name: str) -> Starlette:
    # `uvicorn app:app` builds the app on first access, so importing this module has no side effects.
    if name == "app":
        built = _default_app()
        globals()["app"] = built
        return built
    raise AttributeError(name)

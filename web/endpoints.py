"""The plain HTTP endpoints beside /graphql: /metrics, /healthz, /readyz and the payment providers' notifications."""

from __future__ import annotations

import hmac
import logging

from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from resolvers.state import AppState
from services.orders import notifications
from services.platform.config import Settings
from services.platform.db import write_transaction
from services.platform.errors import DomainError
from services.platform.events import take_pending
from web.refusals import refusal

log = logging.getLogger("chain.app")


class Endpoints:
    """The endpoints, bound to the app's state (and the settings the app was made with)."""

    def __init__(self, settings: Settings, state: AppState) -> None:
        self.settings = settings
        self.state = state

    async def metrics(self, request: Request) -> Response:
        """Prometheus text for the scraper: open in development; with METRICS_TOKEN set, only for that bearer token;
        in production without METRICS_TOKEN, for no one (the set of operations and the pool are not public)."""
        expected = self.settings.metrics_token
        if expected is None and not self.settings.is_production:
            return Response(self.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        matches = bool(expected) and hmac.compare_digest(given.strip().encode(), (expected or "").encode())
        if scheme.lower() != "bearer" or not matches:
            message = "Metrics need the scraper's token (METRICS_TOKEN)."
            return refusal(401, "UNAUTHENTICATED", message, headers={"www-authenticate": "Bearer"})
        return Response(self.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    async def healthz(self, _: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, _: Request) -> Response:
        try:
            async with self.state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            log.exception("database not reachable")
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok"})

    async def payment_notify(self, request: Request) -> Response:
        """A provider's signed payment notification: verified, applied once, answered so it stops retrying."""
        state = self.state
        provider = state.payment_providers.get(request.path_params["provider"])
        if provider is None:
            return JSONResponse({"code": "FAIL", "message": "unknown provider"}, status_code=404)
        body = await request.body()
        try:
            note = provider.verify_notification({k.lower(): v for k, v in request.headers.items()}, body)
            async with write_transaction(state.sessionmaker) as session:
                await notifications.apply(session, provider.name, note)
                await session.flush()
                events = take_pending(session)
        except DomainError as exc:
            log.warning("payment notification refused: %s", exc.code)
            return JSONResponse({"code": "FAIL", "message": exc.code.value}, status_code=400)
        await state.broker.publish(events)
        return JSONResponse({"code": "SUCCESS"})

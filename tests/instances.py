"""Two app instances as deployed side by side: each its own state (engine, caches) and uvicorn server on a real
socket, sharing PostgreSQL and a Redis broker (under a prefix of the test's own), so what one commits reaches the
other only through the broadcast."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import httpx

from app import create_app
from resolvers.state import AppState, build_state
from services.platform.config import Settings
from services.platform.events import RedisBroker
from tests.api.test_e2e_http import running_server
from tests.conftest import Api


@dataclass
class Instance:
    state: AppState
    http: httpx.AsyncClient

    @property
    def api(self) -> Api:
        return Api(self.http)


@asynccontextmanager
async def two_instances(settings: Settings, redis_url: str, **changes: Any) -> AsyncIterator[tuple[Instance, Instance]]:
    """Instances A and B over `settings` with `changes` (e.g. a cache turned on), serving until the block ends."""
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    states = [build_state(replace(settings, redis_url=redis_url, **changes)) for _ in range(2)]
    for state in states:
        await state.broker.close()
        state.broker = RedisBroker(redis_url, channel_prefix=prefix)
    a, b = states
    try:
        async with (
            running_server(create_app(state=a), lifespan="on") as url_a,
            running_server(create_app(state=b), lifespan="on") as url_b,
            httpx.AsyncClient(base_url=f"http://{url_a}", timeout=30) as http_a,
            httpx.AsyncClient(base_url=f"http://{url_b}", timeout=30) as http_b,
        ):
            yield Instance(a, http_a), Instance(b, http_b)
    finally:
        for state in states:
            await state.broker.close()
            await state.engine.dispose()

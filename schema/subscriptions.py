"""Live stock over graphql-transport-ws: events published after commit, filtered by the same scope as queries."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from resolvers.context import Context
from schema.common import decode_id
from schema.inventory import StockLevel
from services.errors import AccessDenied
from services.scope import require, require_store
from services.stock import ALL_STORES_TOPICS, stock_topic


@strawberry.type
class Subscription:
    @strawberry.subscription(description="Stock levels of one store as they change (its staff and HQ).")
    async def stock_changed(
        self, info: strawberry.Info[Context, None], store_id: strawberry.ID
    ) -> AsyncGenerator[StockLevel, None]:
        sid = decode_id(store_id, "Store", "storeId")
        require_store(info.context.viewer, sid, "stock.read")
        async for event in info.context.app.broker.subscribe(stock_topic(sid)):
            yield StockLevel.from_event(event.payload)

    @strawberry.subscription(description="Stock changes in every store (HQ).")
    async def chain_stock_changed(self, info: strawberry.Info[Context, None]) -> AsyncGenerator[StockLevel, None]:
        viewer = info.context.viewer
        require(viewer, "stock.read")
        if not viewer.is_hq:
            raise AccessDenied("Chain-wide stock is for HQ.")
        async for event in info.context.app.broker.subscribe(ALL_STORES_TOPICS):
            yield StockLevel.from_event(event.payload)

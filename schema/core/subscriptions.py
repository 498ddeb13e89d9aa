"""Live stock over graphql-transport-ws: events published after commit, filtered by the same scope as queries."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import strawberry

from models import OrderStatus
from resolvers import Perm
from resolvers import inventory as inventory_resolvers
from resolvers import orders as order_resolvers
from resolvers.context import Context
from schema.core.common import decode_id, global_id
from schema.core.permissions import HasPermission, IsHQ, IsMember, checks, only, requires
from schema.inventory.types import StockLevel
from schema.orders.types import Order


@strawberry.type(description="An order changed: paid, cancelled, ready, picked up.")
class OrderEvent:
    order_id: strawberry.ID = strawberry.field(deprecation_reason="Use order { id }.")
    status: OrderStatus = strawberry.field(description="The status the order moved to")
    pk: strawberry.Private[int]

    @classmethod
    def of(cls, payload: dict[str, Any]) -> OrderEvent:
        pk = int(payload["orderId"])
        return cls(order_id=strawberry.ID(str(global_id("Order", pk))), status=OrderStatus(payload["status"]), pk=pk)

    @strawberry.field(description="The order as it is now, through the same scoped loader as queries")
    async def order(self, info: strawberry.Info[Context, None]) -> Order | None:
        # A subscription's loaders live as long as the socket: forget what an earlier event loaded of this order.
        info.context.loaders.order_by_id.clear(self.pk)
        return await Order.load(info.context, self.pk)


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The store tablet's feed: new paid orders, cancellations, pickups.",
        extensions=requires(Perm.ORDER_READ),
    )
    async def order_events(
        self, info: strawberry.Info[Context, None], store_id: strawberry.ID
    ) -> AsyncGenerator[OrderEvent, None]:
        async for payload in order_resolvers.order_events(info.context, decode_id(store_id, "Store", "storeId")):
            yield OrderEvent.of(payload)

    # No IsSignedIn first: an anonymous socket is told FORBIDDEN, as a staff one is.
    @strawberry.subscription(
        description="The signed-in member's own orders as they change.",
        extensions=checks(IsMember("Only members follow their orders.")),
    )
    async def my_order_updates(self, info: strawberry.Info[Context, None]) -> AsyncGenerator[OrderEvent, None]:
        async for payload in order_resolvers.my_order_updates(info.context):
            yield OrderEvent.of(payload)

    @strawberry.subscription(
        description="Stock levels of one store as they change (its staff and HQ).",
        extensions=requires(Perm.STOCK_READ),
    )
    async def stock_changed(
        self, info: strawberry.Info[Context, None], store_id: strawberry.ID
    ) -> AsyncGenerator[StockLevel, None]:
        async for payload in inventory_resolvers.stock_changes(info.context, decode_id(store_id, "Store", "storeId")):
            yield StockLevel.from_event(payload)

    @strawberry.subscription(
        description="Stock changes in every store (HQ).",
        extensions=only(HasPermission(Perm.STOCK_READ), IsHQ("Chain-wide stock is for HQ.")),
    )
    async def chain_stock_changed(self, info: strawberry.Info[Context, None]) -> AsyncGenerator[StockLevel, None]:
        async for payload in inventory_resolvers.chain_stock_changes(info.context):
            yield StockLevel.from_event(payload)

"""Relay's node(id:): any object by its global id, through the same scoped loaders as every field."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import strawberry
from strawberry import relay

from resolvers import MAX_PAGE
from resolvers.context import Context
from schema.access.audit import AuditLogEntry
from schema.catalog.types import Category, Product, Sku, StoreListing
from schema.core.jobs import FailedJob
from schema.inventory.types import StockLevel, StockMovement, Transfer
from schema.marketing.api import Campaign, CouponTemplate, MemberCoupon, PointsMallItem
from schema.members.types import Member, MemberLevel, MemberTag, TopUpPlan
from schema.orders.api import Order, Payment, Refund
from schema.org.types import Role, Staff, Store
from services.platform.errors import DomainError, ErrorCode

NODE_TYPES: dict[str, Callable[[Context, int], Awaitable[Any]]] = {
    "Store": Store.load,
    "Staff": Staff.load,
    "Role": Role.load,
    "Member": Member.load,
    "AuditLogEntry": AuditLogEntry.load,
    "Category": Category.load,
    "Product": Product.load,
    "Sku": Sku.load,
    "StoreListing": StoreListing.load,
    "StockLevel": StockLevel.load,
    "StockMovement": StockMovement.load,
    "Transfer": Transfer.load,
    "MemberLevel": MemberLevel.load,
    "MemberTag": MemberTag.load,
    "TopUpPlan": TopUpPlan.load,
    "Order": Order.load,
    "Payment": Payment.load,
    "Refund": Refund.load,
    "Campaign": Campaign.load,
    "CouponTemplate": CouponTemplate.load,
    "MemberCoupon": MemberCoupon.load,
    "PointsMallItem": PointsMallItem.load,
    "FailedJob": FailedJob.load,
}


def _parse(value: strawberry.ID) -> tuple[str, int] | None:
    try:
        gid = relay.GlobalID.from_id(str(value))
    except relay.GlobalIDValueError:
        return None
    if gid.type_name not in NODE_TYPES or not gid.node_id.isdigit() or len(gid.node_id) > 18:
        return None
    return gid.type_name, int(gid.node_id)


async def resolve_node(ctx: Context, value: strawberry.ID) -> relay.Node | None:
    parsed = _parse(value)
    if parsed is None:
        return None
    loaded: relay.Node | None = await NODE_TYPES[parsed[0]](ctx, parsed[1])
    return loaded


@strawberry.type
class NodeQuery:
    @strawberry.field(description="Any object by global id; null when it does not exist or is out of your scope.")
    async def node(self, info: strawberry.Info[Context, None], id: strawberry.ID) -> relay.Node | None:
        return await resolve_node(info.context, id)

    @strawberry.field(description="Many objects by global id, in the order asked; at most 100.")
    async def nodes(self, info: strawberry.Info[Context, None], ids: list[strawberry.ID]) -> list[relay.Node | None]:
        if len(ids) > MAX_PAGE:
            raise DomainError(ErrorCode.INVALID_INPUT, f"At most {MAX_PAGE} ids at once.", "ids")
        # Gathered, so ids of one type are fetched by one loader batch.
        return list(await asyncio.gather(*(resolve_node(info.context, i) for i in ids)))

"""Orders: the viewer and arguments in, service calls out."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from models import Fulfilment, Order, OrderStatus, Store
from resolvers.context import Context
from services import inventory, orders
from services.errors import AccessDenied, DomainError, ErrorCode
from services.members import may_see
from services.pagination import Page, keyset_page
from services.payments import PaymentProvider
from services.pricing import CartLine, Quote, quote
from services.scope import require_store


def provider(ctx: Context) -> PaymentProvider:
    for name in ("wechat", "sandbox"):
        if name in ctx.app.payment_providers:
            return ctx.app.payment_providers[name]
    raise DomainError(ErrorCode.INVALID_INPUT, "No payment provider is configured.")


async def price(ctx: Context, *, store_id: int, lines: list[CartLine], member_id: int | None) -> Quote:
    """A quote for the member signed in, or (at the POS) for a member the store knows, or a walk-in."""
    viewer = ctx.viewer
    if viewer.is_member:
        member_id = viewer.member_id
    async with ctx.read() as session:
        if await ctx.loaders.store_by_id.load(store_id) is None:
            raise DomainError(ErrorCode.NOT_FOUND, "No such store.", "storeId")
        if (
            member_id is not None
            and not viewer.is_member
            and not await may_see(session, viewer, member_id, "member.lookup")
        ):
            raise AccessDenied("Identify the member at this store first.")
        return await quote(session, store_id=store_id, lines=lines, member_id=member_id)


async def alternatives(ctx: Context, q: Quote) -> list[tuple[Store, float]]:
    """Where else the unavailable lines of a quote can be had, nearest first."""
    needs = {line.sku_id: line.quantity for line in q.lines if not line.available}
    if not needs:
        return []
    async with ctx.read() as session:
        return await inventory.stores_with_stock(session, near_store_id=q.store_id, needs=needs)


async def place(ctx: Context, request: orders.PlaceOrder) -> orders.Placed:
    ctx.audit_store_id = request.store_id
    return await orders.place_order(ctx.session, ctx.viewer, provider(ctx), request)


async def my_orders(ctx: Context, *, first: int | None, after: str | None) -> Page[Order]:
    async with ctx.read() as session:
        stmt = select(Order).where(Order.member_id == ctx.viewer.member_id)
        return await keyset_page(session, stmt, Order.id, first=first, after=after, descending=True)


async def store_orders(
    ctx: Context, store_id: int, *, status: OrderStatus | None, first: int | None, after: str | None
) -> Page[Order]:
    require_store(ctx.viewer, store_id, "order.read")
    async with ctx.read() as session:
        stmt = select(Order).where(Order.store_id == store_id)
        if status is not None:
            stmt = stmt.where(Order.status == status)
        return await keyset_page(session, stmt, Order.id, first=first, after=after, descending=True)


def place_request(
    store_id: int, lines: list[CartLine], key: str, pickup_at: datetime | None, use_points: int, use_stored_value: int
) -> orders.PlaceOrder:
    return orders.PlaceOrder(store_id=store_id, lines=lines, idempotency_key=key, fulfilment=Fulfilment.PICKUP,
                             pickup_at=pickup_at, use_points=use_points, use_stored_value=use_stored_value)  # fmt: skip

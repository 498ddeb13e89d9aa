"""Orders: the viewer and arguments in, service calls out."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from models import Fulfilment, Order, OrderStatus, Store, utcnow
from resolvers.context import Context
from services import inventory, orders
from services.errors import AccessDenied, DomainError, ErrorCode
from services.members import may_see
from services.pagination import Page, keyset_page
from services.payments import PaymentProvider
from services.pricing import CartLine, Quote, quote
from services.scope import require_store
from services.stores import is_open_at, next_opening


def provider(ctx: Context) -> PaymentProvider:
    for name in ("wechat", "sandbox"):
        if name in ctx.app.payment_providers:
            return ctx.app.payment_providers[name]
    raise DomainError(ErrorCode.INVALID_INPUT, "No payment provider is configured.")


async def price(
    ctx: Context,
    *,
    store_id: int,
    lines: list[CartLine],
    member_id: int | None,
    fulfilment: Fulfilment,
    coupon_id: int | None = None,
) -> Quote:
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
        return await quote(session, store_id=store_id, lines=lines, member_id=member_id, fulfilment=fulfilment,
                           coupon_id=coupon_id)  # fmt: skip


async def opening(ctx: Context, store_id: int) -> tuple[bool, datetime | None]:
    """Whether the store is open now, and when it next opens (now while open)."""
    store = await ctx.loaders.store_by_id.load(store_id)
    now = utcnow()
    return (False, None) if store is None else (is_open_at(store, now), next_opening(store, now))


async def alternatives(ctx: Context, q: Quote) -> list[tuple[Store, float]]:
    """Where else the unavailable lines of a quote can be had, nearest first."""
    needs = {line.sku_id: line.quantity for line in q.lines if not line.available}
    if not needs:
        return []
    async with ctx.read() as session:
        return await inventory.stores_with_stock(session, near_store_id=q.store_id, needs=needs)


async def place(ctx: Context, request: orders.PlaceOrder) -> orders.Placed:
    return await orders.place_order(ctx.session, ctx.viewer, provider(ctx), request, cipher=ctx.app.cipher)


def delivery_address(ctx: Context, sealed: bytes, store_id: int, member_id: int | None) -> orders.DeliveryAddress:
    """The member and the store's own order handlers (who call the rider's customer) see the phone; HQ, masked."""
    where = orders.open_delivery(ctx.app.cipher, sealed)
    viewer = ctx.viewer
    store_handler = viewer.store_id == store_id and viewer.can("order.pickup")
    if (viewer.is_member and viewer.member_id == member_id) or store_handler:
        return where
    return where.masked()


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

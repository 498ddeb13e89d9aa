"""Orders: the viewer and arguments in, service calls out. The values the order API's types are made of are
re-exported here (`X as X`) for schema/, which imports no service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any

from models import Fulfilment, Order, OrderLine, OrderStatus, Payment, Refund, Store, utcnow
from resolvers.context import Context
from services.access.scope import counter_store
from services.inventory import levels as inventory
from services.members import top_ups
from services.orders import exchanges, late_payments, listing, pos, refunds, settlement
from services.orders import lifecycle as orders
from services.orders import states as order_states
from services.orders.exchanges import Exchanged as Exchanged
from services.orders.exchanges import ExchangeRequest as ExchangeRequest
from services.orders.exchanges import Receipt as Receipt
from services.orders.lifecycle import DeliveryAddress as DeliveryAddress
from services.orders.lifecycle import Placed as Placed
from services.orders.lifecycle import PlaceOrder as PlaceOrder
from services.orders.listing import OrderFilter as OrderFilter
from services.orders.listing import TimelineEntry as TimelineEntry
from services.orders.listing import order_no as order_no
from services.orders.listing import total_of as total_of
from services.orders.pos import Tender as Tender
from services.orders.refunds import TENDERS as TENDERS
from services.orders.refunds import RefundPlan as RefundPlan
from services.orders.refunds import RefundRequest as RefundRequest
from services.org.stores import is_open_at, next_opening
from services.platform.errors import DomainError, ErrorCode
from services.platform.pagination import Page
from services.platform.payments import PaymentProvider, preferred_provider
from services.platform.payments import Prepay as Prepay
from services.pricing.engine import AppliedCoupon as AppliedCoupon
from services.pricing.engine import CartLine as CartLine
from services.pricing.engine import Quote as Quote
from services.pricing.engine import QuoteLine as QuoteLine


def provider(ctx: Context) -> PaymentProvider:
    return preferred_provider(ctx.app.payment_providers)


async def price(
    ctx: Context,
    *,
    store_id: int,
    lines: list[CartLine],
    member_id: int | None,
    fulfilment: Fulfilment,
    coupon_id: int | None = None,
    card_ids: list[int] | None = None,
) -> Quote:
    """A quote for the member signed in, or (at the POS) for a member the store knows, or a walk-in."""
    async with ctx.read() as session:
        if await ctx.loaders.store_by_id.load(store_id) is None:
            raise DomainError(ErrorCode.NOT_FOUND, "No such store.", "storeId")
        return await orders.quote_for(
            session,
            ctx.viewer,
            store_id=store_id,
            lines=lines,
            member_id=member_id,
            fulfilment=fulfilment,
            coupon_id=coupon_id,
            card_ids=card_ids or (),
        )


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
    return orders.delivery_for(ctx.app.cipher, ctx.viewer, sealed, store_id=store_id, member_id=member_id)


async def my_orders(ctx: Context, *, first: int | None, after: str | None) -> Page[Order]:
    async with ctx.read() as session:
        return await orders.member_orders(session, ctx.viewer, first=first, after=after)


async def order_list(
    ctx: Context, f: OrderFilter, *, store_id: int | None, first: int | None, after: str | None
) -> Page[Order]:
    async with ctx.read() as session:
        return await listing.list_orders(session, ctx.viewer, f, store_id=store_id, first=first, after=after)


async def orders_csv(ctx: Context, f: OrderFilter) -> str:
    async with ctx.read() as session:
        return await listing.orders_csv(session, ctx.viewer, f)


async def late_payments_page(
    ctx: Context, *, store_id: int | None, refunded: bool | None, first: int | None, after: str | None
) -> Page[Payment]:
    async with ctx.read() as session:
        return await late_payments.list_late(
            session, ctx.viewer, store_id=store_id, refunded=refunded, first=first, after=after
        )


async def refund_preview(ctx: Context, request: RefundRequest) -> RefundPlan:
    async with ctx.read() as session:
        return await refunds.preview(session, ctx.viewer, request)


def refundable_quantity(line: OrderLine, order_status: OrderStatus) -> int:
    return refunds.refundable_quantity(line, order_status)


async def day_settlement(ctx: Context, store_id: int, day: date) -> tuple[dict[str, Any], bool]:
    """A store's day: its figures, and whether HQ has closed it."""
    async with ctx.read() as session:
        return await settlement.settlement(session, ctx.viewer, store_id=store_id, day=day)


async def order_events(ctx: Context, store_id: int) -> AsyncIterator[dict[str, Any]]:
    """The store tablet's feed (the store's staff and HQ): each order change's payload."""
    async for event in ctx.app.broker.subscribe(order_states.store_feed(ctx.viewer, store_id)):
        yield event.payload


async def my_order_updates(ctx: Context) -> AsyncIterator[dict[str, Any]]:
    """The signed-in member's own orders as they change."""
    topic, member_id = order_states.member_feed(ctx.viewer)
    async for event in ctx.app.broker.subscribe(topic):
        if event.payload.get("memberId") == member_id:
            yield event.payload


# Mutations: all run in ctx.session, the mutation's one transaction.


async def close_settlement(ctx: Context, store_id: int, day: date) -> dict[str, Any]:
    return await settlement.close(ctx.session, ctx.viewer, store_id=store_id, day=day, now=utcnow())


async def top_up_online(
    ctx: Context, *, plan_id: int | None, amount: int | None, store_id: int | None, key: str
) -> top_ups.Started:
    return await top_ups.start(
        ctx.session, ctx.viewer, provider(ctx), plan_id=plan_id, amount=amount, store_id=store_id, idempotency_key=key
    )


async def cancel_my_order(ctx: Context, order_id: int) -> Order:
    return await orders.cancel_by_member(ctx.session, ctx.viewer, order_id, ctx.app.payment_providers)


async def pay_again(ctx: Context, order_id: int) -> orders.Placed:
    return await orders.pay_again(ctx.session, ctx.viewer, ctx.app.payment_providers, order_id)


async def pos_checkout(
    ctx: Context,
    *,
    store_id: int | None,
    client_order_id: str,
    lines: list[CartLine],
    tenders: list[Tender],
    member_id: int | None,
    use_points: int,
    coupon_id: int | None,
    card_ids: list[int] | None = None,
) -> Order:
    request = pos.Checkout(
        store_id=counter_store(ctx.viewer, store_id),
        client_order_id=client_order_id,
        lines=lines,
        tenders=tenders,
        member_id=member_id,
        use_points=use_points,
        coupon_id=coupon_id,
        card_ids=card_ids or (),
    )
    return await pos.checkout(ctx.session, ctx.viewer, request)


async def refund(ctx: Context, request: RefundRequest, key: str) -> tuple[Refund, Order]:
    """The refund, and its order as it stands after it."""
    made = await refunds.refund_order_once(
        ctx.session, ctx.viewer, ctx.app.payment_providers, request, idempotency_key=key
    )
    order = await ctx.session.get(Order, made.order_id, populate_existing=True)
    assert order is not None
    return made, order


async def exchange(ctx: Context, request: ExchangeRequest, key: str) -> tuple[Exchanged, Receipt]:
    """An exchange at the counter, and its receipt."""
    done = await exchanges.exchange_at_counter(
        ctx.session, ctx.viewer, ctx.app.payment_providers, ctx.app.member_codes, request, idempotency_key=key
    )
    return done, await exchanges.receipt(ctx.session, done)


async def mark_preparing(ctx: Context, order_id: int) -> Order:
    return await orders.mark_preparing(ctx.session, ctx.viewer, order_id)


async def mark_ready(ctx: Context, order_id: int) -> Order:
    return await orders.mark_ready(ctx.session, ctx.viewer, order_id)


async def dispatch(ctx: Context, order_id: int) -> Order:
    return await orders.dispatch(ctx.session, ctx.viewer, order_id)


async def confirm_delivery(ctx: Context, order_id: int) -> Order:
    return await orders.confirm_delivery(ctx.session, ctx.viewer, order_id)


async def verify_pickup(
    ctx: Context, *, store_id: int | None, code: str, key: str, quantities: dict[int, int] | None
) -> Order:
    return await orders.verify_pickup(
        ctx.session, ctx.viewer, store_id=counter_store(ctx.viewer, store_id), code=code, key=key, quantities=quantities
    )

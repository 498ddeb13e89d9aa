"""Cards (卡项): the viewer and arguments in, service calls out. The values the card API's inputs are made of are
re-exported here (`X as X`) for schema/, which imports no service."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from models import CardEntry, CardProduct, MemberCard, PaymentMethod
from resolvers.context import Context
from resolvers.orders import provider
from services.cards import cards, products, queries, sales
from services.cards.cards import Refunded as Refunded
from services.cards.products import ProductSpec as ProductSpec
from services.cards.queries import StoreCards as StoreCards
from services.cards.sales import Started as Started
from services.orders.pos import Tender
from services.platform.pagination import Page


async def card_products(ctx: Context) -> list[CardProduct]:
    async with ctx.read() as session:
        return await products.listed(session, ctx.viewer)


async def my_cards(ctx: Context, *, with_left: bool, first: int | None, after: str | None) -> Page[MemberCard]:
    async with ctx.read() as session:
        return await queries.my_cards(session, ctx.viewer, with_left=with_left, first=first, after=after)


async def member_cards(ctx: Context, member_id: int) -> list[MemberCard]:
    async with ctx.read() as session:
        return await queries.member_cards(session, ctx.viewer, member_id)


async def card_uses(ctx: Context, *, store_id: int, first: int | None, after: str | None) -> Page[CardEntry]:
    async with ctx.read() as session:
        return await queries.card_uses(session, ctx.viewer, store_id=store_id, first=first, after=after)


async def report(ctx: Context, *, since: date | None, until: date | None) -> list[StoreCards]:
    """Cards by store; the dates are whole days in UTC, `until` included."""
    start = datetime.combine(since, time.min, tzinfo=UTC) if since else None
    end = datetime.combine(until, time.max, tzinfo=UTC) if until else None
    async with ctx.read() as session:
        return await queries.report(session, ctx.viewer, since=start, until=end)


# Mutations: all run in ctx.session, the mutation's one transaction.


async def create_product(ctx: Context, spec: ProductSpec) -> CardProduct:
    return await products.create(ctx.session, ctx.viewer, spec)


async def sell(
    ctx: Context, *, member_id: int, product_id: int, store_id: int | None, tenders: list[Tender], key: str
) -> MemberCard:
    return await sales.sell_at_counter(
        ctx.session, ctx.viewer, member_id=member_id, product_id=product_id, store_id=store_id, tenders=tenders, key=key
    )


async def buy_online(ctx: Context, *, product_id: int, store_id: int, key: str) -> Started:
    return await sales.start_online(
        ctx.session, ctx.viewer, provider(ctx), product_id=product_id, store_id=store_id, key=key
    )


async def refund(ctx: Context, *, card_id: int, store_id: int | None, method: PaymentMethod, key: str) -> Refunded:
    return await cards.refund(ctx.session, ctx.viewer, card_id=card_id, store_id=store_id, method=method, key=key)


async def share_gift(ctx: Context, card_id: int) -> MemberCard:
    return await cards.share_gift(ctx.session, ctx.viewer, card_id)


async def redeem_gift(ctx: Context, *, code: str, key: str) -> MemberCard:
    return await cards.redeem_gift(ctx.session, ctx.viewer, code=code, key=key)

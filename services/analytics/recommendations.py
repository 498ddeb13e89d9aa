"""Recommendations (智能推荐) for the mini-program, in the store the member chose.

Three sources, in this order: bought together with what is in the cart (co-occurrence counted over recent
orders by a nightly job), for this member (what they buy again, then what they looked at in the mini-program, a
weaker signal, and what sells here in the categories they buy or look at), and
popular in this store this week. Cold start (no cart, no history) falls back to popular. Only SKUs on shelf
and available in that store are ever suggested, and never what is already in the cart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from models import (
    CatalogStatus,
    CoPurchase,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    ProductView,
    Sku,
    StockLevel,
    Store,
    StoreListing,
    StoreSkuDayFact,
    utcnow,
)
from services.access.scope import Viewer
from services.inventory.levels import available_expr
from services.platform import jobs
from services.platform.errors import DomainError, ErrorCode

WINDOW_DAYS = 90
SOLD = [s for s in OrderStatus if s not in (OrderStatus.CREATED, OrderStatus.CANCELLED)]


async def recompute_co_purchases(session: AsyncSession, now: datetime | None = None) -> int:
    """Count, over the last 90 days of paid orders, how many orders held each pair of SKUs (one statement)."""
    since = (now or utcnow()) - timedelta(days=WINDOW_DAYS)
    a, b = aliased(OrderLine), aliased(OrderLine)
    pairs = (
        select(a.sku_id, b.sku_id, func.count(func.distinct(a.order_id)))
        .join(b, and_(b.order_id == a.order_id, b.sku_id != a.sku_id))
        .join(Order, Order.id == a.order_id)
        .where(Order.paid_at >= since, Order.status.in_(SOLD))
        .group_by(a.sku_id, b.sku_id)
    )
    await session.execute(delete(CoPurchase))
    result = await session.execute(insert(CoPurchase).from_select(["sku_id", "other_sku_id", "orders"], pairs))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# The daily job runs it (registered here, in its own domain; services/registry.py imports this module).
jobs.daily("recs.copurchase", hour=4)(recompute_co_purchases)


@dataclass(frozen=True)
class Suggestion:
    sku_id: int
    reason: str  # BOUGHT_TOGETHER, FOR_YOU, POPULAR
    score: int


async def _available_here(session: AsyncSession, store_id: int, sku_ids: Sequence[int]) -> set[int]:
    if not sku_ids:
        return set()
    rows = await session.scalars(
        select(StoreListing.sku_id)
        .join(StockLevel, and_(StockLevel.store_id == StoreListing.store_id, StockLevel.sku_id == StoreListing.sku_id))
        .join(Sku, Sku.id == StoreListing.sku_id)
        .join(Product, Product.id == Sku.product_id)
        .where(
            StoreListing.store_id == store_id,
            StoreListing.sku_id.in_(list(set(sku_ids))),
            StoreListing.on_shelf.is_(True),
            available_expr() > 0,
            Sku.status == CatalogStatus.ACTIVE,
            Product.status == CatalogStatus.ACTIVE,
        )
    )
    return set(rows.all())


async def recommend(
    session: AsyncSession,
    viewer: Viewer,
    *,
    store_id: int,
    cart: Sequence[int],
    first: int = 10,
    now: datetime | None = None,
) -> list[Suggestion]:
    if not 1 <= first <= 50:
        raise DomainError(ErrorCode.INVALID_INPUT, "Ask for 1 to 50 suggestions.", "first")
    if await session.get(Store, store_id) is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such store.", "storeId")
    now = now or utcnow()
    pool = first * 5
    found: list[Suggestion] = []
    if cart:
        found += await _bought_together(session, cart, pool)
    if viewer.is_member and viewer.member_id is not None:
        found += await _for_you(session, viewer.member_id, store_id, now, pool)
    found += await _popular(session, store_id, now, pool)
    if len({s.sku_id for s in found}) < first:  # a new store with no sales yet: anything on its shelf
        shelf = await session.scalars(
            select(StoreListing.sku_id)
            .where(StoreListing.store_id == store_id, StoreListing.on_shelf.is_(True))
            .order_by(StoreListing.sku_id)
            .limit(pool)
        )
        found += [Suggestion(int(s), "POPULAR", 0) for s in shelf.all()]
    here = await _available_here(session, store_id, [s.sku_id for s in found])
    return _first_available(found, here, cart, first)


async def _bought_together(session: AsyncSession, cart: Sequence[int], pool: int) -> list[Suggestion]:
    together = await session.execute(
        select(CoPurchase.other_sku_id, func.sum(CoPurchase.orders).label("n"))
        .where(CoPurchase.sku_id.in_(list(cart)), CoPurchase.other_sku_id.notin_(list(cart)))
        .group_by(CoPurchase.other_sku_id)
        .order_by(func.sum(CoPurchase.orders).desc(), CoPurchase.other_sku_id)
        .limit(pool)
    )
    return [Suggestion(int(s), "BOUGHT_TOGETHER", int(n)) for s, n in together.all()]


async def _for_you(session: AsyncSession, member_id: int, store_id: int, now: datetime, pool: int) -> list[Suggestion]:
    """What the member bought in the last 180 days, most first, then what sells here in those categories."""
    history = (
        select(OrderLine.sku_id, Product.category_id, func.sum(OrderLine.quantity).label("n"))
        .join(Order, Order.id == OrderLine.order_id)
        .join(Sku, Sku.id == OrderLine.sku_id)
        .join(Product, Product.id == Sku.product_id)
        .where(Order.member_id == member_id, Order.status.in_(SOLD), Order.created_at >= now - timedelta(days=180))
        .group_by(OrderLine.sku_id, Product.category_id)
    )
    mine = (await session.execute(history)).all()
    found = [Suggestion(int(s), "FOR_YOU", int(n)) for s, _c, n in sorted(mine, key=lambda r: -r.n)]
    looked = await _viewed(session, member_id, now, pool)
    # Views are the weaker signal: what was looked at comes after what was bought, its categories count too.
    found += [Suggestion(int(s), "FOR_YOU", int(n)) for s, _c, n in looked]
    categories = {int(c) for _s, c, _n in mine} | {int(c) for _s, c, _n in looked}
    if categories:
        in_categories = (
            select(StoreSkuDayFact.sku_id, func.sum(StoreSkuDayFact.quantity).label("n"))
            .where(
                StoreSkuDayFact.store_id == store_id,
                StoreSkuDayFact.day >= (now - timedelta(days=28)).date(),
                StoreSkuDayFact.category_id.in_(categories),
            )
            .group_by(StoreSkuDayFact.sku_id)
            .order_by(func.sum(StoreSkuDayFact.quantity).desc())
            .limit(pool)
        )
        found += [Suggestion(int(s), "FOR_YOU", int(n)) for s, n in (await session.execute(in_categories)).all()]
    return found


async def _viewed(session: AsyncSession, member_id: int, now: datetime, pool: int) -> list[Any]:
    """The SKUs of the products the member looked at in the mini-program over the last 90 days, most viewed first."""
    views = func.count(func.distinct(ProductView.id))
    looked = await session.execute(
        select(Sku.id, Product.category_id, views.label("n"))
        .join(Product, Product.id == ProductView.product_id)
        .join(Sku, Sku.product_id == Product.id)
        .where(ProductView.member_id == member_id, ProductView.viewed_at >= now - timedelta(days=WINDOW_DAYS))
        .group_by(Sku.id, Product.category_id)
        .order_by(views.desc(), Sku.id)
        .limit(pool)
    )
    return list(looked.all())


async def _popular(session: AsyncSession, store_id: int, now: datetime, pool: int) -> list[Suggestion]:
    """What sold most in this store over the last week."""
    recent = (now - timedelta(days=7)).date()
    popular_here = (
        select(StoreSkuDayFact.sku_id, func.sum(StoreSkuDayFact.quantity).label("n"))
        .where(StoreSkuDayFact.store_id == store_id, StoreSkuDayFact.day >= recent)
        .group_by(StoreSkuDayFact.sku_id)
    )
    popular = await session.execute(
        popular_here.order_by(func.sum(StoreSkuDayFact.quantity).desc(), StoreSkuDayFact.sku_id).limit(pool)
    )
    return [Suggestion(int(s), "POPULAR", int(n)) for s, n in popular.all()]


def _first_available(found: list[Suggestion], here: set[int], cart: Sequence[int], first: int) -> list[Suggestion]:
    """The first `first` suggestions available here, each SKU once, none already in the cart."""
    chosen: list[Suggestion] = []
    seen = set(cart)
    for suggestion in found:
        if suggestion.sku_id in here and suggestion.sku_id not in seen:
            chosen.append(suggestion)
            seen.add(suggestion.sku_id)
        if len(chosen) == first:
            break
    return chosen

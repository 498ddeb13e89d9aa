"""Margin (利润率) and stores compared by city (按地区比较各门店业绩), read from the daily facts.

Cost is folded into the SKU facts (each order line keeps its unit cost at the time of sale; a refund takes back
that unit cost times the units it returns) and, summed, into each store's day, so gross profit is
(net - refunds) - (cost - refunded cost) for any store, day, category or product, and needs no order to be read.
Who sees it is decided here: HQ staff holding `catalog.view_cost`, a store's manager (their own store) only while
the chain setting `stores_see_margin` is on.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Member, Store
from services.access.permissions import Perm
from services.access.scope import Viewer
from services.org.settings import get_settings


def margin_inputs(viewer: Viewer) -> tuple[bool, bool, bool]:
    """What `sees_margin` decides by, besides the chain setting: viewers alike in these (and in their stores) see the
    same figures (services/analytics/report_cache.py, which forgets everything when the settings change)."""
    return viewer.can(Perm.REPORT_VIEW), viewer.is_hq, viewer.can(Perm.CATALOG_VIEW_COST)


async def sees_margin(session: AsyncSession, viewer: Viewer) -> bool:
    """The one rule for cost and margin in reports."""
    if not viewer.can(Perm.REPORT_VIEW):
        return False
    if viewer.is_hq:
        return viewer.can(Perm.CATALOG_VIEW_COST)
    return viewer.store_id is not None and (await get_settings(session)).stores_see_margin


@dataclass
class Cost:
    """Cost of goods sold and of goods refunded, fen."""

    cost: int = 0
    refunded_cost: int = 0

    @property
    def net_cost(self) -> int:
        return self.cost - self.refunded_cost

    def add(self, other: Cost) -> None:
        self.cost += other.cost
        self.refunded_cost += other.refunded_cost


def gross_profit(net_after_refunds: int, cost: Cost) -> int:
    return net_after_refunds - cost.net_cost


def margin_rate(net_after_refunds: int, cost: Cost) -> float | None:
    """Gross profit as a share of sales after refunds; None when nothing was sold."""
    if not net_after_refunds:
        return None
    return round(gross_profit(net_after_refunds, cost) / net_after_refunds, 4)


def cost_sums(model: Any) -> list[Any]:
    return [
        func.coalesce(func.sum(model.cost), 0).label("cost"),
        func.coalesce(func.sum(model.refunded_cost), 0).label("refunded_cost"),
    ]


@dataclass
class MemberPlace:
    """Members whose home store is a store (or in a city): all of them, and those who joined in the period."""

    key: str
    members: int
    new_members: int
    store_id: int | None = None


async def members_by_home(
    session: AsyncSession, stores: list[int] | None, since: Any, until: Any
) -> tuple[list[MemberPlace], list[MemberPlace]]:
    """Members by home store and by the home store's city (store scope: its own store's members only)."""
    new = func.sum(case(((Member.joined_at >= since) & (Member.joined_at < until), 1), else_=0))
    stmt = (
        select(Member.home_store_id, Store.city, func.count(), func.coalesce(new, 0))
        .join(Store, Store.id == Member.home_store_id)
        .where(Member.deleted_at.is_(None))
        .group_by(Member.home_store_id, Store.city)
    )
    if stores is not None:
        stmt = stmt.where(Member.home_store_id.in_(stores))
    by_store: list[MemberPlace] = []
    by_city: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for store_id, city, count, joined in (await session.execute(stmt)).all():
        by_store.append(MemberPlace(str(city), int(count), int(joined), int(store_id)))
        by_city[str(city)][0] += int(count)
        by_city[str(city)][1] += int(joined)
    cities = [MemberPlace(city, n, j) for city, (n, j) in sorted(by_city.items())]
    return sorted(by_store, key=lambda p: (-p.members, p.store_id or 0)), cities

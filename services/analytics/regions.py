"""Stores compared within and across cities (按地区比较各门店业绩): city totals, per-store averages, and each store's
rank within its city, from the same daily facts as every report.

HQ sees every city and every store in it. A store's manager sees only their own store's row, with its rank in
its city and how many stores the city has; the city's totals and averages (other stores' sales) stay hidden.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Store, StoreKind
from services.access.permissions import Perm
from services.access.scope import Viewer, require
from services.analytics.reports import Figures, check_metric, check_period, metric_value, per_store


@dataclass
class CityStore:
    store_id: int
    rank: int  # within its city, 1 = best by the metric
    figures: Figures


@dataclass
class City:
    city: str
    store_count: int
    rank: int  # the city among cities, by its total
    totals: Figures | None  # None for a store's viewer
    rows: list[CityStore] = field(default_factory=list)

    @property
    def average(self) -> Figures | None:
        """Per-store average of every measure (integer fen, rounded down)."""
        if self.totals is None or not self.store_count:
            return None
        t, n = self.totals, self.store_count
        return Figures(
            orders=t.orders // n,
            gmv=t.gmv // n,
            discounts=t.discounts // n,
            net=t.net // n,
            refunds=t.refunds // n,
            refund_count=t.refund_count // n,
            cost=t.cost // n,
            refunded_cost=t.refunded_cost // n,
        )


@dataclass
class Comparison:
    cities: list[City]
    margin_visible: bool


async def compare_cities(
    session: AsyncSession, viewer: Viewer, *, start: date, end: date, metric: str = "NET"
) -> Comparison:
    """Every city's stores ranked by `metric` over a period (every store counts, with zeros when it sold nothing)."""
    require(viewer, Perm.REPORT_VIEW)
    check_period(start, end)
    costed = await check_metric(session, viewer, metric)
    figures = await per_store(session, start, end, costed=costed)
    stores = (
        await session.execute(select(Store.id, Store.city).where(Store.kind == StoreKind.STORE).order_by(Store.id))
    ).all()  # warehouses sell nothing: they are no city's stores
    by_city: dict[str, list[CityStore]] = defaultdict(list)
    for store_id, city in stores:
        by_city[str(city)].append(CityStore(int(store_id), 0, figures.get(int(store_id), Figures())))
    cities: list[City] = []
    for name, rows in by_city.items():
        rows.sort(key=lambda r: (-metric_value(r.figures, metric), r.store_id))
        totals = Figures()
        for i, row in enumerate(rows):
            row.rank = i + 1
            totals.add(row.figures)
        cities.append(City(name, len(rows), 0, totals, rows))
    cities.sort(key=lambda c: (-metric_value(c.totals or Figures(), metric), c.city))
    for i, group in enumerate(cities):
        group.rank = i + 1
    if viewer.is_hq:
        return Comparison(cities, costed)
    own = [c for c in cities if any(r.store_id == viewer.store_id for r in c.rows)]
    return Comparison(
        [City(c.city, c.store_count, c.rank, None, [r for r in c.rows if r.store_id == viewer.store_id]) for c in own],
        costed,
    )

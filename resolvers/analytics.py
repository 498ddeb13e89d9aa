"""Reports and recommendations: each in a short read session of its own. The values reports are made of are
re-exported here (`X as X`) for schema/, which imports no service."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from models import Campaign, CouponTemplate, Store
from resolvers.context import Context
from services.access.permissions import Perm
from services.access.scope import require
from services.analytics import margin, recommendations, regions, report_cache, reports
from services.analytics.facts import Freshness as Freshness
from services.analytics.margin import MemberPlace as MemberPlace
from services.analytics.regions import City as City
from services.analytics.regions import Comparison as Comparison
from services.analytics.report_cache import Reads
from services.analytics.reports import Figures as Figures
from services.analytics.reports import Point as Point
from services.analytics.reports import Ranked as Ranked
from services.analytics.reports import SalesReport as SalesReport
from services.analytics.reports import period as period
from services.analytics.reports import to_csv as to_csv
from services.analytics.service import ServiceFigures as ServiceFigures
from services.org.stores import visible_condition


def _reads(stores: list[int] | None, start: date, end: date, pending: int = 0) -> Reads:
    """A report over start..end reads these stores' facts from the previous period's first day to its last."""
    first = reports.previous_period(start, end)[0]
    return Reads(None if stores is None else frozenset(stores), first, end, pending > 0)


async def sales(
    ctx: Context, *, store_id: int | None, start: date, end: date, granularity: str, top: int
) -> reports.SalesReport:
    """Shared by the viewers of one scope (the HQ dashboard) until a fold changes its facts: the scope is decided,
    and refused, here on every request before the cache is asked."""
    stores = reports.report_stores(ctx.viewer, store_id)
    reports.check_period(start, end)

    async def compute() -> reports.SalesReport:
        async with ctx.read() as session:
            return await reports.sales(
                session, ctx.viewer, store_id=store_id, start=start, end=end, granularity=granularity, top=top
            )

    key = ("sales", report_cache.scope(ctx.viewer, stores), start, end, granularity, top)
    return await ctx.app.report_cache.get(key, compute, lambda r: _reads(stores, start, end, r.freshness.pending))


async def ranking(
    ctx: Context, *, start: date, end: date, metric: str, first: int
) -> tuple[list[reports.StoreRank], dict[int, str], bool]:
    """The rows, the stores' codes, and whether the viewer sees their cost and margin; shared like `sales` (a store's
    place reads every store's facts, whoever asks)."""
    require(ctx.viewer, Perm.REPORT_VIEW)
    reports.check_period(start, end)

    async def compute() -> tuple[list[reports.StoreRank], dict[int, str], bool, list[Store]]:
        async with ctx.read() as session:
            rows = await reports.ranking(session, ctx.viewer, start=start, end=end, metric=metric, first=first)
            ids = [r.store_id for r in rows]
            codes = await reports.store_names(session, ids)
            stores = await session.scalars(select(Store).where(Store.id.in_(ids), visible_condition(ctx.viewer)))
            return rows, codes, await margin.sees_margin(session, ctx.viewer), list(stores.all())

    own = None if ctx.viewer.is_hq else [s for s in (ctx.viewer.store_id,) if s is not None]
    key = ("ranking", report_cache.scope(ctx.viewer, own), start, end, metric, first)
    rows, codes, shown, stores = await ctx.app.report_cache.get(key, compute, lambda _: _reads(None, start, end))
    # The rows' stores as the ranking read them (its viewers' scope sees the same stores): a dashboard names every
    # ranked store, and a shared answer then reads nothing. A store renamed since shows its new name when the
    # answer is next computed (the next fold of its facts, or the TTL).
    for store in stores:
        ctx.loaders.store_by_id.prime(store.id, store)
    return rows, codes, shown


async def cities(ctx: Context, *, start: date, end: date, metric: str) -> regions.Comparison:
    async with ctx.read() as session:
        return await regions.compare_cities(session, ctx.viewer, start=start, end=end, metric=metric)


async def inventory(
    ctx: Context, *, store_id: int | None, start: date, end: date
) -> tuple[list[reports.InventoryRow], dict[int, str]]:
    async with ctx.read() as session:
        rows = await reports.inventory(session, ctx.viewer, store_id=store_id, start=start, end=end)
        return rows, await reports.store_names(session, [r.store_id for r in rows])


async def members(ctx: Context, *, store_id: int | None, start: date, end: date) -> reports.MemberReport:
    async with ctx.read() as session:
        return await reports.members(session, ctx.viewer, store_id=store_id, start=start, end=end)


async def marketing(
    ctx: Context, *, store_id: int | None, start: date, end: date
) -> list[tuple[reports.MarketingRow, str]]:
    async with ctx.read() as session:
        rows = await reports.marketing(session, ctx.viewer, store_id=store_id, start=start, end=end)
        campaigns = dict(
            (
                await session.execute(
                    select(Campaign.id, Campaign.name).where(
                        Campaign.id.in_([r.source_id for r in rows if r.kind == "CAMPAIGN"])
                    )
                )
            ).all()
        )
        templates = dict(
            (
                await session.execute(
                    select(CouponTemplate.id, CouponTemplate.name).where(
                        CouponTemplate.id.in_([r.source_id for r in rows if r.kind == "COUPON"])
                    )
                )
            ).all()
        )
    return [(r, str((campaigns if r.kind == "CAMPAIGN" else templates).get(r.source_id, r.source_id))) for r in rows]


async def recommend(ctx: Context, *, store_id: int, cart: list[int], first: int) -> list[recommendations.Suggestion]:
    async with ctx.read() as session:
        return await recommendations.recommend(session, ctx.viewer, store_id=store_id, cart=cart, first=first)

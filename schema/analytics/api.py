"""Report root fields: the same reports for HQ (any store) and a store (itself), CSV, recommendations."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry

from resolvers import Perm
from resolvers import analytics as report_resolvers
from resolvers.analytics import period
from resolvers.context import Context
from schema.analytics.types import (
    CityComparison,
    Granularity,
    InventoryReport,
    InventoryRow,
    LabelCount,
    MarketingReport,
    MarketingReportRow,
    MemberPlaceCount,
    MemberReport,
    RankMetric,
    Recommendation,
    RecommendationContext,
    SalesFigures,
    SalesReport,
    StoreRanking,
    StoreRankRow,
    city_comparison,
)
from schema.core.common import Long, decode_id, decode_optional_id
from schema.core.permissions import requires


@strawberry.type
class ReportQuery:
    @strawberry.field(
        extensions=requires(Perm.REPORT_VIEW), description="Sales; HQ: all stores or one, a store: itself"
    )
    async def sales_report(
        self,
        info: strawberry.Info[Context, None],
        store_id: strawberry.ID | None = None,
        from_: Annotated[date | None, strawberry.argument(name="from")] = None,
        to: date | None = None,
        granularity: Granularity = Granularity.DAY,
        top: int = 10,
    ) -> SalesReport:
        start, end = period(from_, to)
        report = await report_resolvers.sales(
            info.context,
            store_id=decode_optional_id(store_id, "Store", "storeId"),
            start=start,
            end=end,
            granularity=granularity.value,
            top=max(1, min(top, 50)),
        )
        return SalesReport.of(report)

    @strawberry.field(extensions=requires(Perm.REPORT_VIEW), description="Stores ranked; a store sees its own row")
    async def store_ranking(
        self,
        info: strawberry.Info[Context, None],
        from_: Annotated[date | None, strawberry.argument(name="from")] = None,
        to: date | None = None,
        metric: RankMetric = RankMetric.NET,
        first: int = 20,
    ) -> StoreRanking:
        start, end = period(from_, to)
        rows, codes, shown = await report_resolvers.ranking(
            info.context, start=start, end=end, metric=metric.value, first=first
        )
        return StoreRanking(
            rows=[
                StoreRankRow(
                    rank=r.rank,
                    figures=SalesFigures.of(r.figures, shown),
                    previous=SalesFigures.of(r.previous, shown),
                    store_id=r.store_id,
                    period=(start, end),
                )
                for r in rows
            ],
            codes=codes,
            margin_visible=shown,
        )

    @strawberry.field(
        extensions=requires(Perm.REPORT_VIEW),
        description="Stores compared within and across cities: city totals, per-store averages, each store's rank "
        "in its city (a store's manager: their own store's rank only)",
    )
    async def city_comparison(
        self,
        info: strawberry.Info[Context, None],
        from_: Annotated[date | None, strawberry.argument(name="from")] = None,
        to: date | None = None,
        metric: RankMetric = RankMetric.NET,
    ) -> list[CityComparison]:
        start, end = period(from_, to)
        return city_comparison(await report_resolvers.cities(info.context, start=start, end=end, metric=metric.value))

    @strawberry.field(extensions=requires(Perm.REPORT_VIEW))
    async def inventory_report(
        self,
        info: strawberry.Info[Context, None],
        store_id: strawberry.ID | None = None,
        from_: Annotated[date | None, strawberry.argument(name="from")] = None,
        to: date | None = None,
    ) -> InventoryReport:
        start, end = period(from_, to)
        rows, codes = await report_resolvers.inventory(
            info.context, store_id=decode_optional_id(store_id, "Store", "storeId"), start=start, end=end
        )
        return InventoryReport(
            rows=[
                InventoryRow(
                    on_hand=Long(r.on_hand),
                    listed=r.listed,
                    out_of_stock=r.out_of_stock,
                    stockout_rate=r.stockout_rate,
                    low_stock=r.low_stock,
                    sold=Long(r.sold),
                    turnover_days=r.turnover_days,
                    transferred_in=r.transferred_in,
                    transferred_out=r.transferred_out,
                    store_id=r.store_id,
                )
                for r in rows
            ],
            codes=codes,
        )

    @strawberry.field(extensions=requires(Perm.REPORT_VIEW))
    async def member_report(
        self,
        info: strawberry.Info[Context, None],
        store_id: strawberry.ID | None = None,
        from_: Annotated[date | None, strawberry.argument(name="from")] = None,
        to: date | None = None,
    ) -> MemberReport:
        start, end = period(from_, to)
        r = await report_resolvers.members(
            info.context, store_id=decode_optional_id(store_id, "Store", "storeId"), start=start, end=end
        )
        return MemberReport(
            new_members=[LabelCount(label=d, count=c) for d, c in r.new_members],
            total_members=r.total_members,
            active_members=r.active_members,
            repurchase_rate=r.repurchase_rate,
            levels=[LabelCount(label=n, count=c) for n, c in r.levels],
            segments=[LabelCount(label=n, count=c) for n, c in r.segments],
            stored_value_outstanding=Long(r.stored_value_outstanding),
            by_home_store=[MemberPlaceCount.of(p) for p in r.by_home_store],
            by_city=[MemberPlaceCount.of(p) for p in r.by_city],
        )

    @strawberry.field(extensions=requires(Perm.REPORT_VIEW), description="Every campaign's and coupon's cost and reach")
    async def marketing_report(
        self,
        info: strawberry.Info[Context, None],
        store_id: strawberry.ID | None = None,
        from_: Annotated[date | None, strawberry.argument(name="from")] = None,
        to: date | None = None,
    ) -> MarketingReport:
        start, end = period(from_, to)
        rows = await report_resolvers.marketing(
            info.context, store_id=decode_optional_id(store_id, "Store", "storeId"), start=start, end=end
        )
        return MarketingReport(
            rows=[
                MarketingReportRow(
                    kind=r.kind, name=name, orders=r.orders, discount=Long(r.discount), members=r.members
                )
                for r, name in rows
            ]
        )


@strawberry.type
class RecommendationQuery:
    @strawberry.field(description="智能推荐 in a store: on shelf and available there only.")
    async def recommendations(
        self,
        info: strawberry.Info[Context, None],
        store_id: strawberry.ID,
        context: RecommendationContext | None = None,
        first: int = 10,
    ) -> list[Recommendation]:
        cart = [decode_id(s, "Sku", f"context.skuIds[{i}]") for i, s in enumerate(context.sku_ids if context else [])]
        found = await report_resolvers.recommend(
            info.context, store_id=decode_id(store_id, "Store", "storeId"), cart=cart, first=first
        )
        return [Recommendation(reason=s.reason, score=s.score, sku_id=s.sku_id) for s in found]

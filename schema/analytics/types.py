"""Report types: chart-ready series and totals, store ranking, top products, freshness of the facts."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Self

import strawberry

from resolvers import AccessDenied
from resolvers.analytics import City, Comparison, Figures, MemberPlace, Point, Ranked, ServiceFigures, to_csv
from resolvers.analytics import Freshness as FreshnessValue
from resolvers.analytics import SalesReport as SalesReportValue
from resolvers.context import Context
from schema.catalog.types import Sku
from schema.core.common import Long
from schema.org.types import Store


@strawberry.enum
class Granularity(Enum):
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"


@strawberry.enum
class RankMetric(Enum):
    NET = "NET"
    GMV = "GMV"
    ORDERS = "ORDERS"
    AVERAGE_ORDER_VALUE = "AVERAGE_ORDER_VALUE"
    REFUNDS = "REFUNDS"
    DISCOUNTS = "DISCOUNTS"
    GROSS_PROFIT = "GROSS_PROFIT"


@strawberry.type(description="How current the facts behind a report are: complete up to `asOf`.")
class Freshness:
    as_of: datetime
    pending_events: int

    @classmethod
    def of(cls, f: FreshnessValue) -> Self:
        return cls(as_of=f.as_of, pending_events=f.pending)


MARGIN_HIDDEN = "Cost and margin are not shown to this role."


@strawberry.type
class CostShown:
    """Cost, gross profit and margin: FORBIDDEN unless the viewer sees margin (HQ with catalog.view_cost, a store
    while the chain setting stores_see_margin is on); null where no cost is kept (by hour, channel, fulfilment)."""

    visible: strawberry.Private[bool]
    costed: strawberry.Private[bool]
    value: strawberry.Private[Figures | Ranked]

    def _shown(self) -> Figures | Ranked | None:
        if not self.visible:
            raise AccessDenied(MARGIN_HIDDEN)
        return self.value if self.costed else None

    @strawberry.field(description="Cost of the goods sold (each line's unit cost at the time of sale), fen")
    def cost(self) -> Long | None:
        v = self._shown()
        return None if v is None else Long(v.cost)

    @strawberry.field(description="Cost of the goods refunded (the same unit cost x units refunded), fen")
    def refunded_cost(self) -> Long | None:
        v = self._shown()
        return None if v is None else Long(v.refunded_cost)

    @strawberry.field(description="毛利: (net - refunds) - (cost - refunded cost), fen")
    def gross_profit(self) -> Long | None:
        v = self._shown()
        return None if v is None else Long(v.gross_profit)

    @strawberry.field(description="利润率: gross profit / (net - refunds), a fraction; null when nothing was sold")
    def margin(self) -> float | None:
        v = self._shown()
        return None if v is None else v.margin


@strawberry.type(
    description="Sales figures in fen (orders a count). net = after discounts; refunds the day they happen."
)
class SalesFigures(CostShown):
    orders: int
    gmv: Long
    discounts: Long
    net: Long
    refunds: Long
    refund_count: int
    average_order_value: int
    net_after_refunds: Long

    @classmethod
    def of(cls, f: Figures, visible: bool = False, costed: bool = True) -> Self:
        return cls(
            orders=f.orders,
            gmv=Long(f.gmv),
            discounts=Long(f.discounts),
            net=Long(f.net),
            refunds=Long(f.refunds),
            refund_count=f.refund_count,
            average_order_value=f.average_order_value,
            net_after_refunds=Long(f.net_after_refunds),
            visible=visible,
            costed=costed,
            value=f,
        )


@strawberry.type(description="One point of a chart: a label (day, week start, month, hour, channel) and its figures.")
class SalesPoint:
    label: str
    figures: SalesFigures

    @classmethod
    def of(cls, p: Point, visible: bool = False, costed: bool = True) -> Self:
        return cls(label=p.label, figures=SalesFigures.of(p.figures, visible, costed))


@strawberry.type
class RankedItem(CostShown):
    label: str
    quantity: Long
    net: Long
    refunds: Long
    key: strawberry.Private[int]
    is_sku: strawberry.Private[bool]

    @strawberry.field(description="The SKU (top products only)")
    async def sku(self, info: strawberry.Info[Context, None]) -> Sku | None:
        return await Sku.load(info.context, self.key) if self.is_sku else None


def _ranked(rows: list[Ranked], is_sku: bool, visible: bool) -> list[RankedItem]:
    return [
        RankedItem(
            label=r.label,
            quantity=Long(r.quantity),
            net=Long(r.net),
            refunds=Long(r.refunds),
            key=r.key,
            is_sku=is_sku,
            visible=visible,
            costed=True,
            value=r,
        )
        for r in rows
    ]


def _change(now: int, before: int) -> float | None:
    return round((now - before) / before, 4) if before else None


@strawberry.type
class SalesReport:
    from_: date = strawberry.field(name="from")
    to: date
    totals: SalesFigures
    previous: SalesFigures = strawberry.field(description="The period of the same length just before")
    net_change: float | None = strawberry.field(description="Net sales against the previous period, as a fraction")
    series: list[SalesPoint]
    by_hour: list[SalesPoint]
    by_channel: list[SalesPoint]
    by_fulfilment: list[SalesPoint]
    by_category: list[RankedItem]
    top_products: list[RankedItem]
    freshness: Freshness
    report: strawberry.Private[SalesReportValue]

    @classmethod
    def of(cls, r: SalesReportValue) -> Self:
        shown = r.margin_visible
        return cls(
            from_=r.start,
            to=r.end,
            totals=SalesFigures.of(r.totals, shown),
            previous=SalesFigures.of(r.previous, shown),
            net_change=_change(r.totals.net, r.previous.net),
            series=[SalesPoint.of(p, shown) for p in r.series],
            by_hour=[SalesPoint.of(p, shown, costed=False) for p in r.by_hour],
            by_channel=[SalesPoint.of(p, shown, costed=False) for p in r.by_channel],
            by_fulfilment=[SalesPoint.of(p, shown, costed=False) for p in r.by_fulfilment],
            by_category=_ranked(r.by_category, False, shown),
            top_products=_ranked(r.top_products, True, shown),
            freshness=Freshness.of(r.freshness),
            report=r,
        )

    @strawberry.field(description="The series as CSV (with cost and gross profit for viewers who see margin)")
    def csv(self) -> str:
        header = ["period", "orders", "gmv", "discounts", "net", "refunds", "net_after_refunds"]
        shown = self.report.margin_visible
        header += ["cost", "refunded_cost", "gross_profit"] if shown else []
        rows = [
            (
                p.label,
                p.figures.orders,
                p.figures.gmv,
                p.figures.discounts,
                p.figures.net,
                p.figures.refunds,
                p.figures.net_after_refunds,
                *((p.figures.cost, p.figures.refunded_cost, p.figures.gross_profit) if shown else ()),
            )
            for p in self.report.series
        ]
        return to_csv(header, rows)


@strawberry.type
class StoreRankRow:
    rank: int
    figures: SalesFigures
    previous: SalesFigures
    store_id: strawberry.Private[int]
    period: strawberry.Private[tuple[date, date] | None] = None

    @strawberry.field
    async def store(self, info: strawberry.Info[Context, None]) -> Store | None:
        return await Store.load(info.context, self.store_id)

    @strawberry.field(description="Complaints and ratings of the store over the period, next to its sales")
    async def service(self, info: strawberry.Info[Context, None]) -> StoreService | None:
        if self.period is None:
            return None
        return StoreService.of(await info.context.loaders.store_service.load((self.store_id, *self.period)))


@strawberry.type(description="After-sales figures of a store over a period")
class StoreService:
    complaints: int = strawberry.field(description="Complaints filed")
    ratings: int = strawberry.field(description="Ratings given")
    average_rating: float | None = strawberry.field(description="Average stars, 1-5 (null: no ratings)")

    @classmethod
    def of(cls, f: ServiceFigures) -> Self:
        return cls(complaints=f.complaints, ratings=f.ratings, average_rating=f.average_rating)


@strawberry.type
class StoreRanking:
    rows: list[StoreRankRow]
    codes: strawberry.Private[dict[int, str]]
    margin_visible: strawberry.Private[bool] = False

    @strawberry.field
    def csv(self) -> str:
        header = ["rank", "store", "orders", "gmv", "net", "refunds", "average_order_value", "previous_net"]
        shown = self.margin_visible
        header += ["gross_profit"] if shown else []
        return to_csv(
            header,
            [
                (
                    r.rank,
                    self.codes.get(r.store_id, r.store_id),
                    r.figures.orders,
                    r.figures.gmv,
                    r.figures.net,
                    r.figures.refunds,
                    r.figures.average_order_value,
                    r.previous.net,
                    *((r.figures.value.gross_profit,) if shown else ()),
                )
                for r in self.rows
            ],
        )


@strawberry.type(description="A store within its city: its rank there (1 = best by the metric) and its figures")
class CityStoreRow:
    rank_in_city: int
    figures: SalesFigures
    store_id: strawberry.Private[int]

    @strawberry.field
    async def store(self, info: strawberry.Info[Context, None]) -> Store | None:
        return await Store.load(info.context, self.store_id)


@strawberry.type(description="A city's stores compared (a store's manager: their own row only, no city totals)")
class CityComparison:
    city: str
    store_count: int = strawberry.field(description="Stores in the city")
    rank: int = strawberry.field(description="The city among cities, by its total")
    totals: SalesFigures | None = strawberry.field(description="The city's stores together (HQ only)")
    average_per_store: SalesFigures | None = strawberry.field(description="Per-store average (HQ only)")
    stores: list[CityStoreRow]

    @classmethod
    def of(cls, c: City, visible: bool) -> Self:
        average = c.average
        return cls(
            city=c.city,
            store_count=c.store_count,
            rank=c.rank,
            totals=None if c.totals is None else SalesFigures.of(c.totals, visible),
            average_per_store=None if average is None else SalesFigures.of(average, visible),
            stores=[
                CityStoreRow(rank_in_city=r.rank, figures=SalesFigures.of(r.figures, visible), store_id=r.store_id)
                for r in c.rows
            ],
        )


def city_comparison(value: Comparison) -> list[CityComparison]:
    return [CityComparison.of(c, value.margin_visible) for c in value.cities]


@strawberry.type
class InventoryRow:
    on_hand: Long
    listed: int = strawberry.field(description="SKUs on shelf")
    out_of_stock: int
    stockout_rate: float = strawberry.field(description="Share of on-shelf SKUs with nothing available")
    low_stock: int
    sold: Long = strawberry.field(description="Units sold in the period, net of refunds")
    turnover_days: float | None = strawberry.field(description="Days the stock on hand lasts at the period's pace")
    transferred_in: int
    transferred_out: int
    store_id: strawberry.Private[int]

    @strawberry.field
    async def store(self, info: strawberry.Info[Context, None]) -> Store | None:
        return await Store.load(info.context, self.store_id)


@strawberry.type
class InventoryReport:
    rows: list[InventoryRow]
    codes: strawberry.Private[dict[int, str]]

    @strawberry.field
    def csv(self) -> str:
        header = [
            "store",
            "on_hand",
            "listed",
            "out_of_stock",
            "stockout_rate",
            "low_stock",
            "sold",
            "turnover_days",
            "transferred_in",
            "transferred_out",
        ]
        return to_csv(
            header,
            [
                (
                    self.codes.get(r.store_id, r.store_id),
                    r.on_hand,
                    r.listed,
                    r.out_of_stock,
                    r.stockout_rate,
                    r.low_stock,
                    r.sold,
                    r.turnover_days,
                    r.transferred_in,
                    r.transferred_out,
                )
                for r in self.rows
            ],
        )


@strawberry.type
class LabelCount:
    label: str
    count: int


@strawberry.type(description="Members whose home store is this store (or in this city)")
class MemberPlaceCount:
    city: str
    members: int
    new_members: int = strawberry.field(description="Of them, joined in the period")
    store_id: strawberry.Private[int | None]

    @strawberry.field(description="The home store (null for a city's row)")
    async def store(self, info: strawberry.Info[Context, None]) -> Store | None:
        return None if self.store_id is None else await Store.load(info.context, self.store_id)

    @classmethod
    def of(cls, p: MemberPlace) -> Self:
        return cls(city=p.key, members=p.members, new_members=p.new_members, store_id=p.store_id)


@strawberry.type
class MemberReport:
    new_members: list[LabelCount] = strawberry.field(description="New members by day (chain time)")
    total_members: int
    active_members: int = strawberry.field(description="Members who bought in the period")
    repurchase_rate: float = strawberry.field(description="Of members who bought, the share who bought again")
    levels: list[LabelCount]
    segments: list[LabelCount] = strawberry.field(description="RFM segments")
    stored_value_outstanding: Long = strawberry.field(description="Stored value still owed to members, fen")
    by_home_store: list[MemberPlaceCount] = strawberry.field(description="Members by home store (a store: its own)")
    by_city: list[MemberPlaceCount] = strawberry.field(description="Members by their home store's city")

    @strawberry.field
    def csv(self) -> str:
        rows = [("new_members", x.label, x.count) for x in self.new_members]
        rows += [("level", x.label, x.count) for x in self.levels] + [
            ("segment", x.label, x.count) for x in self.segments
        ]
        rows += [
            ("total", "members", self.total_members),
            ("total", "active", self.active_members),
            ("total", "stored_value_outstanding", self.stored_value_outstanding),
        ]
        return to_csv(["kind", "label", "value"], rows)


@strawberry.type
class MarketingReportRow:
    kind: str = strawberry.field(description="CAMPAIGN or COUPON")
    name: str
    orders: int
    discount: Long
    members: int


@strawberry.type
class MarketingReport:
    rows: list[MarketingReportRow]

    @strawberry.field
    def csv(self) -> str:
        return to_csv(
            ["kind", "name", "orders", "discount", "members"],
            [(r.kind, r.name, r.orders, r.discount, r.members) for r in self.rows],
        )


@strawberry.type
class Recommendation:
    reason: str = strawberry.field(description="BOUGHT_TOGETHER, FOR_YOU or POPULAR")
    score: int
    sku_id: strawberry.Private[int]

    @strawberry.field
    async def sku(self, info: strawberry.Info[Context, None]) -> Sku | None:
        return await Sku.load(info.context, self.sku_id)


@strawberry.input
class RecommendationContext:
    sku_ids: list[strawberry.ID] = strawberry.field(default_factory=list, description="What is in the cart")

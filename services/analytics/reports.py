"""Reports HQ and stores can trust: read from the daily facts (services/analytics/facts.py), scoped in one place.

HQ (`report.view` at HQ scope) sees every store or one; a store's manager sees only their own store, in every
report. Periods are inclusive ranges of business days (each store's local day); every report also gives the
previous period of the same length, and says how current its facts are.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    BalanceLot,
    Category,
    ChainDayFact,
    ChainHourFact,
    Member,
    MemberLevel,
    MemberStore,
    Order,
    OrderPromotion,
    OrderStatus,
    Sku,
    SkuDayFact,
    StockLevel,
    Store,
    StoreDayFact,
    StoreHourFact,
    StoreListing,
    StoreSkuDayFact,
    Transfer,
    TransferLine,
)
from services.access.permissions import Perm
from services.access.scope import Viewer, require
from services.analytics.facts import Freshness, freshness
from services.analytics.margin import (
    Cost,
    MemberPlace,
    cost_sums,
    gross_profit,
    margin_rate,
    members_by_home,
    sees_margin,
)
from services.inventory.levels import available_expr, threshold_expr
from services.org.settings import get_settings
from services.platform.config import CHAIN_TZ
from services.platform.errors import AccessDenied, DomainError, ErrorCode
from services.platform.validation import EARLIEST_DAY, LATEST_DAY

MAX_DAYS = 366
EARLIEST, LATEST = EARLIEST_DAY, LATEST_DAY
GRANULARITIES = ("DAY", "WEEK", "MONTH")


def report_stores(viewer: Viewer, store_id: int | None) -> list[int] | None:
    """The one scope rule for reports: None means every store (HQ only)."""
    require(viewer, Perm.REPORT_VIEW)
    if viewer.is_hq:
        return None if store_id is None else [store_id]
    if store_id not in (None, viewer.store_id) or viewer.store_id is None:
        raise AccessDenied("This belongs to another store.")
    return [viewer.store_id]


def check_period(start: date, end: date) -> None:
    if not (EARLIEST <= start <= LATEST and EARLIEST <= end <= LATEST):
        raise DomainError(ErrorCode.INVALID_INPUT, f"Dates are {EARLIEST} to {LATEST}.", "from")
    if end < start:
        raise DomainError(ErrorCode.INVALID_INPUT, "The period ends before it starts.", "to")
    if (end - start).days + 1 > MAX_DAYS:
        raise DomainError(ErrorCode.INVALID_INPUT, f"A report covers at most {MAX_DAYS} days.", "to")


def previous_period(start: date, end: date) -> tuple[date, date]:
    length = (end - start).days + 1
    return start - timedelta(days=length), start - timedelta(days=1)


@dataclass
class Figures:
    orders: int = 0
    gmv: int = 0
    discounts: int = 0
    net: int = 0
    refunds: int = 0
    refund_count: int = 0
    # From the SKU facts, filled only for viewers who see margin (services/analytics/margin.py).
    cost: int = 0
    refunded_cost: int = 0

    @property
    def average_order_value(self) -> int:
        return self.net // self.orders if self.orders else 0

    @property
    def net_after_refunds(self) -> int:
        return self.net - self.refunds

    @property
    def costs(self) -> Cost:
        return Cost(self.cost, self.refunded_cost)

    @property
    def gross_profit(self) -> int:
        return gross_profit(self.net_after_refunds, self.costs)

    @property
    def margin(self) -> float | None:
        return margin_rate(self.net_after_refunds, self.costs)

    def with_cost(self, cost: Cost | None) -> Figures:
        if cost is not None:
            self.cost, self.refunded_cost = cost.cost, cost.refunded_cost
        return self

    def add(self, other: Figures) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


@dataclass
class Point:
    label: str
    figures: Figures


@dataclass
class Ranked:
    key: int
    label: str
    quantity: int
    net: int
    refunds: int
    cost: int = 0
    refunded_cost: int = 0

    @property
    def gross_profit(self) -> int:
        return gross_profit(self.net - self.refunds, Cost(self.cost, self.refunded_cost))

    @property
    def margin(self) -> float | None:
        return margin_rate(self.net - self.refunds, Cost(self.cost, self.refunded_cost))


@dataclass
class SalesReport:
    start: date
    end: date
    totals: Figures
    previous: Figures
    series: list[Point]
    by_hour: list[Point]
    by_channel: list[Point]
    by_fulfilment: list[Point]
    by_category: list[Ranked]
    top_products: list[Ranked]
    freshness: Freshness
    margin_visible: bool = False


_MEASURES = ("orders", "gmv", "discounts", "net", "refunds", "refund_count")


def _sums(model: Any) -> list[Any]:
    return [func.coalesce(func.sum(getattr(model, m)), 0).label(m) for m in _MEASURES]


def _figures(row: Any) -> Figures:
    return Figures(**{m: int(getattr(row, m)) for m in _MEASURES})


def bucket(day: date, granularity: str) -> str:
    if granularity == "WEEK":
        return (day - timedelta(days=day.weekday())).isoformat()
    if granularity == "MONTH":
        return day.replace(day=1).isoformat()
    return day.isoformat()


def _where_days(model: Any, stores: list[int] | None, start: date, end: date) -> list[Any]:
    where = [model.day >= start, model.day <= end]
    if stores is not None and hasattr(model, "store_id"):
        where.append(model.store_id.in_(stores))
    return where


def _day_model(stores: list[int] | None) -> Any:
    """The chain's days for the whole chain (a few rows a day), the store days for some stores."""
    return ChainDayFact if stores is None else StoreDayFact


async def _totals(session: AsyncSession, stores: list[int] | None, start: date, end: date, *, costed: bool) -> Figures:
    model = _day_model(stores)
    where = _where_days(model, stores, start, end)
    row = (await session.execute(select(*_sums(model), *cost_sums(model)).where(*where))).one()
    return _store_figures(row, costed)


async def _ranked_skus(
    session: AsyncSession, stores: list[int] | None, start: date, end: date, *, first: int
) -> tuple[list[Ranked], list[Ranked]]:
    """Categories and products ranked by net sales, from one pass over the SKU facts (summed per SKU in the database,
    a row per SKU sold), then named."""
    model: Any = SkuDayFact if stores is None else StoreSkuDayFact
    measures = ("quantity", "net", "refunds", "cost", "refunded_cost")
    rows = (
        await session.execute(
            select(model.sku_id, model.category_id, *(func.sum(getattr(model, m)).label(m) for m in measures))
            .where(*_where_days(model, stores, start, end))
            .group_by(model.sku_id, model.category_id)
        )
    ).all()
    totals: dict[str, dict[int, list[int]]] = {
        "category": defaultdict(lambda: [0] * 5),
        "sku": defaultdict(lambda: [0] * 5),
    }
    for row in rows:
        for kind, key in (("category", row.category_id), ("sku", row.sku_id)):
            sums = totals[kind][int(key)]
            for i, m in enumerate(measures):
                sums[i] += int(getattr(row, m))

    async def ranked(kind: str, name: Any, key: Any) -> list[Ranked]:
        top = sorted(totals[kind].items(), key=lambda kv: (-kv[1][1], kv[0]))[:first]
        labels: dict[int, str] = {}
        if top:
            labels = {
                int(k): str(v) for k, v in (await session.execute(select(key, name).where(key.in_(dict(top))))).all()
            }
        return [Ranked(k, labels.get(k, ""), *sums) for k, sums in top]

    return await ranked("category", Category.name, Category.id), await ranked("sku", Sku.barcode, Sku.id)


async def _days(
    session: AsyncSession, stores: list[int] | None, start: date, end: date, granularity: str, costed: bool
) -> tuple[dict[str, Figures], dict[str, list[Point]]]:
    """The period's days summed per day, channel and fulfilment in one pass: the series in DAY, WEEK or MONTH buckets
    (with cost when `costed`), and the split by channel and by fulfilment (no cost: it is kept per day)."""
    model = _day_model(stores)
    rows = (
        await session.execute(
            select(model.day, model.channel, model.fulfilment, *_sums(model), *cost_sums(model))
            .where(*_where_days(model, stores, start, end))
            .group_by(model.day, model.channel, model.fulfilment)
            .order_by(model.day)
        )
    ).all()
    series: dict[str, Figures] = {}
    split: dict[str, dict[str, Figures]] = {"channel": {}, "fulfilment": {}}
    for row in rows:
        series.setdefault(bucket(row.day, granularity), Figures()).add(_store_figures(row, costed))
        for dimension, points in split.items():
            points.setdefault(str(getattr(row, dimension)), Figures()).add(_figures(row))
    return series, {d: [Point(k, f) for k, f in sorted(points.items())] for d, points in split.items()}


async def _sales_by_hour(session: AsyncSession, stores: list[int] | None, start: date, end: date) -> dict[int, Figures]:
    """Orders and net per hour of the day (chain-wide facts when no store scope)."""
    hourly: Any = ChainHourFact if stores is None else StoreHourFact
    hours = (
        await session.execute(
            select(hourly.hour, func.sum(hourly.orders), func.sum(hourly.net))
            .where(*_where_days(hourly, stores, start, end))
            .group_by(hourly.hour)
        )
    ).all()
    return {int(h): Figures(orders=int(o), net=int(n)) for h, o, n in hours}


async def sales(
    session: AsyncSession,
    viewer: Viewer,
    *,
    store_id: int | None,
    start: date,
    end: date,
    granularity: str = "DAY",
    top: int = 10,
) -> SalesReport:
    stores = report_stores(viewer, store_id)
    check_period(start, end)
    if granularity not in GRANULARITIES:
        raise DomainError(ErrorCode.INVALID_INPUT, "Group by DAY, WEEK or MONTH.", "granularity")
    visible = await sees_margin(session, viewer)
    series, by = await _days(session, stores, start, end, granularity, visible)
    by_hour = await _sales_by_hour(session, stores, start, end)
    totals = Figures()
    for point in series.values():
        totals.add(point)
    by_category, top_products = await _ranked_skus(session, stores, start, end, first=top)
    return SalesReport(
        start=start,
        end=end,
        totals=totals,
        previous=await _totals(session, stores, *previous_period(start, end), costed=visible),
        series=[Point(label, figures) for label, figures in series.items()],
        by_hour=[Point(f"{h:02d}", by_hour.get(h, Figures())) for h in range(24)],
        by_channel=by["channel"],
        by_fulfilment=by["fulfilment"],
        by_category=by_category,
        top_products=top_products,
        freshness=await freshness(session),
        margin_visible=visible,
    )


RANK_METRICS = ("NET", "GMV", "ORDERS", "AVERAGE_ORDER_VALUE", "REFUNDS", "DISCOUNTS", "GROSS_PROFIT")
COST_METRICS = ("GROSS_PROFIT",)


def metric_value(f: Figures, metric: str) -> int:
    if metric == "AVERAGE_ORDER_VALUE":
        return f.average_order_value
    if metric == "GROSS_PROFIT":
        return f.gross_profit
    return int(getattr(f, metric.lower()))


async def check_metric(session: AsyncSession, viewer: Viewer, metric: str) -> bool:
    """A ranking metric is known, and one built on cost only for viewers who see margin; returns whether they do."""
    if metric not in RANK_METRICS:
        raise DomainError(ErrorCode.INVALID_INPUT, "Rank by " + ", ".join(RANK_METRICS) + ".", "metric")
    visible = await sees_margin(session, viewer)
    if metric in COST_METRICS and not visible:
        raise AccessDenied("Cost and margin are not shown to this role.")
    return visible


def _per_store(start: date, end: date, stores: list[int] | None, *, costed: bool) -> Any:
    return (
        select(StoreDayFact.store_id, *_sums(StoreDayFact), *(cost_sums(StoreDayFact) if costed else ()))
        .where(*_where_days(StoreDayFact, stores, start, end))
        .group_by(StoreDayFact.store_id)
    )


def _store_figures(row: Any, costed: bool) -> Figures:
    return _figures(row).with_cost(Cost(int(row.cost), int(row.refunded_cost)) if costed else None)


async def per_store(
    session: AsyncSession, start: date, end: date, *, costed: bool, stores: list[int] | None = None
) -> dict[int, Figures]:
    """Every store's (or these stores') figures over a period, with cost when `costed`; stores with no sales are
    absent."""
    rows = (await session.execute(_per_store(start, end, stores, costed=costed))).all()
    return {int(r.store_id): _store_figures(r, costed) for r in rows}


def _metric_sql(metric: str) -> Any:
    """`metric_value` in SQL, over a store's summed days (integer division, as `average_order_value`)."""
    total = {m: func.coalesce(func.sum(getattr(StoreDayFact, m)), 0) for m in (*_MEASURES, "cost", "refunded_cost")}
    if metric == "AVERAGE_ORDER_VALUE":
        return case((total["orders"] > 0, total["net"] // total["orders"]), else_=0)
    if metric == "GROSS_PROFIT":
        return total["net"] - total["refunds"] - (total["cost"] - total["refunded_cost"])
    return total[metric.lower()]


@dataclass
class StoreRank:
    store_id: int
    rank: int
    figures: Figures
    previous: Figures


async def ranking(
    session: AsyncSession, viewer: Viewer, *, start: date, end: date, metric: str = "NET", first: int = 20
) -> list[StoreRank]:
    """Stores ranked by a metric over a period (a store's manager sees their own store's place only)."""
    require(viewer, Perm.REPORT_VIEW)
    check_period(start, end)
    costed = await check_metric(session, viewer, metric)
    # Ranked in the database (a window over every store's summed days), so only the rows shown come back: HQ's top
    # `first`, or a manager's own store with its place among all of them.
    place = func.row_number().over(order_by=(_metric_sql(metric).desc(), StoreDayFact.store_id))
    ranked = _per_store(start, end, None, costed=costed).add_columns(place.label("place")).subquery()
    shown = select(ranked).order_by(ranked.c.place)
    if viewer.is_hq:
        shown = shown.where(ranked.c.place <= max(1, min(first, 500)))
    else:
        shown = shown.where(ranked.c.store_id == viewer.store_id)
    rows = (await session.execute(shown)).all()
    ids = [int(r.store_id) for r in rows]
    before = await per_store(session, *previous_period(start, end), costed=costed, stores=ids) if ids else {}
    return [
        StoreRank(int(r.store_id), int(r.place), _store_figures(r, costed), before.get(int(r.store_id), Figures()))
        for r in rows
    ]


@dataclass
class InventoryRow:
    store_id: int
    on_hand: int
    listed: int
    out_of_stock: int
    low_stock: int
    sold: int
    transferred_in: int
    transferred_out: int
    days: int

    @property
    def stockout_rate(self) -> float:
        return round(self.out_of_stock / self.listed, 4) if self.listed else 0.0

    @property
    def turnover_days(self) -> float | None:
        daily = self.sold / self.days if self.days else 0
        return round(self.on_hand / daily, 1) if daily else None


async def inventory(
    session: AsyncSession, viewer: Viewer, *, store_id: int | None, start: date, end: date
) -> list[InventoryRow]:
    """Per store: stock on hand, stockout rate (on-shelf SKUs at zero), low stock, units sold, transfers."""
    stores = report_stores(viewer, store_id)
    check_period(start, end)
    default = (await get_settings(session)).default_low_stock_threshold
    listed = and_(StoreListing.store_id == StockLevel.store_id, StoreListing.sku_id == StockLevel.sku_id)
    stock_stmt = (
        select(
            StockLevel.store_id,
            func.sum(StockLevel.on_hand),
            func.count(),
            func.sum(func.cast(available_expr() <= 0, type_=StockLevel.on_hand.type)),
            func.sum(func.cast(available_expr() <= threshold_expr(default), type_=StockLevel.on_hand.type)),
        )
        .join(StoreListing, listed)
        .join(Sku, Sku.id == StockLevel.sku_id)
        .where(StoreListing.on_shelf.is_(True))
        .group_by(StockLevel.store_id)
    )
    if stores is not None:
        stock_stmt = stock_stmt.where(StockLevel.store_id.in_(stores))
    net_units = func.sum(StoreDayFact.quantity - StoreDayFact.refunded_quantity)
    sold_stmt = (
        select(StoreDayFact.store_id, net_units)
        .where(*_where_days(StoreDayFact, stores, start, end))
        .group_by(StoreDayFact.store_id)
    )
    sold = {int(k): int(v) for k, v in (await session.execute(sold_stmt)).all()}
    moved: dict[tuple[int, str], int] = defaultdict(int)
    since, until = _start_of(start), _start_of(end + timedelta(days=1))
    for column, direction in ((Transfer.to_store_id, "in"), (Transfer.from_store_id, "out")):
        stmt = (
            select(column, func.sum(func.coalesce(TransferLine.shipped_quantity, 0)))
            .join(TransferLine, TransferLine.transfer_id == Transfer.id)
            .where(Transfer.shipped_at >= since, Transfer.shipped_at < until)
            .group_by(column)
        )
        if stores is not None:
            stmt = stmt.where(column.in_(stores))
        for sid, qty in (await session.execute(stmt)).all():
            moved[(int(sid), direction)] += int(qty or 0)
    days = (end - start).days + 1
    return [
        InventoryRow(
            store_id=int(sid),
            on_hand=int(on_hand or 0),
            listed=int(count),
            out_of_stock=int(zero or 0),
            low_stock=int(low or 0),
            sold=sold.get(int(sid), 0),
            transferred_in=moved[(int(sid), "in")],
            transferred_out=moved[(int(sid), "out")],
            days=days,
        )
        for sid, on_hand, count, zero, low in sorted((await session.execute(stock_stmt)).all())
    ]


def _start_of(day: date) -> datetime:
    """Where a chain-time day begins (member and transfer figures, which belong to no one store's clock)."""
    return datetime.combine(day, time.min, tzinfo=CHAIN_TZ)


@dataclass
class MemberReport:
    new_members: list[tuple[str, int]]
    total_members: int
    active_members: int
    repurchase_rate: float
    levels: list[tuple[str, int]]
    segments: list[tuple[str, int]]
    stored_value_outstanding: int
    extra: dict[str, int] = field(default_factory=dict)
    by_home_store: list[MemberPlace] = field(default_factory=list)
    by_city: list[MemberPlace] = field(default_factory=list)


async def _joined_per_day(session: AsyncSession, known: Any, since: datetime, until: datetime) -> dict[str, int]:
    """New members counted per chain-local day."""
    joined = (
        await session.scalars(
            select(Member.joined_at).where(known, Member.joined_at >= since, Member.joined_at < until)
        )
    ).all()
    per_day: dict[str, int] = defaultdict(int)
    for at in joined:
        per_day[at.astimezone(CHAIN_TZ).date().isoformat()] += 1
    return per_day


async def _repurchase_counts(
    session: AsyncSession, stores: list[int] | None, since: datetime, until: datetime
) -> tuple[Any, Any, Any]:
    """Members active in the period, members who bought at least once, and at least twice."""
    relation = select(MemberStore.member_id, MemberStore.purchase_count, MemberStore.last_purchase_at)
    if stores is not None:
        relation = relation.where(MemberStore.store_id.in_(stores))
    rel = relation.subquery()
    active = await session.scalar(
        select(func.count(func.distinct(rel.c.member_id))).where(
            rel.c.last_purchase_at >= since, rel.c.last_purchase_at < until
        )
    )
    buyers = await session.scalar(select(func.count(func.distinct(rel.c.member_id))).where(rel.c.purchase_count >= 1))
    again = await session.scalar(select(func.count(func.distinct(rel.c.member_id))).where(rel.c.purchase_count >= 2))
    return active, buyers, again


async def _stored_value_owed(session: AsyncSession, stores: list[int] | None) -> Any:
    """Stored value still owed: every balance chain-wide, or the lots the scoped stores issued."""
    if stores is None:
        return await session.scalar(select(func.coalesce(func.sum(Member.balance_principal + Member.balance_bonus), 0)))
    left = func.coalesce(func.sum(BalanceLot.principal_left + BalanceLot.bonus_left), 0)
    return await session.scalar(select(left).where(BalanceLot.issuer_store_id.in_(stores)))


async def members(
    session: AsyncSession, viewer: Viewer, *, store_id: int | None, start: date, end: date
) -> MemberReport:
    """New members by day, active in the period, repurchase rate, levels, RFM segments, stored value owed."""
    stores = report_stores(viewer, store_id)
    check_period(start, end)
    since, until = _start_of(start), _start_of(end + timedelta(days=1))
    known: Any = Member.deleted_at.is_(None)
    if stores is not None:
        known = and_(known, Member.id.in_(select(MemberStore.member_id).where(MemberStore.store_id.in_(stores))))
    per_day = await _joined_per_day(session, known, since, until)
    active, buyers, again = await _repurchase_counts(session, stores, since, until)
    levels = (
        await session.execute(
            select(func.coalesce(MemberLevel.name, "-"), func.count())
            .select_from(Member)
            .outerjoin(MemberLevel, MemberLevel.id == Member.level_id)
            .where(known)
            .group_by(MemberLevel.name)
            .order_by(MemberLevel.name)
        )
    ).all()
    segments = (
        await session.execute(
            select(func.coalesce(Member.segment, "NONE"), func.count())
            .where(known)
            .group_by(Member.segment)
            .order_by(Member.segment)
        )
    ).all()
    owed = await _stored_value_owed(session, stores)
    total = await session.scalar(select(func.count()).select_from(Member).where(known))
    by_home_store, by_city = await members_by_home(session, stores, since, until)
    return MemberReport(
        new_members=sorted(per_day.items()),
        total_members=int(total or 0),
        active_members=int(active or 0),
        repurchase_rate=round(int(again or 0) / int(buyers), 4) if buyers else 0.0,
        levels=[(str(n), int(c)) for n, c in levels],
        segments=[(str(s), int(c)) for s, c in segments],
        stored_value_outstanding=int(owed or 0),
        by_home_store=by_home_store,
        by_city=by_city,
    )


@dataclass
class MarketingRow:
    kind: str  # CAMPAIGN or COUPON
    source_id: int
    orders: int
    discount: int
    members: int


async def marketing(
    session: AsyncSession, viewer: Viewer, *, store_id: int | None, start: date, end: date
) -> list[MarketingRow]:
    """What every campaign and coupon gave in the period (orders paid in it), largest cost first."""
    stores = report_stores(viewer, store_id)
    check_period(start, end)
    rows: list[MarketingRow] = []
    since, until = _start_of(start), _start_of(end + timedelta(days=1))
    for kind, column in (("CAMPAIGN", OrderPromotion.campaign_id), ("COUPON", OrderPromotion.coupon_template_id)):
        stmt = (
            select(
                column,
                func.count(func.distinct(OrderPromotion.order_id)),
                func.sum(OrderPromotion.discount),
                func.count(func.distinct(OrderPromotion.member_id)),
            )
            .join(Order, Order.id == OrderPromotion.order_id)
            .where(
                column.isnot(None),
                Order.paid_at >= since,
                Order.paid_at < until,
                Order.status.notin_([OrderStatus.CREATED, OrderStatus.CANCELLED]),
            )
            .group_by(column)
        )
        if stores is not None:
            stmt = stmt.where(OrderPromotion.store_id.in_(stores))
        found = (await session.execute(stmt)).all()
        rows += [MarketingRow(kind, int(k or 0), int(o), int(d or 0), int(m)) for k, o, d, m in found]
    return sorted(rows, key=lambda r: (-r.discount, r.kind, r.source_id))


def period(start: date | None, end: date | None) -> tuple[date, date]:
    """A report's days. Default: the last 30 days, ending today in the chain's time."""
    end = end or datetime.now(CHAIN_TZ).date()
    for value, name in ((start, "from"), (end, "to")):
        if value is not None and not EARLIEST <= value <= LATEST:
            raise DomainError(ErrorCode.INVALID_INPUT, f"Dates are {EARLIEST} to {LATEST}.", name)
    return start or end - timedelta(days=29), end


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


async def store_names(session: AsyncSession, ids: Iterable[int]) -> dict[int, str]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    return {
        int(i): str(c) for i, c in (await session.execute(select(Store.id, Store.code).where(Store.id.in_(wanted))))
    }

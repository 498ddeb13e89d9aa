"""Keeping the daily facts: sales and refunds queue an event in their own transaction; `refresh` folds them in.

`refresh` takes a batch of pending events (SKIP LOCKED, so several instances share the work and none counts an
event twice), adds what they did to the fact tables with one upsert per table, and deletes them, all in one
transaction, announcing the stores and days it changed (`facts.folded`, published after the commit: cached reports
that read them are dropped, services/analytics/report_cache.py). The app's job runner calls it every few seconds;
reports say how many events are still pending.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import (
    ChainDayFact,
    ChainHourFact,
    Exchange,
    FactEvent,
    FactEventKind,
    Order,
    OrderLine,
    Product,
    Refund,
    Sku,
    SkuDayFact,
    Store,
    StoreDayFact,
    StoreHourFact,
    StoreSkuDayFact,
    utcnow,
)
from services.platform import jobs
from services.platform.db import dialect_insert, write_transaction
from services.platform.events import Broker, Event, emit, take_pending

log = logging.getLogger("chain.facts")
BATCH = 2000
# Announced by every fold that changed facts: {"stores": [store ids], "days": ["YYYY-MM-DD" business days]}.
FACTS_FOLDED = "facts.folded"
# The SKU figures a store's day carries too, summed over its SKUs (margin, ranking and turnover read them per store).
STORE_DAY_GOODS = ("quantity", "refunded_quantity", "cost", "refunded_cost")


def record(
    session: AsyncSession,
    kind: FactEventKind,
    order_id: int,
    refund_id: int | None = None,
    *,
    exchange_id: int | None = None,
) -> None:
    """Queue what a sale, refund or exchange did, for the facts (an insert in the caller's transaction)."""
    session.add(
        FactEvent(kind=kind, order_id=order_id, refund_id=refund_id, exchange_id=exchange_id, created_at=utcnow())
    )


@dataclass(frozen=True)
class Freshness:
    as_of: datetime
    pending: int


async def freshness(session: AsyncSession) -> Freshness:
    """Reports are complete up to the oldest event not yet folded in (or now, when none is pending)."""
    count, oldest = (await session.execute(select(func.count(), func.min(FactEvent.created_at)))).one()
    return Freshness(oldest or utcnow(), int(count))


Cell = tuple[Any, ...]


class _Deltas:
    def __init__(self) -> None:
        self.store_day: dict[Cell, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.store_hour: dict[Cell, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.chain_hour: dict[Cell, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.store_sku: dict[Cell, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.sku: dict[Cell, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def chain_day(self) -> dict[Cell, dict[str, int]]:
        """The store days' deltas rolled up by day, channel and fulfilment."""
        cells: dict[Cell, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for (day, _store, channel, fulfilment), values in self.store_day.items():
            for name, value in values.items():
                cells[(day, channel, fulfilment)][name] += value
        return cells

    def touched(self) -> tuple[list[int], list[str]]:
        """The stores and business days whose facts this fold changes (every event adds to a store's day)."""
        cells = [(store_id, day) for day, store_id, *_ in self.store_day] + [(s, d) for s, d, *_ in self.store_sku]
        return sorted({s for s, _ in cells}), sorted({d.isoformat() for _, d in cells})

    def add_sku(
        self, store_day: dict[str, int], store_id: int, day: Any, sku_id: int, category_id: int, **values: int
    ) -> None:
        """Add a SKU's figures to its store's SKU day and the chain's, and its units and cost to the store's day."""
        for cell in (self.store_sku[(store_id, day, sku_id, category_id)], self.sku[(day, sku_id, category_id)]):
            for name, value in values.items():
                cell[name] += value
        for name in STORE_DAY_GOODS:
            store_day[name] += values.get(name, 0)


async def _categories(session: AsyncSession, sku_ids: Iterable[int]) -> dict[int, int]:
    ids = list(set(sku_ids))
    if not ids:
        return {}
    rows = await session.execute(
        select(Sku.id, Product.category_id).join(Product, Product.id == Sku.product_id).where(Sku.id.in_(ids))
    )
    return {int(k): int(v) for k, v in rows.all()}


async def _refund_costs(session: AsyncSession, order_ids: Iterable[int]) -> dict[tuple[int, int], int]:
    """The unit cost each refunded order's lines kept: a refund takes back cost in proportion to its units. By
    (order, SKU), and by (0, line id) for refunds that name their lines (an exchange may sell a SKU the order had)."""
    ids = list(set(order_ids))
    if not ids:
        return {}
    rows = await session.execute(
        select(OrderLine.id, OrderLine.order_id, OrderLine.sku_id, OrderLine.unit_cost)
        .where(OrderLine.order_id.in_(ids))
        .order_by(OrderLine.id.desc())
    )
    costs: dict[tuple[int, int], int] = {}
    for line_id, order_id, sku_id, cost in rows.all():
        costs[(0, int(line_id))] = costs[(int(order_id), int(sku_id))] = int(cost)
    return costs


def _fold_lines(
    deltas: _Deltas, cell: dict[str, int], store_id: int, day: Any, lines: list[Any], categories: dict[int, Any]
) -> None:
    """Lines sold (in an order or an exchange) into their SKU days, with the cost each line kept."""
    for line in lines:
        deltas.add_sku(
            cell,
            store_id,
            day,
            line.sku_id,
            categories[line.sku_id],
            quantity=line.quantity,
            gmv=line.list_price * line.quantity,
            net=line.line_total,
            cost=line.unit_cost * line.quantity,
        )


def _fold_sale(deltas: _Deltas, order: Any, zone: ZoneInfo, lines: list[Any], categories: dict[int, Any]) -> None:
    """Add one paid order to its store day, its hours and its SKU days."""
    local = (order.paid_at or order.created_at).astimezone(zone)
    day = local.date()
    cell = deltas.store_day[(day, order.store_id, order.channel.value, order.fulfilment.value)]
    net = order.subtotal - order.discount_total
    for name, value in (
        ("orders", 1),
        ("gmv", order.subtotal),
        ("discounts", order.discount_total),
        ("net", net),
        ("members", 1 if order.member_id else 0),
    ):
        cell[name] += value
    for hour in (deltas.store_hour[(order.store_id, day, local.hour)], deltas.chain_hour[(day, local.hour)]):
        hour["orders"] += 1
        hour["net"] += net
    _fold_lines(deltas, cell, order.store_id, day, lines, categories)


def _fold_refund(
    deltas: _Deltas, order: Any, zone: ZoneInfo, refund: Refund, categories: dict[int, Any], costs: dict[Any, int]
) -> None:
    """Add one refund to its store day and SKU days."""
    day = refund.created_at.astimezone(zone).date()
    goods = sum(int(x.get("amount", 0)) for x in refund.lines)
    cell = deltas.store_day[(day, order.store_id, order.channel.value, order.fulfilment.value)]
    cell["refunds"] += goods
    cell["refund_count"] += 1
    for x in refund.lines:
        sku = int(x["skuId"])
        deltas.add_sku(
            cell,
            order.store_id,
            day,
            sku,
            categories[sku],
            refunded_quantity=int(x["quantity"]),
            refunds=int(x.get("amount", 0)),
            refunded_cost=costs.get((0, int(x["lineId"])) if "lineId" in x else (refund.order_id, sku), 0)
            * int(x["quantity"]),
        )


def _fold_exchange(
    deltas: _Deltas, order: Any, zone: ZoneInfo, exchange: Exchange, sold: list[Any], categories: dict[int, Any]
) -> None:
    """Add one exchange at the counter: its returned units as refunds (with the cost their lines kept), its new lines
    as sales, on the exchange's day and hour, in the order's channel; not a new order."""
    local = exchange.created_at.astimezone(zone)
    day = local.date()
    cell = deltas.store_day[(day, order.store_id, order.channel.value, order.fulfilment.value)]
    gmv = sum(x.list_price * x.quantity for x in sold)
    net = sum(x.line_total for x in sold)
    for name, value in (
        ("gmv", gmv),
        ("discounts", gmv - net),
        ("net", net),
        ("refunds", exchange.returned_value),
        ("refund_count", 1),
    ):
        cell[name] += value
    for hour in (deltas.store_hour[(order.store_id, day, local.hour)], deltas.chain_hour[(day, local.hour)]):
        hour["net"] += net
    for x in exchange.returned:
        sku = int(x["skuId"])
        deltas.add_sku(
            cell,
            order.store_id,
            day,
            sku,
            categories[sku],
            refunded_quantity=int(x["quantity"]),
            refunds=int(x["amount"]),
            refunded_cost=int(x["unitCost"]) * int(x["quantity"]),
        )
    _fold_lines(deltas, cell, order.store_id, day, sold, categories)


async def _exchange_rows(
    session: AsyncSession, exchange_ids: list[int]
) -> tuple[dict[int, Exchange], dict[int, list[Any]]]:
    """The batch's exchanges by id, and the lines each sold."""
    if not exchange_ids:
        return {}, {}
    exchanges = {x.id: x for x in (await session.scalars(select(Exchange).where(Exchange.id.in_(exchange_ids)))).all()}
    sold: dict[int, list[Any]] = defaultdict(list)
    for line in (
        await session.execute(
            select(
                OrderLine.exchange_id,
                OrderLine.sku_id,
                OrderLine.quantity,
                OrderLine.list_price,
                OrderLine.line_total,
                OrderLine.unit_cost,
            ).where(OrderLine.exchange_id.in_(exchange_ids))
        )
    ).all():
        sold[int(line.exchange_id)].append(line)
    return exchanges, sold


async def _order_rows(session: AsyncSession, order_ids: set[int]) -> dict[int, Any]:
    """The batch's orders by id."""
    # Plain rows, not ORM objects: a batch is thousands of orders and this is the job's hot loop.
    return {
        o.id: o
        for o in (
            await session.execute(
                select(
                    Order.id,
                    Order.store_id,
                    Order.channel,
                    Order.fulfilment,
                    Order.subtotal,
                    Order.discount_total,
                    Order.member_id,
                    Order.paid_at,
                    Order.created_at,
                ).where(Order.id.in_(order_ids))
            )
        ).all()
    }


async def _fold(session: AsyncSession, events: list[FactEvent]) -> _Deltas:
    deltas = _Deltas()
    order_ids = {e.order_id for e in events}
    orders = await _order_rows(session, order_ids)
    store_ids = {o.store_id for o in orders.values()}
    zones = {
        sid: ZoneInfo(tz)
        for sid, tz in (await session.execute(select(Store.id, Store.timezone).where(Store.id.in_(store_ids)))).all()
    }
    sale_ids = [e.order_id for e in events if e.kind is FactEventKind.SALE]
    lines = (
        (
            await session.execute(
                select(
                    OrderLine.order_id,
                    OrderLine.sku_id,
                    OrderLine.quantity,
                    OrderLine.list_price,
                    OrderLine.line_total,
                    OrderLine.unit_cost,
                ).where(OrderLine.order_id.in_(sale_ids), OrderLine.exchange_id.is_(None))
            )
        ).all()
        if sale_ids
        else []
    )
    refunds = {
        r.id: r
        for r in (
            await session.scalars(
                select(Refund).where(Refund.id.in_([e.refund_id for e in events if e.refund_id is not None]))
            )
        ).all()
    }
    refund_skus = [int(x["skuId"]) for r in refunds.values() for x in r.lines]
    costs = await _refund_costs(session, [r.order_id for r in refunds.values()])
    exchanges, exchanged = await _exchange_rows(session, [e.exchange_id for e in events if e.exchange_id is not None])
    exchange_skus = [int(r["skuId"]) for x in exchanges.values() for r in x.returned]
    exchange_skus += [line.sku_id for sold in exchanged.values() for line in sold]
    categories = await _categories(session, [line.sku_id for line in lines] + refund_skus + exchange_skus)
    by_order: dict[int, list[Any]] = defaultdict(list)
    for line in lines:
        by_order[line.order_id].append(line)
    for event in events:
        order = orders[event.order_id]
        zone = zones[order.store_id]
        if event.kind is FactEventKind.SALE:
            _fold_sale(deltas, order, zone, by_order[order.id], categories)
        elif event.kind is FactEventKind.EXCHANGE:
            exchange = exchanges[event.exchange_id or 0]
            _fold_exchange(deltas, order, zone, exchange, exchanged[exchange.id], categories)
        else:
            _fold_refund(deltas, order, zone, refunds[event.refund_id or 0], categories, costs)
    return deltas


async def _upsert(
    session: AsyncSession, model: type[Any], keys: list[str], cells: dict[Cell, dict[str, int]], measures: list[str]
) -> None:
    if not cells:
        return
    # In key order: folds running at once on several instances lock the rows they share in the same order.
    rows = [
        dict(zip(keys, cell, strict=True)) | {m: values.get(m, 0) for m in measures}
        for cell, values in sorted(cells.items())
    ]
    stmt = dialect_insert(session, model)
    unique = [k for k in keys if k != "category_id"]
    stmt = stmt.on_conflict_do_update(
        index_elements=unique, set_={m: getattr(model, m) + getattr(stmt.excluded, m) for m in measures}
    )
    await session.execute(stmt, rows)  # executemany: compiled once, sent in batches


SKU_MEASURES = ["quantity", "gmv", "net", "refunded_quantity", "refunds", "cost", "refunded_cost"]
STORE_DAY_MEASURES = ["orders", "gmv", "discounts", "net", "refunds", "refund_count", "members", *STORE_DAY_GOODS]


async def refresh(session: AsyncSession, limit: int = BATCH) -> int:
    """Fold up to `limit` pending events into the facts; returns how many were folded."""
    events = list(
        (
            await session.scalars(
                select(FactEvent).order_by(FactEvent.id).limit(limit).with_for_update(skip_locked=True)
            )
        ).all()
    )
    if not events:
        return 0
    deltas = await _fold(session, events)
    await _upsert(
        session,
        StoreDayFact,
        ["day", "store_id", "channel", "fulfilment"],
        deltas.store_day,
        STORE_DAY_MEASURES,
    )
    await _upsert(session, ChainDayFact, ["day", "channel", "fulfilment"], deltas.chain_day(), STORE_DAY_MEASURES)
    await _upsert(session, StoreHourFact, ["store_id", "day", "hour"], deltas.store_hour, ["orders", "net"])
    await _upsert(session, ChainHourFact, ["day", "hour"], deltas.chain_hour, ["orders", "net"])
    await _upsert(
        session, StoreSkuDayFact, ["store_id", "day", "sku_id", "category_id"], deltas.store_sku, SKU_MEASURES
    )
    await _upsert(session, SkuDayFact, ["day", "sku_id", "category_id"], deltas.sku, SKU_MEASURES)
    await session.execute(delete(FactEvent).where(FactEvent.id.in_([e.id for e in events])))
    stores, days = deltas.touched()
    emit(session, FACTS_FOLDED, {"stores": stores, "days": days})
    return len(events)


# How often each instance folds pending sale and refund events into the report facts (README: every 10 s; the app
# passes its FACTS_INTERVAL_S setting to the runner). Instances folding at once share the events: each batch is
# claimed with SKIP LOCKED (`refresh`), so none counts one twice.
FOLD_INTERVAL_S = 10.0


@jobs.periodic("facts.fold", every_s=FOLD_INTERVAL_S)
async def refresh_all(
    sessionmaker: async_sessionmaker[AsyncSession], broker: Broker | None = None, *, batch: int = BATCH
) -> int:
    """Fold everything pending, a batch per transaction, each announced through `broker` once committed."""
    total = 0
    while True:
        async with write_transaction(sessionmaker) as session:
            done = await refresh(session, batch)
            folded = take_pending(session)
        if broker is not None and folded:
            await _announce(broker, folded)
        total += done
        if done < batch:
            return total


async def _announce(broker: Broker, folded: list[Event]) -> None:
    """A lost announcement must not stop the fold: caches that miss it forget the entry at their TTL, and a broker
    that went away makes every instance's listener forget everything (resolvers/state.py)."""
    try:
        await broker.publish(folded)
    except Exception:
        log.exception("could not announce a committed fold")

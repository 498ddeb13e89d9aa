"""Daily facts for reports: small tables keyed by store, day (the store's local day) and a few dimensions.

Sales and refunds append a row to `fact_events` in their own transaction (an insert: no hot rows on the
sale's path); a job folds pending events into the facts within seconds, and every report says how current
it is. A dashboard reads these tables only, so its cost follows stores x days, never the number of orders.
"""

from __future__ import annotations

import enum
from datetime import date

from sqlalchemy import BigInteger, Date, Index, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, Timestamp, intpk, str_enum


class FactEventKind(enum.StrEnum):
    SALE = "SALE"
    REFUND = "REFUND"
    EXCHANGE = "EXCHANGE"


class FactEvent(Base):
    __tablename__ = "fact_events"

    id: Mapped[intpk]
    kind: Mapped[FactEventKind] = mapped_column(str_enum(FactEventKind))
    order_id: Mapped[int] = mapped_column(BigId)
    refund_id: Mapped[int | None] = mapped_column(BigId)
    exchange_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[Timestamp]


class DayFigures:
    """What sold on a day in a channel and fulfilment: orders, GMV (list prices), discounts, net sales, refunds, and
    the units and cost of goods sold and refunded (the SKU facts' figures summed, so a store's margin, ranking and stock
    turnover read one row per store day, not one per SKU: at a million orders the SKU facts are millions of rows)."""

    day: Mapped[date] = mapped_column(Date())
    channel: Mapped[str] = mapped_column(String(16))
    fulfilment: Mapped[str] = mapped_column(String(16))
    orders: Mapped[int] = mapped_column(BigInteger(), default=0)
    gmv: Mapped[int] = mapped_column(BigInteger(), default=0)
    discounts: Mapped[int] = mapped_column(BigInteger(), default=0)
    net: Mapped[int] = mapped_column(BigInteger(), default=0)
    refunds: Mapped[int] = mapped_column(BigInteger(), default=0)
    refund_count: Mapped[int] = mapped_column(BigInteger(), default=0)
    members: Mapped[int] = mapped_column(BigInteger(), default=0)  # orders with a member
    quantity: Mapped[int] = mapped_column(BigInteger(), default=0, server_default="0")  # units sold
    refunded_quantity: Mapped[int] = mapped_column(BigInteger(), default=0, server_default="0")
    cost: Mapped[int] = mapped_column(BigInteger(), default=0, server_default="0")  # unit cost kept x units
    refunded_cost: Mapped[int] = mapped_column(BigInteger(), default=0, server_default="0")


class StoreDayFact(DayFigures, Base):
    """Per store, day, channel and fulfilment."""

    __tablename__ = "fact_store_day"
    __table_args__ = (
        UniqueConstraint("day", "store_id", "channel", "fulfilment"),
        Index("ix_fact_store_day_store_id_day", "store_id", "day"),
    )

    id: Mapped[intpk]
    store_id: Mapped[int] = mapped_column(BigId)


class ChainDayFact(DayFigures, Base):
    """The chain-wide roll-up of the one above by day, channel and fulfilment (HQ's sales report reads this: a few
    rows a day, where every store's rows are thousands)."""

    __tablename__ = "fact_chain_day"
    __table_args__ = (UniqueConstraint("day", "channel", "fulfilment"),)

    id: Mapped[intpk]


class StoreHourFact(Base):
    """Per store, day and hour of day (store time): orders and net sales, for the busy-hours chart."""

    __tablename__ = "fact_store_hour"
    __table_args__ = (UniqueConstraint("store_id", "day", "hour"),)

    id: Mapped[intpk]
    store_id: Mapped[int] = mapped_column(BigId)
    day: Mapped[date] = mapped_column(Date())
    hour: Mapped[int] = mapped_column(SmallInteger())
    orders: Mapped[int] = mapped_column(BigInteger(), default=0)
    net: Mapped[int] = mapped_column(BigInteger(), default=0)


class ChainHourFact(Base):
    """The chain-wide roll-up by day and hour (HQ's busy-hours chart reads this, not every store's rows)."""

    __tablename__ = "fact_chain_hour"
    __table_args__ = (UniqueConstraint("day", "hour"),)

    id: Mapped[intpk]
    day: Mapped[date] = mapped_column(Date())
    hour: Mapped[int] = mapped_column(SmallInteger())
    orders: Mapped[int] = mapped_column(BigInteger(), default=0)
    net: Mapped[int] = mapped_column(BigInteger(), default=0)


class SkuFigures:
    """What a SKU did on a day: units, money and cost sold and refunded (its category kept for category reports)."""

    category_id: Mapped[int] = mapped_column(BigId)
    quantity: Mapped[int] = mapped_column(BigInteger(), default=0)
    gmv: Mapped[int] = mapped_column(BigInteger(), default=0)
    net: Mapped[int] = mapped_column(BigInteger(), default=0)
    refunded_quantity: Mapped[int] = mapped_column(BigInteger(), default=0)
    refunds: Mapped[int] = mapped_column(BigInteger(), default=0)
    # Cost of the units sold (order_lines.unit_cost x quantity) and of the units refunded (the same unit cost x
    # refunded quantity): gross profit = (net - refunds) - (cost - refunded_cost).
    cost: Mapped[int] = mapped_column(BigInteger(), default=0, server_default="0")
    refunded_cost: Mapped[int] = mapped_column(BigInteger(), default=0, server_default="0")


class StoreSkuDayFact(SkuFigures, Base):
    """Per store, day and SKU: units and money sold and refunded (category kept for category reports)."""

    __tablename__ = "fact_store_sku_day"
    __table_args__ = (
        UniqueConstraint("store_id", "day", "sku_id"),
        Index("ix_fact_store_sku_day_day", "day"),
    )

    id: Mapped[intpk]
    store_id: Mapped[int] = mapped_column(BigId)
    day: Mapped[date] = mapped_column(Date())
    sku_id: Mapped[int] = mapped_column(BigId)


class SkuDayFact(SkuFigures, Base):
    """The chain-wide roll-up of the one above (HQ's top products read this, not every store's rows)."""

    __tablename__ = "fact_sku_day"
    __table_args__ = (UniqueConstraint("day", "sku_id"),)

    id: Mapped[intpk]
    day: Mapped[date] = mapped_column(Date())
    sku_id: Mapped[int] = mapped_column(BigId)


class CoPurchase(Base):
    """How often two SKUs were bought in one order (recent orders, recomputed by a job): 买了又买."""

    __tablename__ = "co_purchases"
    __table_args__ = (UniqueConstraint("sku_id", "other_sku_id"),)

    id: Mapped[intpk]
    sku_id: Mapped[int] = mapped_column(BigId)
    other_sku_id: Mapped[int] = mapped_column(BigId)
    orders: Mapped[int] = mapped_column(BigInteger())

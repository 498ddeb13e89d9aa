"""Orders: one model for POS and mini-program sales, their lines, payments, refunds and settlements."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, Timestamp, intpk, personal, str32, str64, str_enum


class Channel(enum.StrEnum):
    POS = "POS"
    MINI_PROGRAM = "MINI_PROGRAM"


class Fulfilment(enum.StrEnum):
    IN_STORE = "IN_STORE"
    PICKUP = "PICKUP"
    DELIVERY = "DELIVERY"


class OrderStatus(enum.StrEnum):
    CREATED = "CREATED"
    PAID = "PAID"
    PREPARING = "PREPARING"
    READY = "READY"
    DELIVERING = "DELIVERING"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    REFUNDED = "REFUNDED"


class PaymentMethod(enum.StrEnum):
    WECHAT_PAY = "WECHAT_PAY"
    ALIPAY = "ALIPAY"
    CARD = "CARD"
    CASH = "CASH"
    STORED_VALUE = "STORED_VALUE"
    POINTS = "POINTS"


class PaymentStatus(enum.StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    CANCELLED = "CANCELLED"
    # Money the provider took for an order that could no longer be paid (cancelled, expired, or paid already):
    # recorded, then given back through the provider by a job.
    LATE = "LATE"
    REFUNDED_LATE = "REFUNDED_LATE"


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("store_id", "client_order_id"),
        UniqueConstraint("pickup_code"),
        Index("ix_orders_store_id_id", "store_id", "id"),
        Index("ix_orders_member_id_id", "member_id", "id"),
        Index("ix_orders_status_expires_at", "status", "expires_at"),
        Index("ix_orders_created_at", "created_at"),
        CheckConstraint("payable >= 0", name="payable_not_negative"),
    )

    id: Mapped[intpk]
    store_id: Mapped[int] = mapped_column(BigId, ForeignKey("stores.id"))
    member_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("members.id"))
    staff_id: Mapped[int | None] = mapped_column(BigId)
    channel: Mapped[Channel] = mapped_column(str_enum(Channel))
    fulfilment: Mapped[Fulfilment] = mapped_column(str_enum(Fulfilment))
    status: Mapped[OrderStatus] = mapped_column(str_enum(OrderStatus), default=OrderStatus.CREATED)
    # The client's retry key (mini-program idempotency key, or the tablet's own order id).
    client_order_id: Mapped[str64]
    # Money, fen: subtotal at list prices, discounts, then what points and stored value paid, and the rest.
    subtotal: Mapped[int] = mapped_column(BigInteger())
    discount_total: Mapped[int] = mapped_column(BigInteger(), default=0)
    points_used: Mapped[int] = mapped_column(BigInteger(), default=0)
    points_value: Mapped[int] = mapped_column(BigInteger(), default=0)
    stored_value_used: Mapped[int] = mapped_column(BigInteger(), default=0)
    payable: Mapped[int] = mapped_column(BigInteger())
    # Delivery (外送): the fee (in payable), and where to: contact and address, encrypted as one JSON blob.
    delivery_fee: Mapped[int] = mapped_column(BigInteger(), default=0, server_default="0")
    delivery_enc: Mapped[bytes | None] = mapped_column(LargeBinary(), info=personal())
    dispatched_at: Mapped[datetime | None]
    # A group-buy order belongs to its group (拼团), which decides whether it stands or is refunded.
    group_buy_id: Mapped[int | None] = mapped_column(BigId, index=True)
    pickup_code: Mapped[str | None] = mapped_column(String(12))
    pickup_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    created_at: Mapped[Timestamp]


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (
        Index("ix_order_lines_order_id", "order_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[intpk]
    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id"))
    sku_id: Mapped[int] = mapped_column(BigId, ForeignKey("skus.id"))
    quantity: Mapped[int]
    list_price: Mapped[int] = mapped_column(BigInteger())
    unit_price: Mapped[int] = mapped_column(BigInteger())
    line_total: Mapped[int] = mapped_column(BigInteger())
    # The SKU's cost price (fen, per unit) when the line was sold: margin reports read this, never today's cost.
    unit_cost: Mapped[int] = mapped_column(BigInteger(), default=0, server_default="0")
    # Every price rule that applied to this line, in order: [{"rule": ..., "amount": ..., "reason": ...}]
    adjustments: Mapped[list[dict[str, Any]]] = mapped_column(JSON(), default=list)
    picked_up: Mapped[int] = mapped_column(default=0)
    refunded: Mapped[int] = mapped_column(default=0)
    # The exchange at the counter that sold this line (换货), or none: a line of the order's own sale.
    exchange_id: Mapped[int | None] = mapped_column(BigId)


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        # One out-trade-no may be paid more than once (a duplicate payment), but each provider transaction is
        # recorded once: concurrent copies of one notification cannot record it twice.
        UniqueConstraint("provider", "provider_txn"),
        Index("ix_payments_provider_provider_ref", "provider", "provider_ref"),
        Index("ix_payments_status_paid_at", "status", "paid_at"),
        Index("ix_payments_order_id", "order_id"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
    )

    id: Mapped[intpk]
    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id"))
    method: Mapped[PaymentMethod] = mapped_column(str_enum(PaymentMethod))
    amount: Mapped[int] = mapped_column(BigInteger())
    status: Mapped[PaymentStatus] = mapped_column(str_enum(PaymentStatus), default=PaymentStatus.PENDING)
    provider: Mapped[str32 | None]
    # Our out-trade-no at the provider, and the provider's own transaction id once paid.
    provider_ref: Mapped[str64 | None]
    provider_txn: Mapped[str | None] = mapped_column(String(64))
    store_id: Mapped[int] = mapped_column(BigId)
    paid_at: Mapped[datetime | None]
    # A late payment given back: when, and the provider's refund id.
    refunded_at: Mapped[datetime | None]
    provider_refund_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[Timestamp]


class OrderStatusChange(Base):
    """Every move of an order through the state machine (and every hand-over at the counter, `via` PICKUP), with
    who made it: a staff account, the member, or neither (the chain itself: a job, a provider notification)."""

    __tablename__ = "order_status_changes"
    __table_args__ = (Index("ix_order_status_changes_order_id_id", "order_id", "id"),)

    id: Mapped[intpk]
    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id"))
    from_status: Mapped[OrderStatus | None] = mapped_column(str_enum(OrderStatus))
    to_status: Mapped[OrderStatus] = mapped_column(str_enum(OrderStatus))
    staff_id: Mapped[int | None] = mapped_column(BigId)
    member_id: Mapped[int | None] = mapped_column(BigId)
    via: Mapped[str32 | None]
    at: Mapped[Timestamp]


class Refund(Base):
    """Money given back on an order: how much by each method, which lines, and whether goods came back."""

    __tablename__ = "refunds"
    __table_args__ = (
        Index("ix_refunds_order_id", "order_id"),
        Index("ix_refunds_store_id_created_at", "store_id", "created_at"),
    )

    id: Mapped[intpk]
    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id"))
    store_id: Mapped[int] = mapped_column(BigId)
    staff_id: Mapped[int | None] = mapped_column(BigId)
    amount: Mapped[int] = mapped_column(BigInteger())
    # {"CASH": 1200, "STORED_VALUE": 300, "POINTS": 100}: fen given back per method.
    by_method: Mapped[dict[str, int]] = mapped_column(JSON(), default=dict)
    lines: Mapped[list[dict[str, int]]] = mapped_column(JSON(), default=list)
    restocked: Mapped[bool] = mapped_column(default=False)
    points_taken_back: Mapped[int] = mapped_column(BigInteger(), default=0)
    # Redeemed points that came back to the member (the POINTS fen above, in points), and whether the
    # order's coupon went back to the wallet with this refund.
    points_given_back: Mapped[int] = mapped_column(BigInteger(), default=0, server_default="0")
    coupon_returned: Mapped[bool] = mapped_column(default=False, server_default=false())
    reason: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[Timestamp]


class Exchange(Base):
    """An exchange at the counter (换货): lines of an order came back and new lines were sold on the same order,
    the difference paid with tenders (payments on the order) or given back by the refund rule (a refund row)."""

    __tablename__ = "exchanges"
    __table_args__ = (
        Index("ix_exchanges_order_id", "order_id"),
        Index("ix_exchanges_store_id_created_at", "store_id", "created_at"),
    )

    id: Mapped[intpk]
    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id"))
    store_id: Mapped[int] = mapped_column(BigId)
    staff_id: Mapped[int | None] = mapped_column(BigId)
    # [{"lineId", "skuId", "quantity", "amount", "unitCost"}]: the units that came back and what they were worth.
    returned: Mapped[list[dict[str, int]]] = mapped_column(JSON(), default=list)
    returned_value: Mapped[int] = mapped_column(BigInteger())
    sold_value: Mapped[int] = mapped_column(BigInteger())
    # sold_value - returned_value: above zero the member paid it (paid_by_method), below zero it went back (refund_id).
    difference: Mapped[int] = mapped_column(BigInteger())
    paid_by_method: Mapped[dict[str, int]] = mapped_column(JSON(), default=dict)
    refund_id: Mapped[int | None] = mapped_column(BigId)
    points_earned: Mapped[int] = mapped_column(BigInteger(), default=0)
    points_taken_back: Mapped[int] = mapped_column(BigInteger(), default=0)
    created_at: Mapped[Timestamp]


class Settlement(Base):
    """A store's closed business day: its figures frozen, never recomputed."""

    __tablename__ = "settlements"
    __table_args__ = (UniqueConstraint("store_id", "business_day"),)

    id: Mapped[intpk]
    store_id: Mapped[int] = mapped_column(BigId, ForeignKey("stores.id"))
    business_day: Mapped[date] = mapped_column(Date())
    figures: Mapped[dict[str, Any]] = mapped_column(JSON())
    closed_by: Mapped[int | None] = mapped_column(BigId)
    closed_at: Mapped[Timestamp]

"""Cards (卡项): HQ's card products, the cards members hold, how they were sold, and a ledger of every move.

A card holds *units*: uses (次卡: N uses; 月卡/季卡: the per-day uses over the validity) or fen (礼品卡: its face
value). It also holds the *value* still owed for them: what was paid, less what each move took, pro rata. Every
move is a ledger row with the store where it happened and the store that issued the card, so settlement clears
between stores; a card's units_left and value_left are the sums of its ledger.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, Timestamp, intpk, str32, str64, str_enum


class CardKind(enum.StrEnum):
    COUNT = "COUNT"  # 次卡: N uses of a set of SKUs
    PERIOD = "PERIOD"  # 月卡/季卡: up to per_day_limit uses a day within the validity
    GIFT = "GIFT"  # 礼品卡: a value in fen, giftable once by a share code


class CardStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    USED_UP = "USED_UP"
    REFUNDED = "REFUNDED"
    EXPIRED = "EXPIRED"


class CardMove(enum.StrEnum):
    ISSUE = "ISSUE"
    USE = "USE"
    REFUND = "REFUND"  # unused units bought back, pro rata
    EXPIRE = "EXPIRE"
    GIFT_OUT = "GIFT_OUT"
    GIFT_IN = "GIFT_IN"
    RETURN = "RETURN"  # uses given back when goods a card paid for are refunded


class CardSaleStatus(enum.StrEnum):
    PENDING = "PENDING"
    PAID = "PAID"


class CardProduct(Base):
    """What HQ sells: kind, price, what it pays for, how long, where, and whether stores may sell it."""

    __tablename__ = "card_products"
    __table_args__ = (CheckConstraint("price > 0", name="price_positive"),)

    id: Mapped[intpk]
    name: Mapped[str64]
    kind: Mapped[CardKind] = mapped_column(str_enum(CardKind))
    price: Mapped[int] = mapped_column(BigInteger())
    uses: Mapped[int | None]  # COUNT: the uses sold
    face_value: Mapped[int | None] = mapped_column(BigInteger())  # GIFT: fen it pays
    per_day_limit: Mapped[int | None]  # uses a day (PERIOD: required)
    sku_ids: Mapped[list[int] | None] = mapped_column(JSON())  # the SKUs it pays for; null: any (GIFT only)
    validity_days: Mapped[int | None]  # N days from purchase ...
    valid_until: Mapped[datetime | None]  # ... or a fixed end (the earlier one wins when both are set)
    store_ids: Mapped[list[int] | None] = mapped_column(JSON())  # where valid; null with no city: everywhere
    city: Mapped[str | None] = mapped_column(String(64))
    stores_may_sell: Mapped[bool] = mapped_column(Boolean(), default=True)
    earns_points_on_use: Mapped[bool] = mapped_column(Boolean(), default=False)
    active: Mapped[bool] = mapped_column(Boolean(), default=True)
    created_at: Mapped[Timestamp]


class MemberCard(Base):
    """One card a member holds."""

    __tablename__ = "member_cards"
    __table_args__ = (
        Index("ix_member_cards_member_id_id", "member_id", "id"),
        Index("ix_member_cards_status_expires_at", "status", "expires_at"),
        UniqueConstraint("share_code"),
        CheckConstraint("units_left >= 0 AND value_left >= 0", name="left_not_negative"),
        CheckConstraint("units_left <= units_total AND value_left <= value_total", name="left_within_total"),
    )

    id: Mapped[intpk]
    product_id: Mapped[int] = mapped_column(BigId, ForeignKey("card_products.id"))
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    issuer_store_id: Mapped[int] = mapped_column(BigId, ForeignKey("stores.id"))
    kind: Mapped[CardKind] = mapped_column(str_enum(CardKind))
    units_total: Mapped[int] = mapped_column(BigInteger())
    units_left: Mapped[int] = mapped_column(BigInteger())
    value_total: Mapped[int] = mapped_column(BigInteger())  # fen paid
    value_left: Mapped[int] = mapped_column(BigInteger())  # fen still owed for units_left
    per_day_limit: Mapped[int | None]
    expires_at: Mapped[datetime]
    status: Mapped[CardStatus] = mapped_column(str_enum(CardStatus), default=CardStatus.ACTIVE)
    share_code: Mapped[str | None] = mapped_column(String(16))  # a gift card's code while it is being given
    gifted: Mapped[bool] = mapped_column(Boolean(), default=False)
    created_at: Mapped[Timestamp]


class CardEntry(Base):
    """Append-only: a card's units_left and value_left are the sums of units and value over its entries."""

    __tablename__ = "card_entries"
    __table_args__ = (
        Index("ix_card_entries_card_id_id", "card_id", "id"),
        Index("ix_card_entries_member_id_id", "member_id", "id"),
        Index("ix_card_entries_store_id_created_at", "store_id", "created_at"),
        Index("ix_card_entries_issuer_store_id_created_at", "issuer_store_id", "created_at"),
        Index("ix_card_entries_ref", "ref_type", "ref_id"),
    )

    id: Mapped[intpk]
    card_id: Mapped[int] = mapped_column(BigId, ForeignKey("member_cards.id"))
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    kind: Mapped[CardMove] = mapped_column(str_enum(CardMove))
    units: Mapped[int] = mapped_column(BigInteger())
    value: Mapped[int] = mapped_column(BigInteger())
    # Where it happened, and who issued the card: settlement clears value between them.
    store_id: Mapped[int] = mapped_column(BigId)
    issuer_store_id: Mapped[int] = mapped_column(BigId)
    sku_id: Mapped[int | None] = mapped_column(BigId)
    # Fen of goods the move paid (a use, negative) or took back (a return, positive): an order refund gives a
    # card back what it paid for the returned units.
    goods: Mapped[int] = mapped_column(BigInteger(), default=0, server_default="0")
    ref_type: Mapped[str32 | None]
    ref_id: Mapped[int | None] = mapped_column(BigId)
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[Timestamp]


class CardSale(Base):
    """A card sold: at the counter (paid by tenders, in the day's takings) or online (paid through the provider)."""

    __tablename__ = "card_sales"
    __table_args__ = (
        UniqueConstraint("provider", "provider_ref"),
        Index("ix_card_sales_store_id_created_at", "store_id", "created_at"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[intpk]
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    product_id: Mapped[int] = mapped_column(BigId, ForeignKey("card_products.id"))
    store_id: Mapped[int] = mapped_column(BigId, ForeignKey("stores.id"))
    online: Mapped[bool] = mapped_column(Boolean(), default=False)
    amount: Mapped[int] = mapped_column(BigInteger())
    by_method: Mapped[dict[str, Any]] = mapped_column(JSON(), default=dict)
    status: Mapped[CardSaleStatus] = mapped_column(str_enum(CardSaleStatus), default=CardSaleStatus.PENDING)
    staff_id: Mapped[int | None] = mapped_column(BigId)
    card_id: Mapped[int | None] = mapped_column(BigId)
    provider: Mapped[str32 | None]
    provider_ref: Mapped[str64 | None]
    provider_txn: Mapped[str | None] = mapped_column(String(64))
    paid_at: Mapped[datetime | None]
    created_at: Mapped[Timestamp]

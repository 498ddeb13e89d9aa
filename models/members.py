"""Members: one person, valid in every store (personal data encrypted at rest); levels, the points ledger,
stored value (储值): plans, lots, ledger, and top-ups online and at the counter."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Enum,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, BigId, Sensitivity, Timestamp, intpk, personal, str32, str64, str128, str_enum


class Gender(enum.StrEnum):
    FEMALE = "FEMALE"
    MALE = "MALE"
    UNDISCLOSED = "UNDISCLOSED"


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (
        Index("ix_members_home_store_id", "home_store_id"),
        Index("ix_members_level_id", "level_id"),
        Index("ix_members_segment", "segment"),
        CheckConstraint("points_balance >= 0", name="points_not_negative"),
        CheckConstraint("balance_principal >= 0", name="principal_not_negative"),
        CheckConstraint("balance_bonus >= 0", name="bonus_not_negative"),
    )

    id: Mapped[intpk]
    name: Mapped[str | None] = mapped_column(String(64), info=personal())
    # AES-GCM ciphertext of the phone number; phone_index is its keyed HMAC for exact lookup.
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary(), info=personal(Sensitivity.PHONE))
    phone_index: Mapped[str | None] = mapped_column(String(64), unique=True, info=personal(Sensitivity.PHONE))
    # For display as 138****5678: the network prefix and the last four digits, nothing in between.
    phone_prefix: Mapped[str | None] = mapped_column(String(3), info=personal(Sensitivity.PHONE))
    phone_last4: Mapped[str | None] = mapped_column(String(4), info=personal(Sensitivity.PHONE))
    home_store_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("stores.id"))
    birthday: Mapped[date | None] = mapped_column(Date(), info=personal())
    gender: Mapped[Gender] = mapped_column(
        Enum(Gender, native_enum=False, length=16, validate_strings=True), default=Gender.UNDISCLOSED, info=personal()
    )
    level_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("member_levels.id"))
    # Kept equal to the sums of their ledgers in the same transaction as each entry.
    points_balance: Mapped[int] = mapped_column(BigInteger(), default=0)
    balance_principal: Mapped[int] = mapped_column(BigInteger(), default=0)
    balance_bonus: Mapped[int] = mapped_column(BigInteger(), default=0)
    # Fed by orders: lifetime spend (fen), visits, last visit; RFM segment recomputed by a job.
    total_spend: Mapped[int] = mapped_column(BigInteger(), default=0)
    visit_count: Mapped[int] = mapped_column(default=0)
    last_visit_at: Mapped[datetime | None]
    segment: Mapped[str | None] = mapped_column(String(16))
    # The member's own share code (全民推广), made the first time they ask for it.
    share_code: Mapped[str | None] = mapped_column(String(16), unique=True, info=personal())
    joined_at: Mapped[Timestamp]
    updated_at: Mapped[datetime | None]
    # Set when the member deleted their account: personal data is erased, ledgers stay anonymised.
    deleted_at: Mapped[datetime | None]

    identities: Mapped[list[MemberIdentity]] = relationship(back_populates="member", lazy="raise")


class MemberIdentity(Base):
    """A member's account at an identity provider (WeChat openid, local test subject)."""

    __tablename__ = "member_identities"
    __table_args__ = (UniqueConstraint("provider", "subject"), Index("ix_member_identities_member_id", "member_id"))

    id: Mapped[intpk]
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    provider: Mapped[str32]
    subject: Mapped[str128] = mapped_column(info=personal())
    created_at: Mapped[Timestamp]

    member: Mapped[Member] = relationship(back_populates="identities", lazy="raise")


class MemberStore(Base):
    """How a member relates to a store; store staff see only members related to their store."""

    __tablename__ = "member_stores"
    __table_args__ = (UniqueConstraint("member_id", "store_id"), Index("ix_member_stores_store_id", "store_id"))

    id: Mapped[intpk]
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    store_id: Mapped[int] = mapped_column(BigId, ForeignKey("stores.id"))
    registered: Mapped[bool] = mapped_column(Boolean(), default=False)
    purchase_count: Mapped[int] = mapped_column(default=0)
    spend: Mapped[int] = mapped_column(BigInteger(), default=0)
    first_seen_at: Mapped[Timestamp]
    last_purchase_at: Mapped[datetime | None]


class MemberTag(Base):
    __tablename__ = "member_tags"

    id: Mapped[intpk]
    name: Mapped[str64] = mapped_column(unique=True)
    created_at: Mapped[Timestamp]


class MemberTagLink(Base):
    __tablename__ = "member_tag_links"
    __table_args__ = (UniqueConstraint("member_id", "tag_id"), Index("ix_member_tag_links_tag_id", "tag_id"))

    id: Mapped[intpk]
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    tag_id: Mapped[int] = mapped_column(BigId, ForeignKey("member_tags.id"))
    created_at: Mapped[Timestamp]


class CounterTopUp(Base):
    """Stored value bought at the counter, and the tenders that paid for it (settled in the day's takings)."""

    __tablename__ = "counter_top_ups"
    __table_args__ = (
        Index("ix_counter_top_ups_store_id_created_at", "store_id", "created_at"),
        CheckConstraint("amount > 0 AND bonus >= 0", name="amounts_valid"),
    )

    id: Mapped[intpk]
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    store_id: Mapped[int] = mapped_column(BigId, ForeignKey("stores.id"))
    staff_id: Mapped[int | None] = mapped_column(BigId)
    plan_id: Mapped[int | None] = mapped_column(BigId)
    amount: Mapped[int] = mapped_column(BigInteger())
    bonus: Mapped[int] = mapped_column(BigInteger(), default=0)
    # {"CASH": 5000, "CARD": 5000}: fen taken per method; sums to `amount`.
    by_method: Mapped[dict[str, int]] = mapped_column(JSON(), default=dict)
    created_at: Mapped[Timestamp]


class TopUpStatus(enum.StrEnum):
    PENDING = "PENDING"
    PAID = "PAID"
    CANCELLED = "CANCELLED"


class OnlineTopUp(Base):
    """A member's stored-value top-up paid through the provider: credited once, when the notification arrives."""

    __tablename__ = "online_top_ups"
    __table_args__ = (
        UniqueConstraint("provider", "provider_ref"),
        UniqueConstraint("member_id", "idempotency_key"),
        Index("ix_online_top_ups_member_id_id", "member_id", "id"),
        CheckConstraint("amount > 0 AND bonus >= 0", name="amounts_valid"),
    )

    id: Mapped[intpk]
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    plan_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("top_up_plans.id"))
    # The store the member topped up "at" in the mini-program: it issues the lot and settles the money.
    store_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("stores.id"))
    amount: Mapped[int] = mapped_column(BigInteger())
    bonus: Mapped[int] = mapped_column(BigInteger(), default=0)
    status: Mapped[TopUpStatus] = mapped_column(str_enum(TopUpStatus), default=TopUpStatus.PENDING)
    idempotency_key: Mapped[str64]
    provider: Mapped[str32]
    provider_ref: Mapped[str64]
    provider_txn: Mapped[str | None] = mapped_column(String(64))
    paid_at: Mapped[datetime | None]
    created_at: Mapped[Timestamp]


class PointsKind(enum.StrEnum):
    EARN = "EARN"
    REDEEM = "REDEEM"
    EXPIRE = "EXPIRE"
    ADJUST = "ADJUST"
    REVERSAL = "REVERSAL"


class BalanceKind(enum.StrEnum):
    TOP_UP = "TOP_UP"
    SPEND = "SPEND"
    REFUND = "REFUND"


class MemberLevel(Base):
    __tablename__ = "member_levels"
    __table_args__ = (
        CheckConstraint("discount_percent > 0 AND discount_percent <= 100", name="discount_in_range"),
        CheckConstraint("points_multiplier_pct >= 0", name="multiplier_not_negative"),
    )

    id: Mapped[intpk]
    name: Mapped[str64] = mapped_column(unique=True)
    # Spend (fen) at which a member reaches this level; the 0 level is where everyone starts.
    spend_threshold: Mapped[int] = mapped_column(BigInteger(), unique=True)
    discount_percent: Mapped[int] = mapped_column(default=100)  # 95 = pay 95%
    points_multiplier_pct: Mapped[int] = mapped_column(default=100)  # 150 = 1.5x points
    created_at: Mapped[Timestamp]


class LevelPrice(Base):
    """A fixed member price for one SKU at one level (会员价)."""

    __tablename__ = "level_prices"
    __table_args__ = (UniqueConstraint("level_id", "sku_id"), CheckConstraint("price >= 0", name="price_not_negative"))

    id: Mapped[intpk]
    level_id: Mapped[int] = mapped_column(BigId, ForeignKey("member_levels.id"))
    sku_id: Mapped[int] = mapped_column(BigId, ForeignKey("skus.id"))
    price: Mapped[int] = mapped_column(BigInteger())


class PointsEntry(Base):
    """Append-only; a member's points_balance is the sum of points over their entries."""

    __tablename__ = "points_entries"
    __table_args__ = (
        Index("ix_points_entries_member_id_id", "member_id", "id"),
        Index("ix_points_entries_ref", "ref_type", "ref_id"),
    )

    id: Mapped[intpk]
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    kind: Mapped[PointsKind] = mapped_column(Enum(PointsKind, native_enum=False, length=16, validate_strings=True))
    points: Mapped[int] = mapped_column(BigInteger())
    # Earned points expire by the year they were earned in (see services/members/points.py).
    earned_year: Mapped[int | None]
    store_id: Mapped[int | None] = mapped_column(BigId)
    ref_type: Mapped[str | None] = mapped_column(String(32))
    ref_id: Mapped[int | None] = mapped_column(BigId)
    note: Mapped[str | None] = mapped_column(String(255))
    staff_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[Timestamp]


class TopUpPlan(Base):
    """Pay `pay_amount`, get `bonus_amount` extra (充500送50)."""

    __tablename__ = "top_up_plans"

    id: Mapped[intpk]
    name: Mapped[str64]
    pay_amount: Mapped[int] = mapped_column(BigInteger())
    bonus_amount: Mapped[int] = mapped_column(BigInteger(), default=0)
    active: Mapped[bool] = mapped_column(Boolean(), default=True)
    created_at: Mapped[Timestamp]


class BalanceLot(Base):
    """One top-up's money as it is spent down, so each fen is traced to the store that took it in."""

    __tablename__ = "balance_lots"
    __table_args__ = (
        Index("ix_balance_lots_member_id", "member_id", "id"),
        CheckConstraint("principal_left >= 0 AND bonus_left >= 0", name="left_not_negative"),
    )

    id: Mapped[intpk]
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    issuer_store_id: Mapped[int | None] = mapped_column(BigId)
    principal_left: Mapped[int] = mapped_column(BigInteger())
    bonus_left: Mapped[int] = mapped_column(BigInteger())
    created_at: Mapped[Timestamp]


class BalanceEntry(Base):
    """Append-only; balance_principal and balance_bonus are the sums of principal and bonus here."""

    __tablename__ = "balance_entries"
    __table_args__ = (
        Index("ix_balance_entries_member_id_id", "member_id", "id"),
        Index("ix_balance_entries_ref", "ref_type", "ref_id"),
    )

    id: Mapped[intpk]
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    lot_id: Mapped[int] = mapped_column(BigId, ForeignKey("balance_lots.id"))
    kind: Mapped[BalanceKind] = mapped_column(Enum(BalanceKind, native_enum=False, length=16, validate_strings=True))
    principal: Mapped[int] = mapped_column(BigInteger())
    bonus: Mapped[int] = mapped_column(BigInteger())
    # The store where this happened, and the store that took the money in: settlement clears between them.
    store_id: Mapped[int | None] = mapped_column(BigId)
    issuer_store_id: Mapped[int | None] = mapped_column(BigId)
    ref_type: Mapped[str | None] = mapped_column(String(32))
    ref_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[Timestamp]

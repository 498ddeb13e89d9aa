"""Loyalty: member levels, the points ledger, stored value (储值) plans, lots and ledger, jobs."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, CheckConstraint, Enum, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, Timestamp, intpk, str32, str64


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


class JobStatus(enum.StrEnum):
    PENDING = "PENDING"
    DONE = "DONE"
    FAILED = "FAILED"


class Job(Base):
    """Time-driven work: claimed by one runner at a time (SKIP LOCKED on PostgreSQL), idempotent by design."""

    __tablename__ = "jobs"
    __table_args__ = (UniqueConstraint("dedupe_key"), Index("ix_jobs_status_due_at", "status", "due_at"))

    id: Mapped[intpk]
    kind: Mapped[str32]
    dedupe_key: Mapped[str] = mapped_column(String(128))
    due_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]] = mapped_column(JSON(), default=dict)
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, native_enum=False, length=16, validate_strings=True), default=JobStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(1000))
    done_at: Mapped[datetime | None]
    created_at: Mapped[Timestamp]

"""After-sales service (售后服务): follow-up calls (回访) assigned to a store's staff, ratings, complaint tickets."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, Timestamp, intpk, personal, str_enum


class FollowUpSource(enum.StrEnum):
    """Where a task came from: an audience picked by a person, or an event rule run by the daily job."""

    SEGMENT = "SEGMENT"
    TAG = "TAG"
    LEVEL = "LEVEL"
    MEMBERS = "MEMBERS"
    REFUND_OVER = "REFUND_OVER"
    FIRST_VISIT = "FIRST_VISIT"


class FollowUpStatus(enum.StrEnum):
    OPEN = "OPEN"
    DONE = "DONE"


class FollowUpOutcome(enum.StrEnum):
    REACHED = "REACHED"
    NO_ANSWER = "NO_ANSWER"
    WRONG_NUMBER = "WRONG_NUMBER"
    COMPLAINT_RAISED = "COMPLAINT_RAISED"
    COUPON_GIVEN = "COUPON_GIVEN"


class FollowUpRuleKind(enum.StrEnum):
    REFUND_OVER = "REFUND_OVER"  # every refund of at least `min_amount` fen on a member's order
    FIRST_VISIT = "FIRST_VISIT"  # a member's first visit to a store


class TicketStatus(enum.StrEnum):
    OPEN = "OPEN"
    IN_PROGRESS = "IN_PROGRESS"
    ESCALATED = "ESCALATED"
    RESOLVED = "RESOLVED"


class TicketEntryKind(enum.StrEnum):
    OPENED = "OPENED"
    REPLY = "REPLY"  # staff to the member (the member sees it)
    MEMBER_REPLY = "MEMBER_REPLY"
    STARTED = "STARTED"
    ESCALATED = "ESCALATED"
    RESOLVED = "RESOLVED"


class FollowUpTask(Base):
    __tablename__ = "follow_up_tasks"
    __table_args__ = (
        UniqueConstraint("dedupe_key"),
        Index("ix_follow_up_tasks_store_id_id", "store_id", "id"),
        Index("ix_follow_up_tasks_member_id", "member_id"),
    )

    id: Mapped[intpk]
    store_id: Mapped[int] = mapped_column(BigId, ForeignKey("stores.id"))
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    assignee_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("staff.id"))
    source: Mapped[FollowUpSource] = mapped_column(str_enum(FollowUpSource))
    # One task per (batch or rule, member, event): a retried batch or a second run of a rule adds nothing.
    dedupe_key: Mapped[str] = mapped_column(String(128))
    script: Mapped[str] = mapped_column(String(1000))
    due_at: Mapped[datetime]
    status: Mapped[FollowUpStatus] = mapped_column(str_enum(FollowUpStatus), default=FollowUpStatus.OPEN)
    outcome: Mapped[FollowUpOutcome | None] = mapped_column(str_enum(FollowUpOutcome))
    note: Mapped[str | None] = mapped_column(String(500), info=personal())
    coupon_template_id: Mapped[int | None] = mapped_column(BigId)
    coupons_given: Mapped[int] = mapped_column(default=0)
    ticket_id: Mapped[int | None] = mapped_column(BigId)
    created_by: Mapped[int | None] = mapped_column(BigId)
    completed_by: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[Timestamp]
    completed_at: Mapped[datetime | None]


class FollowUpRule(Base):
    """An event rule: the daily job turns matching events into tasks (a store's, or every store's when null)."""

    __tablename__ = "follow_up_rules"

    id: Mapped[intpk]
    kind: Mapped[FollowUpRuleKind] = mapped_column(str_enum(FollowUpRuleKind))
    store_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("stores.id"))
    min_amount: Mapped[int] = mapped_column(BigInteger(), default=0)
    script: Mapped[str] = mapped_column(String(1000))
    due_hours: Mapped[int] = mapped_column(default=48)
    active: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[Timestamp]


class Rating(Base):
    """A member's rating of an order (and so its store) or of a store."""

    __tablename__ = "ratings"
    __table_args__ = (
        UniqueConstraint("order_id"),
        Index("ix_ratings_store_id_created_at", "store_id", "created_at"),
        CheckConstraint("stars BETWEEN 1 AND 5", name="stars_1_to_5"),
    )

    id: Mapped[intpk]
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    store_id: Mapped[int] = mapped_column(BigId, ForeignKey("stores.id"))
    order_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("orders.id"))
    stars: Mapped[int]
    text: Mapped[str | None] = mapped_column(String(1000), info=personal())
    photo_urls: Mapped[list[str]] = mapped_column(JSON(), default=list)
    created_at: Mapped[Timestamp]


class Ticket(Base):
    """A complaint: open -> in progress -> resolved, or escalated to HQ; due by the chain's SLA."""

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_store_id_id", "store_id", "id"),
        Index("ix_tickets_member_id_id", "member_id", "id"),
        Index("ix_tickets_status_due_at", "status", "due_at"),
    )

    id: Mapped[intpk]
    store_id: Mapped[int] = mapped_column(BigId, ForeignKey("stores.id"))
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    order_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("orders.id"))
    subject: Mapped[str] = mapped_column(String(200), info=personal(), default="")  # erased: ""
    text: Mapped[str | None] = mapped_column(String(2000), info=personal())
    photo_urls: Mapped[list[str]] = mapped_column(JSON(), default=list)
    status: Mapped[TicketStatus] = mapped_column(str_enum(TicketStatus), default=TicketStatus.OPEN)
    due_at: Mapped[datetime]
    created_at: Mapped[Timestamp]
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[int | None] = mapped_column(BigId)
    refund_id: Mapped[int | None] = mapped_column(BigId)
    coupons_given: Mapped[int] = mapped_column(default=0)
    points_given: Mapped[int] = mapped_column(default=0)


class TicketEntry(Base):
    """Every action on a ticket and every reply, with who and when (append-only)."""

    __tablename__ = "ticket_entries"
    __table_args__ = (Index("ix_ticket_entries_ticket_id_id", "ticket_id", "id"),)

    id: Mapped[intpk]
    ticket_id: Mapped[int] = mapped_column(BigId, ForeignKey("tickets.id"))
    kind: Mapped[TicketEntryKind] = mapped_column(str_enum(TicketEntryKind))
    staff_id: Mapped[int | None] = mapped_column(BigId)
    member_id: Mapped[int | None] = mapped_column(BigId)
    text: Mapped[str | None] = mapped_column(String(2000), info=personal())
    created_at: Mapped[Timestamp]

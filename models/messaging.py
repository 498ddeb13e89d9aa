"""Messages to members: their consent per topic, HQ's templates, HQ's sends, every message with its status, and the
inbox of events that trigger messages (written in the transaction that emitted them)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, Timestamp, intpk, str_enum


class MessageTopic(enum.StrEnum):
    ORDER_UPDATES = "ORDER_UPDATES"
    PROMOTIONS = "PROMOTIONS"
    EXPIRY = "EXPIRY"  # card and points expiry
    SERVICE_REPLIES = "SERVICE_REPLIES"


class MessageStatus(enum.StrEnum):
    QUEUED = "QUEUED"
    SENT = "SENT"
    FAILED = "FAILED"
    SUPPRESSED_CONSENT = "SUPPRESSED_CONSENT"
    SUPPRESSED_CAP = "SUPPRESSED_CAP"


class MessageConsent(Base):
    """A member's yes or no to one topic; no row is no."""

    __tablename__ = "message_consents"

    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"), primary_key=True)
    topic: Mapped[MessageTopic] = mapped_column(str_enum(MessageTopic), primary_key=True)
    granted: Mapped[bool] = mapped_column(Boolean())
    updated_at: Mapped[Timestamp]


class MessageTemplate(Base):
    """HQ's wording of a message: `{name}` placeholders for the declared variables."""

    __tablename__ = "message_templates"

    id: Mapped[intpk]
    key: Mapped[str] = mapped_column(String(64), unique=True)
    topic: Mapped[MessageTopic] = mapped_column(str_enum(MessageTopic))
    title: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(String(500))
    variables: Mapped[list[str]] = mapped_column(JSON(), default=list)
    created_at: Mapped[Timestamp]
    updated_at: Mapped[Timestamp]


class MessageSend(Base):
    """One send HQ asked for (a template to an audience): the campaign whose effect is measured."""

    __tablename__ = "message_sends"

    id: Mapped[intpk]
    template_id: Mapped[int] = mapped_column(BigId, ForeignKey("message_templates.id"))
    audience: Mapped[dict[str, Any]] = mapped_column(JSON())
    variables: Mapped[dict[str, str]] = mapped_column(JSON(), default=dict)
    created_by: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[Timestamp]


class Message(Base):
    """One message to one member: queued, then sent, failed or suppressed; `dedupe_key` makes each trigger once."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("dedupe_key"),
        Index("ix_messages_status_due_at", "status", "due_at"),
        Index("ix_messages_status_id", "status", "id"),  # HQ's log filtered by status, newest first
        Index("ix_messages_member_id_id", "member_id", "id"),
        Index("ix_messages_send_id", "send_id"),
    )

    id: Mapped[intpk]
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    topic: Mapped[MessageTopic] = mapped_column(str_enum(MessageTopic))
    template_key: Mapped[str] = mapped_column(String(64))
    variables: Mapped[dict[str, str]] = mapped_column(JSON(), default=dict)
    dedupe_key: Mapped[str] = mapped_column(String(160))
    send_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("message_sends.id"))
    status: Mapped[MessageStatus] = mapped_column(str_enum(MessageStatus), default=MessageStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    due_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    title: Mapped[str | None] = mapped_column(String(64))
    text: Mapped[str | None] = mapped_column(String(1000))
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_ref: Mapped[str | None] = mapped_column(String(128))
    last_error: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[Timestamp]


class MessageTrigger(Base):
    """An event that may trigger messages, kept in the transaction that emitted it; the sending job turns it into
    messages (services/messaging/triggers.py) and deletes it."""

    __tablename__ = "message_triggers"

    id: Mapped[intpk]
    topic: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON())
    created_at: Mapped[Timestamp]

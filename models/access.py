"""Access: sign-in sessions and refresh tokens, and the audit log (操作日志) of every mutation and reveal."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, BigId, Timestamp, intpk, personal, str32, str64, str128


class AuditOutcome(enum.StrEnum):
    OK = "OK"
    REFUSED = "REFUSED"
    FORBIDDEN = "FORBIDDEN"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FAILED = "FAILED"


class AuditLog(Base):
    __tablename__ = "audit_logs"
    __table_args__ = (
        Index("ix_audit_logs_store_id_id", "store_id", "id"),
        Index("ix_audit_logs_staff_id_id", "staff_id", "id"),
        Index("ix_audit_logs_operation_id", "operation", "id"),
    )

    id: Mapped[intpk]
    at: Mapped[Timestamp]
    request_id: Mapped[str64]
    actor_kind: Mapped[str] = mapped_column(String(16))
    staff_id: Mapped[int | None] = mapped_column(BigId)
    member_id: Mapped[int | None] = mapped_column(BigId)
    role_code: Mapped[str | None] = mapped_column(String(64))
    # The store the actor acted as (store staff) or the store the target belongs to.
    store_id: Mapped[int | None] = mapped_column(BigId)
    operation: Mapped[str128]
    target_ids: Mapped[list[str]] = mapped_column(JSON(), default=list)
    input: Mapped[dict[str, Any] | None] = mapped_column(JSON())
    outcome: Mapped[AuditOutcome] = mapped_column(
        Enum(AuditOutcome, native_enum=False, length=16, validate_strings=True)
    )
    error_code: Mapped[str | None] = mapped_column(String(64))
    # The caller's address: erased from a member's own entries when they delete their account.
    ip: Mapped[str | None] = mapped_column(String(64), info=personal())


class AuthSession(Base):
    """One sign-in: the family of refresh tokens rotated from it. Revoking it ends every token."""

    __tablename__ = "auth_sessions"
    __table_args__ = (Index("ix_auth_sessions_staff_id", "staff_id"), Index("ix_auth_sessions_member_id", "member_id"))

    id: Mapped[intpk]
    staff_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("staff.id"))
    member_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("members.id"))
    created_at: Mapped[Timestamp]
    revoked_at: Mapped[datetime | None]
    revoke_reason: Mapped[str32 | None]
    ip: Mapped[str | None] = mapped_column(String(64), info=personal())

    tokens: Mapped[list[RefreshToken]] = relationship(back_populates="session", lazy="raise")


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"
    __table_args__ = (Index("ix_refresh_tokens_session_id", "session_id"),)

    id: Mapped[intpk]
    session_id: Mapped[int] = mapped_column(BigId, ForeignKey("auth_sessions.id"))
    # SHA-256 of a 256-bit random token: the token itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[Timestamp]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]

    session: Mapped[AuthSession] = relationship(back_populates="tokens", lazy="raise")

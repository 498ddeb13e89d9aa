"""Audit log (操作日志): append-only trace of every mutation and every reveal of personal data."""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import JSON, Enum, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, Timestamp, intpk, personal, str64, str128


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

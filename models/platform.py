"""Platform tables no domain owns: the job queue and idempotency keys."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Enum, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamp, intpk, str32, str64


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


class IdempotencyKey(Base):
    """A client's retry key: the first request's result is kept, a retry gets it back and moves nothing."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: Mapped[intpk]
    scope: Mapped[str64]
    key: Mapped[str64]
    fingerprint: Mapped[str64]
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON())
    created_at: Mapped[Timestamp]

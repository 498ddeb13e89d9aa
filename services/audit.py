"""Audit log: record every mutation and every reveal of personal data; read it within scope."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import AuditLog, AuditOutcome
from services.pagination import Page, keyset_page
from services.pii import mask_phone
from services.scope import Viewer, require_store, restrict

_SECRET_KEYS = re.compile(r"password|token|secret|otp|signature", re.IGNORECASE)
_PHONE_KEYS = re.compile(r"phone|mobile", re.IGNORECASE)
# Personal data other than phones is left out of the log entirely.
_PII_KEYS = re.compile(r"birthday|idNumber", re.IGNORECASE)
REDACTED = "[REDACTED]"


def redact(value: Any, key: str = "", *, extra_secrets: frozenset[str] = frozenset()) -> Any:
    """A copy of a mutation's input with secrets replaced and phone numbers masked."""
    if isinstance(value, dict):
        return {k: redact(v, k, extra_secrets=extra_secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, key, extra_secrets=extra_secrets) for v in value]
    if key and (_SECRET_KEYS.search(key) or _PII_KEYS.search(key) or key in extra_secrets):
        return REDACTED if value is not None else None
    if key and _PHONE_KEYS.search(key) and isinstance(value, str):
        return mask_phone(value) if len(value) >= 7 else REDACTED
    if isinstance(value, str) and len(value) > 512:
        return value[:512] + "…"
    return value


@dataclass(frozen=True)
class AuditEntry:
    request_id: str
    actor_kind: str
    operation: str
    outcome: AuditOutcome
    staff_id: int | None = None
    member_id: int | None = None
    role_code: str | None = None
    store_id: int | None = None
    target_ids: tuple[str, ...] = ()
    input: dict[str, Any] | None = None
    error_code: str | None = None
    ip: str | None = None


def record(session: AsyncSession, entry: AuditEntry) -> None:
    """Add the entry to the caller's transaction, so a change and its trace commit together."""
    session.add(
        AuditLog(
            request_id=entry.request_id,
            actor_kind=entry.actor_kind,
            staff_id=entry.staff_id,
            member_id=entry.member_id,
            role_code=entry.role_code,
            store_id=entry.store_id,
            operation=entry.operation,
            target_ids=list(entry.target_ids),
            input=entry.input,
            outcome=entry.outcome,
            error_code=entry.error_code,
            ip=entry.ip,
        )
    )


@dataclass(frozen=True)
class AuditFilter:
    store_id: int | None = None
    staff_id: int | None = None
    operation: str | None = None
    outcome: AuditOutcome | None = None
    since: datetime | None = None
    until: datetime | None = None


async def list_audit_logs(
    session: AsyncSession, viewer: Viewer, flt: AuditFilter, *, first: int | None, after: str | None
) -> Page[AuditLog]:
    """Newest first; HQ with audit.view sees all, a store manager their own store's entries."""
    stmt = restrict(select(AuditLog), viewer, AuditLog.store_id, "audit.view")
    if flt.store_id is not None:
        require_store(viewer, flt.store_id, "audit.view")
        stmt = stmt.where(AuditLog.store_id == flt.store_id)
    if flt.staff_id is not None:
        stmt = stmt.where(AuditLog.staff_id == flt.staff_id)
    if flt.operation:
        stmt = stmt.where(AuditLog.operation == flt.operation)
    if flt.outcome:
        stmt = stmt.where(AuditLog.outcome == flt.outcome)
    if flt.since:
        stmt = stmt.where(AuditLog.at >= flt.since)
    if flt.until:
        stmt = stmt.where(AuditLog.at < flt.until)
    return await keyset_page(session, stmt, AuditLog.id, first=first, after=after, descending=True)

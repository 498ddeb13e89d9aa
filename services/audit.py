"""Audit log: record every mutation and every reveal of personal data; read it within scope."""

from __future__ import annotations

import base64
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Text, cast, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import AuditLog, AuditOutcome
from services.access.pii import REDACTED, Sensitivity, erased, mask_phone
from services.access.scope import Viewer, require_store, restrict
from services.platform.pagination import Page, keyset_page

# What each key of an input holds, as its input type declares it: a Sensitivity, or the plan of a nested input.
Plan = Mapping[str, "Sensitivity | Plan"]


def redact(value: Any, plan: Plan) -> Any:
    """A copy of a mutation's input as the audit log keeps it: personal values and secrets out, phones masked."""
    if isinstance(value, list):
        return [redact(v, plan) for v in value]
    if not isinstance(value, dict):
        return value
    kept: dict[str, Any] = {}
    for key, item in value.items():
        declared = plan.get(key, Sensitivity.NOT_PERSONAL)
        if not isinstance(declared, Sensitivity):
            kept[key] = redact(item, declared)
        elif item is None or not declared.hidden:
            kept[key] = item[:512] + "…" if isinstance(item, str) and len(item) > 512 else item
        elif declared is Sensitivity.PHONE and isinstance(item, str) and len(item) >= 7:
            kept[key] = mask_phone(item)
        else:
            kept[key] = REDACTED
    return kept


def hidden_values(value: Any, plan: Plan) -> set[str]:
    """The clear text of every value the plan hides, so that logs can leave them out too."""
    if isinstance(value, list):
        return {text for v in value for text in hidden_values(v, plan)}
    if not isinstance(value, dict):
        return set()
    found: set[str] = set()
    for key, item in value.items():
        declared = plan.get(key, Sensitivity.NOT_PERSONAL)
        if not isinstance(declared, Sensitivity):
            found |= hidden_values(item, declared)
        elif declared.hidden and item is not None and not isinstance(item, bool):
            found.add(str(item))
    return found


def scrub(value: Any, values: Collection[str]) -> Any:
    """A copy of a recorded input with every string holding one of `values` replaced (for an erased member)."""
    if isinstance(value, dict):
        return {k: scrub(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, values) for v in value]
    if isinstance(value, str) and any(v in value for v in values):
        return REDACTED
    return value


async def forget_member(session: AsyncSession, member_id: int, values: Collection[str]) -> None:
    """Erase a deleted member's personal values from the entries about them: those they made and those naming them
    as a target. Their own acts (and their sign-ins, made before they were known) lose the address they came from;
    staff's acts on them keep it. The entries stay, so who did what is still traceable."""
    values = [v for v in values if len(v) >= 2]
    # The global id as GraphQL shows it (relay: base64 of "Member:<id>"), inside the JSON list of targets.
    gid = base64.b64encode(f"Member:{member_id}".encode()).decode()
    about = (AuditLog.member_id == member_id) | cast(AuditLog.target_ids, Text).like(f'%"{gid}"%')
    theirs = (AuditLog.member_id == member_id) | (AuditLog.actor_kind == "ANONYMOUS")
    await session.execute(update(AuditLog).where(about, theirs).values(**erased(AuditLog)))
    if not values:
        return
    for row in (await session.execute(select(AuditLog.id, AuditLog.input).where(about))).all():
        clean = scrub(row.input, values)
        if clean != row.input:
            await session.execute(update(AuditLog).where(AuditLog.id == row.id).values(input=clean))


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

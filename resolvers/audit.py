"""Audit log reads."""

from __future__ import annotations

from models import AuditLog
from resolvers.context import Context
from services.access import audit as audit_service
from services.platform.pagination import Page


async def audit_logs(
    ctx: Context, flt: audit_service.AuditFilter, *, first: int | None, after: str | None
) -> Page[AuditLog]:
    async with ctx.read() as session:
        return await audit_service.list_audit_logs(session, ctx.viewer, flt, first=first, after=after)

"""Audit log reads, and the jobs that gave up."""

from __future__ import annotations

from models import AuditLog, Job
from resolvers.context import Context
from services import audit as audit_service
from services import jobs
from services.audit import AuditFilter as AuditFilter
from services.pagination import Page


async def audit_logs(
    ctx: Context, flt: audit_service.AuditFilter, *, first: int | None, after: str | None
) -> Page[AuditLog]:
    async with ctx.read() as session:
        return await audit_service.list_audit_logs(session, ctx.viewer, flt, first=first, after=after)


async def failed_jobs(ctx: Context, *, first: int | None, after: str | None) -> Page[Job]:
    async with ctx.read() as session:
        return await jobs.failed_jobs(session, ctx.viewer, first=first, after=after)

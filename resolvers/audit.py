"""Audit log reads, the jobs that gave up, and the transaction and audit entry every mutation runs in."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from graphql import GraphQLError

from models import AuditLog, AuditOutcome, Job
from resolvers.context import Context
from services.access import audit as audit_service
from services.access.audit import AuditEntry, hidden_values, record, redact
from services.access.audit import AuditFilter as AuditFilter
from services.access.audit import Plan as Plan
from services.access.auth import PersistentRefusal
from services.access.pii import PII as PII
from services.access.pii import Sensitivity as Sensitivity
from services.access.scope import tracking
from services.platform import logs
from services.platform.db import begin_write
from services.platform.errors import AccessDenied, DomainError
from services.platform.events import Event, take_pending
from services.platform.pagination import Page

log = logging.getLogger("chain.mutation")
ACCESS_CODES = frozenset({"UNAUTHENTICATED", "FORBIDDEN"})
T = TypeVar("T")


async def audit_logs(
    ctx: Context, flt: audit_service.AuditFilter, *, first: int | None, after: str | None
) -> Page[AuditLog]:
    async with ctx.read() as session:
        return await audit_service.list_audit_logs(session, ctx.viewer, flt, first=first, after=after)


async def failed_jobs(ctx: Context, *, first: int | None, after: str | None) -> Page[Job]:
    async with ctx.read() as session:
        return await audit_service.failed_jobs(session, ctx.viewer, first=first, after=after)


# One mutation: its transaction and its audit entry (schema/core/transaction.py wraps every mutation in this).


def _entry(
    ctx: Context,
    operation: str,
    plan: Plan,
    input_data: Any,
    outcome: AuditOutcome,
    code: str | None,
    targets: list[str],
) -> AuditEntry:
    viewer = ctx.viewer
    # Where the rules it ran found it acted (a store whose scope it passed, the counter's, a store it created),
    # else the viewer's own store.
    acting = ctx.acting
    store_id = acting.store_id if acting.store_id is not None else viewer.store_id
    input_ids = [v for k, v in (input_data or {}).items() if (k == "id" or k.endswith("Id")) and isinstance(v, str)]
    return AuditEntry(
        request_id=ctx.request_id,
        actor_kind=viewer.kind.value,
        operation=operation,
        outcome=outcome,
        staff_id=acting.staff_id if acting.staff_id is not None else viewer.staff_id,
        member_id=viewer.member_id,
        role_code=viewer.role_code,
        store_id=store_id,
        target_ids=tuple(dict.fromkeys([*input_ids, *targets, *ctx.audit_targets])),
        input=redact(input_data, plan) if input_data is not None else None,
        error_code=code,
        ip=ctx.ip,
    )


async def _record_apart(ctx: Context, entry: AuditEntry) -> None:
    """Record a refused or failed mutation in a transaction of its own, after the rollback."""
    try:
        async with ctx.app.sessionmaker() as session, session.begin():
            record(session, entry)
    except Exception:
        log.exception("could not write the audit entry for %s", entry.operation)


async def _publish(ctx: Context, operation: str, events: list[Event]) -> None:
    """After the commit: a lost event must not turn a committed change into an error."""
    if not events:
        return
    ctx.app.forget(events)  # this instance forgets ended sessions before it answers; the others on the broadcast
    try:
        await ctx.app.broker.publish(events)
    except Exception:
        log.exception("could not publish %d events after %s", len(events), operation)


async def in_mutation(
    ctx: Context,
    operation: str,
    input_data: Any,
    plan: Plan,
    run: Callable[[], Awaitable[T]],
    targets_of: Callable[[T], list[str]],
    refusal: Callable[[DomainError], T],
) -> T:
    """Run one mutation in its one transaction with its audit entry, committing both or neither; a refusal (a
    DomainError) changes nothing but the log and answers `refusal(error)`."""
    logs.hide(hidden_values(input_data, plan))  # whatever this request logs from here on leaves them out
    session = ctx.app.sessionmaker()
    ctx.tx, ctx.audit_targets = session, []
    with tracking() as ctx.acting:
        try:
            async with session.begin():
                await begin_write(session)
                try:
                    result = await run()
                except PersistentRefusal as exc:
                    # The refusal itself must stick (a reused refresh token revokes its family), and so must what
                    # it announces (the revoked session's websockets close).
                    record(session, _entry(ctx, operation, plan, input_data, AuditOutcome.REFUSED, exc.code, []))
                    result = refusal(exc)
                else:
                    record(session, _entry(ctx, operation, plan, input_data, AuditOutcome.OK, None, targets_of(result)))
            await _publish(ctx, operation, take_pending(session))
            return result
        except DomainError as exc:
            await _record_apart(ctx, _entry(ctx, operation, plan, input_data, AuditOutcome.REFUSED, exc.code, []))
            return refusal(exc)
        except AccessDenied as exc:
            await _record_refused_access(ctx, operation, plan, input_data, exc.code)
            raise
        except GraphQLError as exc:
            # A permission class said no (schema/core/permissions.py): its error carries the code.
            code = (exc.extensions or {}).get("code")
            if code not in ACCESS_CODES:
                await _record_apart(ctx, _entry(ctx, operation, plan, input_data, AuditOutcome.FAILED, "INTERNAL", []))
                raise
            await _record_refused_access(ctx, operation, plan, input_data, code)
            raise
        except Exception:
            await _record_apart(ctx, _entry(ctx, operation, plan, input_data, AuditOutcome.FAILED, "INTERNAL", []))
            raise
        finally:
            ctx.tx = None
            await session.close()


async def _record_refused_access(ctx: Context, operation: str, plan: Plan, input_data: Any, code: str) -> None:
    outcome = AuditOutcome.UNAUTHENTICATED if code == "UNAUTHENTICATED" else AuditOutcome.FORBIDDEN
    await _record_apart(ctx, _entry(ctx, operation, plan, input_data, outcome, code, []))

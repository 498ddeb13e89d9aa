"""Follow-up calls (回访): tasks for a store's staff, from an audience (segment, tag, level, member list) or from an
event rule (a refund over an amount, a first visit) that the daily job turns into tasks.

Staff see their store's tasks only; the member's phone is shown for the call by an audited reveal; the outcome is
recorded once (a coupon promised on the call is issued through the coupon service, once per key). HQ sees
completion by store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, and_, case, cast, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    FollowUpOutcome,
    FollowUpRule,
    FollowUpRuleKind,
    FollowUpSource,
    FollowUpStatus,
    FollowUpTask,
    Member,
    MemberStore,
    MemberTagLink,
    Order,
    Refund,
    Staff,
    utcnow,
)
from services.access.permissions import Perm
from services.access.pii import PiiCipher
from services.access.scope import Viewer, idempotency_scope, require, require_store
from services.care import gifts, tickets
from services.care.scope import check_store, tasks_seen
from services.platform import idempotency, jobs
from services.platform.db import dialect_insert
from services.platform.errors import AccessDenied, DomainError, ErrorCode
from services.platform.pagination import Page, keyset_page
from services.platform.validation import optional_text, text

MAX_LIST = 1000
RULE_WINDOW = timedelta(days=2)  # the daily job looks back this far; dedupe keys make overlaps harmless


@dataclass(frozen=True)
class Audience:
    """Members of the store matching every given condition."""

    segment: str | None = None
    tag_id: int | None = None
    level_id: int | None = None
    member_ids: list[int] | None = None

    @property
    def source(self) -> FollowUpSource:
        if self.member_ids:
            return FollowUpSource.MEMBERS
        if self.tag_id is not None:
            return FollowUpSource.TAG
        if self.level_id is not None:
            return FollowUpSource.LEVEL
        return FollowUpSource.SEGMENT


@dataclass(frozen=True)
class NewFollowUps:
    store_id: int
    audience: Audience
    script: str
    due_at: datetime
    assignee_id: int | None = None


def _who(store_id: int, audience: Audience) -> list[Any]:
    if audience.segment is None and audience.tag_id is None and audience.level_id is None and not audience.member_ids:
        raise DomainError(ErrorCode.INVALID_INPUT, "Say who: a segment, a tag, a level or members.", "audience")
    if audience.member_ids is not None and len(audience.member_ids) > MAX_LIST:
        raise DomainError(ErrorCode.INVALID_INPUT, f"At most {MAX_LIST} members per list.", "memberIds")
    known = select(MemberStore.member_id).where(MemberStore.store_id == store_id)
    conditions: list[Any] = [Member.deleted_at.is_(None), Member.id.in_(known)]
    if audience.segment is not None:
        conditions.append(Member.segment == audience.segment)
    if audience.level_id is not None:
        conditions.append(Member.level_id == audience.level_id)
    if audience.tag_id is not None:
        conditions.append(Member.id.in_(select(MemberTagLink.member_id).where(MemberTagLink.tag_id == audience.tag_id)))
    if audience.member_ids:
        conditions.append(Member.id.in_(audience.member_ids))
    return conditions


async def _check_assignee(session: AsyncSession, store_id: int, assignee_id: int | None) -> None:
    if assignee_id is None:
        return
    staff = await session.get(Staff, assignee_id)
    if staff is None or staff.store_id != store_id or not staff.active:
        raise DomainError(
            ErrorCode.INVALID_INPUT, "Assign the task to an active member of the store's staff.", "assigneeId"
        )


async def _insert(session: AsyncSession, rows: Any, columns: list[str]) -> int:
    stmt = dialect_insert(session, FollowUpTask).from_select(columns, rows).on_conflict_do_nothing()
    return int((await session.execute(stmt)).rowcount)  # type: ignore[attr-defined]


async def create(session: AsyncSession, viewer: Viewer, spec: NewFollowUps, key: str) -> int:
    """One task per matching member of the store, in one statement; returns how many were made."""
    require_store(viewer, spec.store_id, Perm.CARE_MANAGE)
    await _check_assignee(session, spec.store_id, spec.assignee_id)
    if spec.due_at <= utcnow():
        raise DomainError(ErrorCode.INVALID_INPUT, "The due time is in the past.", "dueAt")
    now = utcnow()
    rows = select(
        literal(spec.store_id, FollowUpTask.store_id.type),
        Member.id,
        literal(spec.assignee_id, FollowUpTask.assignee_id.type),
        literal(spec.audience.source.value),
        literal(f"batch:{spec.store_id}:{key}:") + cast(Member.id, String),
        literal(text(spec.script, "script", max_len=1000)),
        literal(spec.due_at, FollowUpTask.due_at.type),
        literal(FollowUpStatus.OPEN.value),
        literal(0),
        literal(viewer.staff_id, FollowUpTask.created_by.type),
        literal(now, FollowUpTask.created_at.type),
    ).where(*_who(spec.store_id, spec.audience))
    columns = [
        "store_id",
        "member_id",
        "assignee_id",
        "source",
        "dedupe_key",
        "script",
        "due_at",
        "status",
        "coupons_given",
        "created_by",
        "created_at",
    ]
    return await _insert(session, rows, columns)


async def create_once(session: AsyncSession, viewer: Viewer, spec: NewFollowUps, *, key: str) -> int:
    """`create` once per key: a retried batch makes no second set of tasks and answers the first count."""
    a = spec.audience
    request = {
        "store": spec.store_id,
        "segment": a.segment,
        "tag": a.tag_id,
        "level": a.level_id,
        "members": None if a.member_ids is None else sorted(a.member_ids),
        "assignee": spec.assignee_id,
        "due": spec.due_at.isoformat(),
        "script": spec.script,
    }

    async def load(stored: dict[str, Any]) -> int:
        return int(stored["created"])

    return await idempotency.once(
        session,
        scope=idempotency_scope(viewer, "createFollowUps"),
        key=key,
        request=request,
        run=lambda: create(session, viewer, spec, key),
        save=lambda n: {"created": n},
        load=load,
    )


@dataclass(frozen=True)
class TaskFilter:
    store_id: int | None = None
    status: FollowUpStatus | None = None
    assignee_id: int | None = None


async def list_tasks(
    session: AsyncSession, viewer: Viewer, flt: TaskFilter, *, first: int | None, after: str | None
) -> Page[FollowUpTask]:
    """The viewer's store's tasks (HQ: every store's), by due time's creation order."""
    require(viewer, Perm.CARE_FOLLOW_UP)
    stmt = select(FollowUpTask).where(tasks_seen(viewer))
    if flt.store_id is not None:
        stmt = stmt.where(FollowUpTask.store_id == flt.store_id)
    if flt.status is not None:
        stmt = stmt.where(FollowUpTask.status == flt.status)
    if flt.assignee_id is not None:
        stmt = stmt.where(FollowUpTask.assignee_id == flt.assignee_id)
    return await keyset_page(session, stmt, FollowUpTask.id, first=first, after=after)


async def _task(session: AsyncSession, viewer: Viewer, task_id: int, *, open_only: bool = True) -> FollowUpTask:
    """The task, locked, when it is the viewer's store's; another store's is NOT_FOUND."""
    require(viewer, Perm.CARE_FOLLOW_UP)
    task = await session.get(FollowUpTask, task_id, with_for_update=True, populate_existing=True)
    if task is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such task.", "id")
    check_store(viewer, task.store_id, Perm.CARE_FOLLOW_UP, "task")
    if open_only and task.status is not FollowUpStatus.OPEN:
        raise DomainError(ErrorCode.INVALID_TRANSITION, "This task is done.", "id")
    return task


async def reveal_phone(
    session: AsyncSession, cipher: PiiCipher, viewer: Viewer, task_id: int
) -> tuple[int, str | None]:
    """Whose number, and the full number for the call, while the task is open (the mutation's audit entry records
    the reveal, naming the member)."""
    task = await _task(session, viewer, task_id)
    blob = await session.scalar(select(Member.phone_enc).where(Member.id == task.member_id))
    return task.member_id, cipher.decrypt(blob) if blob else None


@dataclass(frozen=True)
class Outcome:
    outcome: FollowUpOutcome
    note: str | None = None
    coupon_template_id: int | None = None


async def complete(session: AsyncSession, viewer: Viewer, task_id: int, result: Outcome) -> FollowUpTask:
    """Record the call's outcome; a coupon given is issued, a complaint raised opens a ticket."""
    task = await _task(session, viewer, task_id)
    note = optional_text(result.note, "note", max_len=500)
    if result.outcome is FollowUpOutcome.COUPON_GIVEN:
        if result.coupon_template_id is None:
            raise DomainError(ErrorCode.INVALID_INPUT, "Say which coupon was given.", "couponTemplateId")
        task.coupons_given = await gifts.give_coupon(
            session, viewer, result.coupon_template_id, task.member_id, task.store_id, "couponTemplateId"
        )
        task.coupon_template_id = result.coupon_template_id
    elif result.coupon_template_id is not None:
        raise DomainError(ErrorCode.INVALID_INPUT, "A coupon goes with the COUPON_GIVEN outcome.", "couponTemplateId")
    if result.outcome is FollowUpOutcome.COMPLAINT_RAISED:
        ticket = await tickets.open_for_member(
            session,
            store_id=task.store_id,
            member_id=task.member_id,
            subject=note or "Raised on a follow-up call",
            staff_id=viewer.staff_id,
        )
        task.ticket_id = ticket.id
    task.outcome, task.note, task.status = result.outcome, note, FollowUpStatus.DONE
    task.completed_by, task.completed_at = viewer.staff_id, utcnow()
    await session.flush()
    return task


async def complete_once(
    session: AsyncSession, viewer: Viewer, task_id: int, result: Outcome, *, key: str
) -> FollowUpTask:
    """`complete` once per key: a retried tap returns the done task; the coupon is issued once."""

    async def load(stored: dict[str, Any]) -> FollowUpTask:
        task = await session.get(FollowUpTask, int(stored["task_id"]))
        assert task is not None
        return task

    request = {
        "task": task_id,
        "outcome": result.outcome.value,
        "note": result.note,
        "coupon": result.coupon_template_id,
    }
    return await idempotency.once(
        session,
        scope=idempotency_scope(viewer, "completeFollowUp"),
        key=key,
        request=request,
        run=lambda: complete(session, viewer, task_id, result),
        save=lambda t: {"task_id": t.id},
        load=load,
    )


@dataclass(frozen=True)
class NewRule:
    kind: FollowUpRuleKind
    script: str
    store_id: int | None = None  # None: every store (HQ only)
    min_amount: int = 0
    due_hours: int = 48


async def create_rule(session: AsyncSession, viewer: Viewer, spec: NewRule) -> FollowUpRule:
    """An event rule the daily job applies: e.g. every refund over 100 yuan, a member's first visit."""
    require(viewer, Perm.CARE_MANAGE)
    if spec.store_id is None:
        if not viewer.is_hq:
            raise AccessDenied("Rules for every store are HQ's.")
    else:
        require_store(viewer, spec.store_id, Perm.CARE_MANAGE)
    if not 0 <= spec.min_amount <= 100_000_000:
        raise DomainError(ErrorCode.INVALID_INPUT, "The amount is not valid.", "minAmount")
    if not 1 <= spec.due_hours <= 24 * 30:
        raise DomainError(ErrorCode.INVALID_INPUT, "Due within 1 hour to 30 days.", "dueHours")
    rule = FollowUpRule(
        kind=spec.kind,
        store_id=spec.store_id,
        min_amount=spec.min_amount,
        script=text(spec.script, "script", max_len=1000),
        due_hours=spec.due_hours,
        active=True,
        created_by=viewer.staff_id,
    )
    session.add(rule)
    await session.flush()
    return rule


_RULE_COLUMNS = [
    "store_id",
    "member_id",
    "source",
    "dedupe_key",
    "script",
    "due_at",
    "status",
    "coupons_given",
    "created_at",
]


def _rule_rows(rule: FollowUpRule, now: datetime) -> Any:
    """The tasks a rule asks for among the events of the last RULE_WINDOW: one per event, keyed by it."""
    due = literal(now + timedelta(hours=rule.due_hours), FollowUpTask.due_at.type)
    fixed = (literal(rule.script), due, literal(FollowUpStatus.OPEN.value), literal(0))
    created = literal(now, FollowUpTask.created_at.type)
    if rule.kind is FollowUpRuleKind.REFUND_OVER:
        stmt = (
            select(
                Refund.store_id,
                Order.member_id,
                literal(FollowUpSource.REFUND_OVER.value),
                literal(f"rule:{rule.id}:refund:") + cast(Refund.id, String),
                *fixed,
                created,
            )
            .join(Order, Order.id == Refund.order_id)
            .where(
                Refund.amount >= rule.min_amount, Order.member_id.is_not(None), Refund.created_at >= now - RULE_WINDOW
            )
        )
        return stmt.where(Refund.store_id == rule.store_id) if rule.store_id is not None else stmt
    stmt = select(
        MemberStore.store_id,
        MemberStore.member_id,
        literal(FollowUpSource.FIRST_VISIT.value),
        literal(f"rule:{rule.id}:visit:") + cast(MemberStore.id, String),
        *fixed,
        created,
    ).where(MemberStore.first_seen_at >= now - RULE_WINDOW)
    return stmt.where(MemberStore.store_id == rule.store_id) if rule.store_id is not None else stmt


async def run_rules(session: AsyncSession, now: datetime) -> int:
    """Every active rule over the recent events; a second run adds nothing (one task per rule and event)."""
    rules = (await session.scalars(select(FollowUpRule).where(FollowUpRule.active.is_(True)))).all()
    made = 0
    for rule in rules:
        made += await _insert(session, _rule_rows(rule, now), _RULE_COLUMNS)
    return made


# The daily job applies the rules (registered here; services/registry.py imports this module).
jobs.daily("care.follow_up_rules", hour=7)(run_rules)


@dataclass(frozen=True)
class Completion:
    store_id: int
    total: int
    done: int
    overdue: int
    reached: int
    coupons_given: int


async def completion(session: AsyncSession, viewer: Viewer, *, since: datetime, now: datetime) -> list[Completion]:
    """Follow-up completion by store for tasks created since `since` (a store's manager: their own row)."""
    require(viewer, Perm.CARE_MANAGE)
    done = FollowUpTask.status == FollowUpStatus.DONE
    late = and_(FollowUpTask.status == FollowUpStatus.OPEN, FollowUpTask.due_at < now)
    stmt = (
        select(
            FollowUpTask.store_id,
            func.count(),
            func.sum(case((done, 1), else_=0)),
            func.sum(case((late, 1), else_=0)),
            func.sum(case((FollowUpTask.outcome == FollowUpOutcome.REACHED, 1), else_=0)),
            func.sum(FollowUpTask.coupons_given),
        )
        .where(tasks_seen(viewer, Perm.CARE_MANAGE), FollowUpTask.created_at >= since)
        .group_by(FollowUpTask.store_id)
        .order_by(FollowUpTask.store_id)
    )
    return [
        Completion(int(s), int(t), int(d or 0), int(o or 0), int(r or 0), int(c or 0))
        for s, t, d, o, r, c in (await session.execute(stmt)).all()
    ]

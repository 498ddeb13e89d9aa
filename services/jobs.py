"""Jobs: time-driven work as rows with a due time, claimed by one runner at a time, each run idempotent.

On PostgreSQL a runner claims with FOR UPDATE SKIP LOCKED, so several app instances never run one
job twice; on SQLite the single writer does the same. A handler runs in the claiming transaction,
so its work and the job's DONE commit together.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import Job, JobStatus, Order, utcnow
from services.access.scope import SYSTEM, Viewer, require
from services.analytics import facts
from services.marketing import coupons
from services.members import points, segments
from services.members.points import CHAIN_TZ
from services.orders.payments import PaymentProvider
from services.platform.db import insert_new, write_transaction
from services.platform.errors import AccessDenied, DomainError
from services.platform.events import Broker, Event, take_pending
from services.platform.pagination import Page, keyset_page

log = logging.getLogger("chain.jobs")


@dataclass(frozen=True)
class JobEnv:
    """What a handler may use besides its session: the time of the run and the payment providers (refunds)."""

    now: datetime
    providers: Mapping[str, PaymentProvider] = field(default_factory=dict)


Handler = Callable[[AsyncSession, dict[str, Any], JobEnv], Awaitable[None]]


async def enqueue(
    session: AsyncSession, *, kind: str, dedupe_key: str, due_at: datetime, payload: dict[str, Any]
) -> None:
    """Schedule a job once: the same dedupe key is never scheduled twice."""
    row = {"kind": kind, "dedupe_key": dedupe_key, "due_at": due_at, "payload": payload, "status": JobStatus.PENDING,
           "attempts": 0, "created_at": utcnow()}  # fmt: skip
    await session.execute(insert_new(session, Job, row, unique=["dedupe_key"]))


async def _expire_points(session: AsyncSession, payload: dict[str, Any], env: JobEnv) -> None:
    year = int(payload["year"])
    await points.expire_year(session, year)
    await schedule_points_expiry(session, year + 1)


async def _rfm(session: AsyncSession, payload: dict[str, Any], env: JobEnv) -> None:
    await segments.recompute(session, env.now)
    await schedule_rfm(session, env.now + timedelta(days=1))


async def _birthdays(session: AsyncSession, payload: dict[str, Any], env: JobEnv) -> None:
    await coupons.grant_birthdays(session, env.now)
    await schedule_birthdays(session, env.now + timedelta(days=1))


async def _co_purchases(session: AsyncSession, payload: dict[str, Any], env: JobEnv) -> None:
    from services.analytics import recommendations

    await recommendations.recompute_co_purchases(session, env.now)
    await _daily(session, "recs.copurchase", env.now + timedelta(days=1), 4)


async def _expire_order(session: AsyncSession, payload: dict[str, Any], env: JobEnv) -> None:
    from services.orders import lifecycle as orders  # orders schedule this job, so import at call time

    await orders.expire(session, int(payload["order_id"]), env.now, env.providers)


async def _refund_late_payment(session: AsyncSession, payload: dict[str, Any], env: JobEnv) -> None:
    from services.orders import late_payments  # late payments schedule this job

    await late_payments.refund(session, int(payload["payment_id"]), env.providers, env.now)


async def _close_payment(session: AsyncSession, payload: dict[str, Any], env: JobEnv) -> None:
    from services.orders import late_payments

    await late_payments.close_job(session, int(payload["payment_id"]), env.providers)


async def _expire_group(session: AsyncSession, payload: dict[str, Any], env: JobEnv) -> None:
    from services.marketing import group_buys  # group buys schedule this job

    await group_buys.expire(session, int(payload["group_id"]), env.now, env.providers)


async def _refund_order(session: AsyncSession, payload: dict[str, Any], env: JobEnv) -> None:
    """Give a whole order's money back (through its provider): run apart from the expiry that asked for it, so a
    provider that does not answer delays only the money, retried with backoff and listed when it gives up."""
    from services.orders import refunds  # refunds use orders, which schedule jobs

    order = await session.get(Order, int(payload["order_id"]), with_for_update=True)
    if order is None or order.status not in refunds.REFUNDABLE:
        return  # refunded (or never paid) already: nothing to give back twice
    await refunds.refund_order(session, SYSTEM, dict(env.providers), order_id=order.id, quantities=None,
                               restock=bool(payload.get("restock", True)), reason=payload.get("reason"))  # fmt: skip


async def schedule_refund(
    session: AsyncSession, order_id: int, *, reason: str, due_at: datetime, restock: bool = True
) -> None:
    """A refund of the whole order as a job of its own (once per order and reason)."""
    await enqueue(session, kind="orders.refund", dedupe_key=f"orders.refund:{order_id}:{reason}"[:128],
                  due_at=due_at, payload={"order_id": order_id, "reason": reason, "restock": restock})  # fmt: skip


HANDLERS: dict[str, Handler] = {
    "points.expire": _expire_points, "members.rfm": _rfm, "orders.expire": _expire_order,
    "coupons.birthday": _birthdays, "groups.expire": _expire_group, "recs.copurchase": _co_purchases,
    "payments.refund_late": _refund_late_payment, "payments.close": _close_payment,
    "orders.refund": _refund_order,
}  # fmt: skip


async def schedule_points_expiry(session: AsyncSession, year: int) -> None:
    await enqueue(session, kind="points.expire", dedupe_key=f"points.expire:{year}", due_at=points.expiry_due(year),
                  payload={"year": year})  # fmt: skip


async def _daily(session: AsyncSession, kind: str, day: datetime, hour: int) -> None:
    local = day.astimezone(CHAIN_TZ).date()
    due = datetime.combine(local, datetime.min.time(), tzinfo=CHAIN_TZ) + timedelta(hours=hour)
    await enqueue(session, kind=kind, dedupe_key=f"{kind}:{local.isoformat()}", due_at=due, payload={})


async def schedule_rfm(session: AsyncSession, day: datetime) -> None:
    await _daily(session, "members.rfm", day, 3)


async def schedule_birthdays(session: AsyncSession, day: datetime) -> None:
    await _daily(session, "coupons.birthday", day, 0)


async def ensure_recurring(session: AsyncSession, now: datetime | None = None) -> None:
    """The standing schedule: today's RFM run and the expiry of last year's and this year's points."""
    now = now or utcnow()
    await schedule_rfm(session, now)
    await schedule_birthdays(session, now)
    await _daily(session, "recs.copurchase", now, 4)
    year = now.astimezone(CHAIN_TZ).year
    for y in (year - 1, year):
        await schedule_points_expiry(session, y)


# A failing job is retried after 1, 2, 4 ... minutes, never more than an hour apart, and given up (FAILED, listed
# in failedJobs and counted in chain_jobs_failed) after MAX_ATTEMPTS runs: about four hours of a provider outage.
MAX_ATTEMPTS = 10
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_CAP = timedelta(hours=1)
# How often each instance folds pending sale and refund events into the report facts (README: every 10 s).
FACTS_INTERVAL_S = 10.0


def backoff(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed run: doubling from BACKOFF_BASE, capped at BACKOFF_CAP."""
    return min(BACKOFF_BASE * (1 << min(max(attempts - 1, 0), 20)), BACKOFF_CAP)


async def _claim_and_run(
    sessionmaker: async_sessionmaker[AsyncSession], env: JobEnv, broker: Broker | None, claimed: list[int]
) -> int | None:
    """Run one due job; returns its id, or None when nothing is due. Raises what the handler raised."""
    events: list[Event] = []
    job_id = await _run_one(sessionmaker, env, events, claimed)
    if broker is not None and events:
        await broker.publish(events)  # after the commit, as for mutations
    return job_id


async def _run_one(
    sessionmaker: async_sessionmaker[AsyncSession], env: JobEnv, events: list[Event], claimed: list[int]
) -> int | None:
    """Claim and run one due job; its id goes into `claimed` before it runs, so a failure is recorded on it."""
    at = env.now
    async with write_transaction(sessionmaker) as session:
        job = await session.scalar(
            select(Job).where(Job.status == JobStatus.PENDING, Job.due_at <= at).order_by(Job.due_at, Job.id)
            .limit(1).with_for_update(skip_locked=True)
        )  # fmt: skip
        if job is None:
            return None
        claimed.append(job.id)
        handler = HANDLERS.get(job.kind)
        job.attempts += 1
        if handler is None:
            job.status, job.last_error = JobStatus.FAILED, f"no handler for {job.kind}"
        else:
            await handler(session, dict(job.payload), env)
            job.status, job.done_at = JobStatus.DONE, utcnow()
        events.extend(take_pending(session))
        return job.id


async def _record_failure(
    sessionmaker: async_sessionmaker[AsyncSession], job_id: int, error: Exception, at: datetime
) -> None:
    """The failed run rolled back; count the attempt on that job and retry later, giving up after MAX_ATTEMPTS."""
    async with write_transaction(sessionmaker) as session:
        job = await session.get(Job, job_id, with_for_update=True)
        if job is None or job.status is not JobStatus.PENDING:
            return
        job.attempts += 1
        # A rule's code (e.g. PAYMENT_PROVIDER_UNAVAILABLE) says more to whoever reads failedJobs than its class.
        job.last_error = (f"{error.code.value}: {error}" if isinstance(error, DomainError) else repr(error))[:1000]
        job.due_at = at + backoff(job.attempts)
        if job.attempts >= MAX_ATTEMPTS:
            job.status = JobStatus.FAILED
            log.error("job %s (%s) FAILED after %s attempts: %s", job.id, job.kind, job.attempts, job.last_error)


async def run_due(
    sessionmaker: async_sessionmaker[AsyncSession], now: datetime | None = None, limit: int = 50,
    broker: Broker | None = None, providers: Mapping[str, PaymentProvider] | None = None,
) -> int:  # fmt: skip
    """Run every job due by `now`, each in its own transaction; returns how many ran."""
    ran = 0
    for _ in range(limit):
        at = now or utcnow()
        claimed: list[int] = []
        try:
            if await _claim_and_run(sessionmaker, JobEnv(at, providers or {}), broker, claimed) is None:
                break
            ran += 1
        except Exception as exc:
            log.exception("job failed; it is retried later")
            if claimed:
                await _record_failure(sessionmaker, claimed[0], exc, at)
    return ran


async def fold_facts(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """Fold every pending report event into the facts. Each batch is claimed with SKIP LOCKED (`facts.refresh`),
    so instances folding at the same time share the events and none counts one twice."""
    return await facts.refresh_all(sessionmaker)


async def _every(interval_s: float, what: str, work: Callable[[], Awaitable[Any]]) -> None:
    while True:
        try:
            await work()
        except Exception:
            log.exception("%s pass failed", what)
        await asyncio.sleep(interval_s)


async def failed_counts(session: AsyncSession) -> dict[str, int]:
    """FAILED jobs by kind, every known kind present (0 when none), for the chain_jobs_failed gauge."""
    counts = dict.fromkeys(HANDLERS, 0)
    stmt = select(Job.kind, func.count()).where(Job.status == JobStatus.FAILED).group_by(Job.kind)
    for kind, count in (await session.execute(stmt)).all():
        counts[kind] = int(count)
    return counts


async def failed_jobs(session: AsyncSession, viewer: Viewer, *, first: int | None, after: str | None) -> Page[Job]:
    """Jobs that gave up, newest first: HQ's to see (audit.view), as they are the chain's, not a store's."""
    require(viewer, "audit.view")
    if not viewer.is_hq:
        raise AccessDenied("Failed jobs are HQ's to see.")
    stmt = select(Job).where(Job.status == JobStatus.FAILED)
    return await keyset_page(session, stmt, Job.id, first=first, after=after, descending=True)


async def runner(
    sessionmaker: async_sessionmaker[AsyncSession],
    broker: Broker | None = None,
    interval_s: float = 30.0,
    providers: Mapping[str, PaymentProvider] | None = None,
    facts_interval_s: float | None = None,
    report_failed: Callable[[dict[str, int]], None] | None = None,
) -> None:
    """The app's background loops (started in the lifespan): due jobs every `interval_s`, their events out through
    `broker`, and after each pass the count of FAILED jobs by kind to `report_failed` (the metrics gauge); the
    report fold every `facts_interval_s` (default FACTS_INTERVAL_S, read when the runner starts)."""

    async def jobs_pass() -> None:
        await run_due(sessionmaker, broker=broker, providers=providers)
        if report_failed is not None:
            async with sessionmaker() as session:
                report_failed(await failed_counts(session))

    await asyncio.gather(
        _every(interval_s, "job runner", jobs_pass),
        _every(FACTS_INTERVAL_S if facts_interval_s is None else facts_interval_s, "report fold",
               lambda: fold_facts(sessionmaker)),
    )  # fmt: skip

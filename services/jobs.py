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

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import Job, JobStatus, utcnow
from services import coupons, facts, points, segments
from services.db import insert_new, write_transaction
from services.events import Broker, Event, take_pending
from services.payments import PaymentProvider
from services.points import CHAIN_TZ

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
    from services import recommendations

    await recommendations.recompute_co_purchases(session, env.now)
    await _daily(session, "recs.copurchase", env.now + timedelta(days=1), 4)


async def _expire_order(session: AsyncSession, payload: dict[str, Any], env: JobEnv) -> None:
    from services import orders  # orders schedule this job, so import at call time

    await orders.expire(session, int(payload["order_id"]), env.now, env.providers)


async def _refund_late_payment(session: AsyncSession, payload: dict[str, Any], env: JobEnv) -> None:
    from services import late_payments  # late payments schedule this job

    await late_payments.refund(session, int(payload["payment_id"]), env.providers, env.now)


async def _close_payment(session: AsyncSession, payload: dict[str, Any], env: JobEnv) -> None:
    from services import late_payments

    await late_payments.close_job(session, int(payload["payment_id"]), env.providers)


async def _expire_group(session: AsyncSession, payload: dict[str, Any], env: JobEnv) -> None:
    from services import group_buys  # group buys schedule this job

    await group_buys.expire(session, int(payload["group_id"]), env.now, env.providers)


HANDLERS: dict[str, Handler] = {
    "points.expire": _expire_points, "members.rfm": _rfm, "orders.expire": _expire_order,
    "coupons.birthday": _birthdays, "groups.expire": _expire_group, "recs.copurchase": _co_purchases,
    "payments.refund_late": _refund_late_payment, "payments.close": _close_payment,
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


MAX_ATTEMPTS = 5
# How often each instance folds pending sale and refund events into the report facts (README: every 10 s).
FACTS_INTERVAL_S = 10.0


async def _claim_and_run(
    sessionmaker: async_sessionmaker[AsyncSession], env: JobEnv, broker: Broker | None
) -> int | None:
    """Run one due job; returns its id, or None when nothing is due. Raises what the handler raised."""
    events: list[Event] = []
    job_id = await _run_one(sessionmaker, env, events)
    if broker is not None and events:
        await broker.publish(events)  # after the commit, as for mutations
    return job_id


async def _run_one(sessionmaker: async_sessionmaker[AsyncSession], env: JobEnv, events: list[Event]) -> int | None:
    at = env.now
    async with write_transaction(sessionmaker) as session:
        job = await session.scalar(
            select(Job).where(Job.status == JobStatus.PENDING, Job.due_at <= at).order_by(Job.due_at, Job.id)
            .limit(1).with_for_update(skip_locked=True)
        )  # fmt: skip
        if job is None:
            return None
        handler = HANDLERS.get(job.kind)
        job.attempts += 1
        if handler is None:
            job.status, job.last_error = JobStatus.FAILED, f"no handler for {job.kind}"
        else:
            await handler(session, dict(job.payload), env)
            job.status, job.done_at = JobStatus.DONE, utcnow()
        events.extend(take_pending(session))
        return job.id


async def _record_failure(sessionmaker: async_sessionmaker[AsyncSession], error: Exception, at: datetime) -> None:
    """The failed run rolled back; count the attempt and retry later, giving up after MAX_ATTEMPTS."""
    async with write_transaction(sessionmaker) as session:
        job = await session.scalar(
            select(Job).where(Job.status == JobStatus.PENDING, Job.due_at <= at).order_by(Job.due_at, Job.id).limit(1)
        )
        if job is None:
            return
        job.attempts += 1
        job.last_error = repr(error)[:1000]
        job.due_at = at + timedelta(minutes=2**job.attempts)
        if job.attempts >= MAX_ATTEMPTS:
            job.status = JobStatus.FAILED


async def run_due(
    sessionmaker: async_sessionmaker[AsyncSession], now: datetime | None = None, limit: int = 50,
    broker: Broker | None = None, providers: Mapping[str, PaymentProvider] | None = None,
) -> int:  # fmt: skip
    """Run every job due by `now`, each in its own transaction; returns how many ran."""
    ran = 0
    for _ in range(limit):
        at = now or utcnow()
        try:
            if await _claim_and_run(sessionmaker, JobEnv(at, providers or {}), broker) is None:
                break
            ran += 1
        except Exception as exc:
            log.exception("job failed; it is retried later")
            await _record_failure(sessionmaker, exc, at)
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


async def runner(
    sessionmaker: async_sessionmaker[AsyncSession],
    broker: Broker | None = None,
    interval_s: float = 30.0,
    providers: Mapping[str, PaymentProvider] | None = None,
    facts_interval_s: float | None = None,
) -> None:
    """The app's background loops (started in the lifespan): due jobs every `interval_s`, their events out through
    `broker`; the report fold every `facts_interval_s` (default FACTS_INTERVAL_S, read when the runner starts)."""
    await asyncio.gather(
        _every(interval_s, "job runner", lambda: run_due(sessionmaker, broker=broker, providers=providers)),
        _every(FACTS_INTERVAL_S if facts_interval_s is None else facts_interval_s, "report fold",
               lambda: fold_facts(sessionmaker)),
    )  # fmt: skip

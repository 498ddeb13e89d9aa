"""Jobs: time-driven work as rows with a due time, claimed by one runner at a time, each run idempotent.

On PostgreSQL a runner claims with FOR UPDATE SKIP LOCKED, so several app instances never run one
job twice; on SQLite the single writer does the same. A handler runs in the claiming transaction,
so its work and the job's DONE commit together.

This module knows no domain. A domain registers its own kinds beside the function that does the work:
`@job(kind)` for a job it enqueues, `@daily(kind, hour=...)` for work run once a day (the run schedules
tomorrow's), `@job(kind, seed=...)` for a job with a standing schedule of its own, and `@periodic(name, every_s=...)`
for work each instance's runner repeats on an interval. services/registry.py imports every domain that does,
so the app and `python -m services.cli` start with all of them registered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import Job, JobStatus, utcnow
from services.platform.config import CHAIN_TZ
from services.platform.db import insert_new, write_transaction
from services.platform.errors import DomainError
from services.platform.events import Broker, Event, take_pending
from services.platform.payments import PaymentProvider

log = logging.getLogger("chain.jobs")


@dataclass(frozen=True)
class JobEnv:
    """What a handler may use besides its session: the time of the run and the payment providers (refunds)."""

    now: datetime
    providers: Mapping[str, PaymentProvider] = field(default_factory=dict)


Handler = Callable[[AsyncSession, dict[str, Any], JobEnv], Awaitable[None]]
# Puts a kind's standing schedule in place as of `now` (idempotent: dedupe keys make a second call change nothing).
Seeder = Callable[[AsyncSession, datetime], Awaitable[None]]
# Work done once a day as of the run's time; what it returns is not used.
DailyWork = Callable[[AsyncSession, datetime], Awaitable[Any]]
# Work each runner repeats on an interval, given the sessionmaker (it opens its own transactions) and the broker that
# publishes what they announce once each commits (None: nothing listens, e.g. a test's runner).
PeriodicWork = Callable[[async_sessionmaker[AsyncSession], Broker | None], Awaitable[Any]]


@dataclass(frozen=True)
class Periodic:
    work: PeriodicWork
    every_s: float


# The registries the decorators below fill as each domain module is imported (services/registry.py imports them all).
HANDLERS: dict[str, Handler] = {}
SEEDERS: dict[str, Seeder] = {}
PERIODIC: dict[str, Periodic] = {}

H = TypeVar("H", bound=Handler)
W = TypeVar("W", bound=DailyWork)
P = TypeVar("P", bound=PeriodicWork)


def register(kind: str, handler: Handler, *, seed: Seeder | None = None) -> None:
    """Run `handler` for jobs of `kind`; `seed`, when given, is called by `ensure_recurring`. One handler a kind."""
    if kind in HANDLERS and HANDLERS[kind] is not handler:
        raise ValueError(f"job kind {kind!r} has a handler already")
    HANDLERS[kind] = handler
    if seed is not None:
        SEEDERS[kind] = seed


def job(kind: str, *, seed: Seeder | None = None) -> Callable[[H], H]:
    """Decorator: the handler of `kind`, registered where the domain defines it."""

    def decorate(handler: H) -> H:
        register(kind, handler, seed=seed)
        return handler

    return decorate


def daily(kind: str, *, hour: int) -> Callable[[W], W]:
    """Decorator: run `work(session, now)` once a day at `hour` (chain time); each run schedules the next day's,
    and `ensure_recurring` schedules today's."""

    def decorate(work: W) -> W:
        async def run(session: AsyncSession, payload: dict[str, Any], env: JobEnv) -> None:
            await work(session, env.now)
            await schedule_daily(session, kind, env.now + timedelta(days=1), hour)

        async def seed(session: AsyncSession, now: datetime) -> None:
            await schedule_daily(session, kind, now, hour)

        register(kind, run, seed=seed)
        return work

    return decorate


def periodic(name: str, *, every_s: float) -> Callable[[P], P]:
    """Decorator: each runner calls `work(sessionmaker, broker)` every `every_s` seconds (not a job row: every
    instance runs it, so the work must be safe to run concurrently)."""

    def decorate(work: P) -> P:
        if name in PERIODIC and PERIODIC[name].work is not work:
            raise ValueError(f"periodic work {name!r} is registered already")
        PERIODIC[name] = Periodic(work, every_s)
        return work

    return decorate


async def enqueue(
    session: AsyncSession, *, kind: str, dedupe_key: str, due_at: datetime, payload: dict[str, Any]
) -> None:
    """Schedule a job once: the same dedupe key is never scheduled twice."""
    row = {
        "kind": kind,
        "dedupe_key": dedupe_key,
        "due_at": due_at,
        "payload": payload,
        "status": JobStatus.PENDING,
        "attempts": 0,
        "created_at": utcnow(),
    }
    await session.execute(insert_new(session, Job, row, unique=["dedupe_key"]))


async def schedule_daily(session: AsyncSession, kind: str, day: datetime, hour: int) -> None:
    """Schedule `kind` once on the chain's calendar day of `day`, at `hour` local time."""
    local = day.astimezone(CHAIN_TZ).date()
    due = datetime.combine(local, datetime.min.time(), tzinfo=CHAIN_TZ) + timedelta(hours=hour)
    await enqueue(session, kind=kind, dedupe_key=f"{kind}:{local.isoformat()}", due_at=due, payload={})


async def ensure_recurring(session: AsyncSession, now: datetime | None = None) -> None:
    """The standing schedule: every registered kind's (today's daily runs, the points expiries, ...)."""
    now = now or utcnow()
    for seeder in list(SEEDERS.values()):
        await seeder(session, now)


# A failing job is retried after 1, 2, 4 ... minutes, never more than an hour apart, and given up (FAILED, listed
# in failedJobs and counted in chain_jobs_failed) after MAX_ATTEMPTS runs: about four hours of a provider outage.
MAX_ATTEMPTS = 10
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_CAP = timedelta(hours=1)


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
            select(Job)
            .where(Job.status == JobStatus.PENDING, Job.due_at <= at)
            .order_by(Job.due_at, Job.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
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
        await session.flush()
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
    sessionmaker: async_sessionmaker[AsyncSession],
    now: datetime | None = None,
    limit: int = 50,
    broker: Broker | None = None,
    providers: Mapping[str, PaymentProvider] | None = None,
) -> int:
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


async def runner(
    sessionmaker: async_sessionmaker[AsyncSession],
    broker: Broker | None = None,
    interval_s: float = 30.0,
    providers: Mapping[str, PaymentProvider] | None = None,
    facts_interval_s: float | None = None,
    report_failed: Callable[[dict[str, int]], None] | None = None,
    intervals: Mapping[str, float] | None = None,
) -> None:
    """The app's background loops (started in the lifespan): due jobs every `interval_s`, their events out through
    `broker`, and after each pass the count of FAILED jobs by kind to `report_failed` (the metrics gauge); beside
    it each registered periodic work on its own interval (read from PERIODIC when the runner starts).
    `facts_interval_s`, when given, is the interval of the report fold (registered as "facts.fold"; the app passes
    its FACTS_INTERVAL_S setting); `intervals` overrides other periodic work's interval by name (the app's
    MESSAGES_INTERVAL_S for "messages.send")."""

    async def jobs_pass() -> None:
        await run_due(sessionmaker, broker=broker, providers=providers)
        if report_failed is not None:
            async with sessionmaker() as session:
                report_failed(await failed_counts(session))

    intervals = dict(intervals or {})
    if facts_interval_s is not None:
        intervals["facts.fold"] = facts_interval_s

    def loop(name: str, p: Periodic) -> Awaitable[None]:
        return _every(intervals.get(name, p.every_s), name, lambda: p.work(sessionmaker, broker))

    await asyncio.gather(
        _every(interval_s, "job runner", jobs_pass), *(loop(name, p) for name, p in list(PERIODIC.items()))
    )

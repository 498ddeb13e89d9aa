"""Failed jobs are not silent: retries back off, HQ lists what gave up and scrapes it, and an expiry whose refund
cannot complete still gives the stock back and leaves the money to a retried, visible refund job."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select

from models import GroupBuy, GroupBuyStatus, Job, JobStatus, Order, OrderStatus, StockLevel, utcnow
from services.marketing import group_buys
from services.platform import jobs
from services.platform.db import write_transaction
from services.platform.errors import DomainError, ErrorCode
from tests.marketing.test_marketing import _group_campaign, _member, _members, _pay
from tests.marketing_givens import given_menu

FAILED = """query($n: Int) { failedJobs(first: $n) { edges { node { id kind attempts lastError payload dueAt } }
  pageInfo { hasNextPage } } }"""


def test_retries_double_from_a_minute_and_never_wait_more_than_an_hour():
    assert [jobs.backoff(n) for n in (1, 2, 3, 4)] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert jobs.backoff(7) == jobs.backoff(8) == jobs.backoff(500) == timedelta(hours=1)
    assert sum((jobs.backoff(n) for n in range(1, jobs.MAX_ATTEMPTS)), timedelta()) > timedelta(hours=3)


async def _boom_job(state, monkeypatch, now: datetime) -> None:
    async def broken(session, payload, env):
        raise RuntimeError("provider says no")

    monkeypatch.setitem(jobs.HANDLERS, "test.boom", broken)
    async with write_transaction(state.sessionmaker) as session:
        await session.execute(delete(Job))
        await jobs.enqueue(session, kind="test.boom", dedupe_key="test.boom:1", due_at=now, payload={"order_id": 7})


@pytest.mark.postgres_too
async def test_a_job_that_keeps_failing_backs_off_gives_up_and_is_listed_for_hq_only(api, state, monkeypatch):
    now = datetime(2026, 11, 22, 20, 0, tzinfo=UTC)
    await _boom_job(state, monkeypatch, now)
    at, waits = now, []
    for _ in range(jobs.MAX_ATTEMPTS):
        assert await jobs.run_due(state.sessionmaker, at) == 0
        async with state.sessionmaker() as session:
            job = await session.scalar(select(Job).where(Job.kind == "test.boom"))
        waits.append(job.due_at.replace(tzinfo=job.due_at.tzinfo or UTC) - at)
        assert await jobs.run_due(state.sessionmaker, at + waits[-1] - timedelta(seconds=1)) == 0  # not yet due
        at += waits[-1]
    assert waits[:4] == [timedelta(minutes=m) for m in (1, 2, 4, 8)] and max(waits) == timedelta(hours=1)
    assert job is not None
    assert job.status is JobStatus.FAILED and job.attempts == jobs.MAX_ATTEMPTS and "provider says no" in job.last_error

    listed = await api.gql(FAILED, {"n": 10}, as_="hq.admin")
    assert "errors" not in listed, listed
    [node] = [e["node"] for e in listed["data"]["failedJobs"]["edges"]]
    assert node["kind"] == "test.boom" and node["attempts"] == jobs.MAX_ATTEMPTS and node["payload"] == {"order_id": 7}
    assert "provider says no" in node["lastError"]
    refetch = "query($id: ID!) { node(id: $id) { id ... on FailedJob { kind attempts } } }"
    again = await api.gql(refetch, {"id": node["id"]}, as_="hq.admin")
    assert again["data"]["node"] == {"id": node["id"], "kind": "test.boom", "attempts": jobs.MAX_ATTEMPTS}
    assert (await api.gql(refetch, {"id": node["id"]}, as_="sh01.manager"))["data"]["node"] is None
    for who in ("sh01.manager", "hq.operator", "member:job-watcher"):
        refused = await api.gql(FAILED, as_=who)
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN", (who, refused)
    assert (await api.post(FAILED)).json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_the_runner_reports_failed_jobs_by_kind_to_the_metric(state, monkeypatch):
    now = utcnow()
    await _boom_job(state, monkeypatch, now)
    async with write_transaction(state.sessionmaker) as session:
        job = await session.scalar(select(Job).where(Job.kind == "test.boom"))
        assert job is not None
        job.status, job.attempts = JobStatus.FAILED, jobs.MAX_ATTEMPTS
    task = asyncio.create_task(
        jobs.runner(state.sessionmaker, interval_s=0.05, report_failed=state.metrics.set_failed_jobs)
    )
    try:
        await asyncio.sleep(0.5)
    finally:
        task.cancel()
    scraped = state.metrics.render().decode()
    assert 'chain_jobs_failed{kind="test.boom"} 1.0' in scraped
    assert 'chain_jobs_failed{kind="orders.refund"} 0.0' in scraped


@pytest.mark.postgres_too
async def test_a_group_expiry_whose_refund_fails_releases_the_stock_and_retries_the_refund_on_its_own(
    api, state, chain
):
    menu = await given_menu(state, chain, on_hand=10)
    campaign_id = await _group_campaign(state, menu, 4)
    people = await _members(state, 2)
    provider = state.payment_providers["sandbox"]
    async with write_transaction(state.sessionmaker) as session:
        opened = await group_buys.open_group(
            session,
            _member(people[0]),
            provider,
            campaign_id=campaign_id,
            store_id=menu.store,
            sku_id=menu.a,
            idempotency_key="f-0",
        )
    async with write_transaction(state.sessionmaker) as session:
        unpaid = (
            await group_buys.join_group(
                session, _member(people[1]), provider, share_code=opened.group.share_code, idempotency_key="f-1"
            )
        ).placed.order
    paid = opened.placed.order
    await _pay(api, state, paid)
    # The provider does not answer the paid member's refund (closing the unpaid member's payment order works).
    answer_refund = provider.refund

    def refund_once_unanswered(**kwargs):
        provider.refund = answer_refund
        raise DomainError(ErrorCode.PAYMENT_PROVIDER_UNAVAILABLE, "The payment provider did not answer; try again.")

    provider.refund = refund_once_unanswered
    later = utcnow() + timedelta(minutes=31)
    await jobs.run_due(state.sessionmaker, later, providers=state.payment_providers)

    async def seen():
        async with state.sessionmaker() as session:
            group = await session.get(GroupBuy, opened.group.id)
            statuses = [(await session.get(Order, o.id, populate_existing=True)).status for o in (paid, unpaid)]
            level = await session.scalar(
                select(StockLevel).where(StockLevel.sku_id == menu.a, StockLevel.store_id == menu.store)
            )
            refund_job = await session.scalar(select(Job).where(Job.kind == "orders.refund"))
        return group.status, statuses, (level.on_hand, level.reserved), refund_job

    group, statuses, stock, refund_job = await seen()
    # The group failed and the unpaid member's hold came back although the paid member's refund did not go through.
    assert group is GroupBuyStatus.FAILED and statuses == [OrderStatus.PAID, OrderStatus.CANCELLED]
    assert stock == (9, 0)
    assert refund_job.status is JobStatus.PENDING and refund_job.attempts == 1
    assert (
        "PAYMENT_PROVIDER_UNAVAILABLE" in refund_job.last_error and provider.refunds.get(f"ORD{paid.id:012d}") is None
    )

    await jobs.run_due(state.sessionmaker, later + timedelta(minutes=2), providers=state.payment_providers)
    await jobs.run_due(state.sessionmaker, later + timedelta(minutes=3), providers=state.payment_providers)
    group, statuses, stock, refund_job = await seen()
    assert statuses == [OrderStatus.REFUNDED, OrderStatus.CANCELLED] and stock == (10, 0)
    assert refund_job.status is JobStatus.DONE and refund_job.attempts == 2
    assert list(provider.refunds[f"ORD{paid.id:012d}"].values()) == [6000]

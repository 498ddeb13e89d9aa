"""Jobs: due work runs once, is idempotent, and schedules its successor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select

from models import Job, JobStatus, Member, PointsEntry
from services.members import points
from services.platform import jobs
from services.platform.db import write_transaction


@pytest.mark.postgres_too
async def test_rfm_job_segments_members_once_and_schedules_tomorrow(state):
    now = datetime(2026, 11, 22, 20, 0, tzinfo=UTC)  # 04:00 on the 23rd in Shanghai: the 3 a.m. run is due
    async with write_transaction(state.sessionmaker) as session:
        session.add_all(
            [
                Member(
                    name="vip",
                    visit_count=12,
                    total_spend=800_000,
                    last_visit_at=now - timedelta(days=3),
                    joined_at=now - timedelta(days=400),
                ),
                Member(
                    name="lost",
                    visit_count=4,
                    total_spend=10_000,
                    last_visit_at=now - timedelta(days=300),
                    joined_at=now - timedelta(days=400),
                ),
                Member(name="new", visit_count=0, joined_at=now - timedelta(days=2)),
                Member(
                    name="at risk",
                    visit_count=3,
                    total_spend=5_000,
                    last_visit_at=now - timedelta(days=120),
                    joined_at=now - timedelta(days=400),
                ),
            ]
        )
        await jobs.ensure_recurring(session, now)
    assert await jobs.run_due(state.sessionmaker, now) >= 1
    assert await jobs.run_due(state.sessionmaker, now) == 0  # everything due ran, once
    async with state.sessionmaker() as session:
        segments = dict((await session.execute(select(Member.name, Member.segment))).all())
        pending = (await session.scalars(select(Job.dedupe_key).where(Job.status == JobStatus.PENDING))).all()
    assert segments == {"vip": "VIP", "lost": "LOST", "new": "NEW", "at risk": "AT_RISK"}
    assert "members.rfm:2026-11-24" in pending


@pytest.mark.postgres_too
async def test_points_expiry_job_runs_when_due_and_schedules_next_year(state):
    async with write_transaction(state.sessionmaker) as session:
        member = Member(name="m")
        session.add(member)
        await session.flush()
        earned_at = datetime(2025, 3, 1, tzinfo=UTC)
        await points.earn(session, member.id, 10_000, store_id=None, ref_type="order", ref_id=1, at=earned_at)
        await points.schedule_expiry(session, 2025)

    async def expired():
        async with state.sessionmaker() as session:
            return (await session.scalars(select(PointsEntry.points).where(PointsEntry.kind == "EXPIRE"))).all()

    await jobs.run_due(state.sessionmaker, datetime(2026, 12, 31, tzinfo=UTC))
    assert await expired() == []
    await jobs.run_due(state.sessionmaker, datetime(2026, 12, 31, 16, 0, tzinfo=UTC))  # midnight in Shanghai
    await jobs.run_due(state.sessionmaker, datetime(2026, 12, 31, 17, 0, tzinfo=UTC))
    assert await expired() == [-100]
    async with state.sessionmaker() as session:
        keys = set((await session.scalars(select(Job.dedupe_key))).all())
    assert "points.expire:2026" in keys


@pytest.mark.postgres_too
async def test_a_failing_job_is_retried_later_and_does_not_block_others(state, monkeypatch):
    async def broken(session, payload, env):
        raise RuntimeError("boom")

    monkeypatch.setitem(jobs.HANDLERS, "members.rfm", broken)
    now = datetime(2026, 11, 22, 20, 0, tzinfo=UTC)
    async with write_transaction(state.sessionmaker) as session:
        await session.execute(delete(Job))  # only the broken job is due
        await jobs.SEEDERS["members.rfm"](session, now)  # today's run, as ensure_recurring schedules it
    assert await jobs.run_due(state.sessionmaker, now) == 0
    async with state.sessionmaker() as session:
        job = await session.scalar(select(Job).where(Job.kind == "members.rfm"))
    assert job.status is JobStatus.PENDING and job.attempts == 1 and "boom" in job.last_error and job.due_at > now

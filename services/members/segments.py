"""RFM segments (recency, frequency, monetary), recomputed for every member by a daily job."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, case, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import Member, utcnow
from services.platform import jobs

# The rules, first match wins. VIP: recent, frequent and big spenders.
VIP_SPEND = 500_000  # 5,000 yuan
VIP_VISITS = 10
LOYAL_VISITS = 5


async def recompute(session: AsyncSession, now: datetime | None = None) -> int:
    """Set every member's segment in one statement; running it twice the same day changes nothing."""
    now = now or utcnow()
    recent, lapsing, lost = now - timedelta(days=30), now - timedelta(days=90), now - timedelta(days=180)
    segment = case(
        (and_(Member.visit_count <= 1, Member.joined_at >= recent), "NEW"),
        (Member.last_visit_at.is_(None), "LOST"),
        (Member.last_visit_at < lost, "LOST"),
        (
            and_(Member.last_visit_at >= recent, Member.visit_count >= VIP_VISITS, Member.total_spend >= VIP_SPEND),
            "VIP",
        ),
        (and_(Member.last_visit_at >= lapsing, Member.visit_count >= LOYAL_VISITS), "LOYAL"),
        (and_(Member.last_visit_at < lapsing, Member.visit_count >= 3), "AT_RISK"),
        else_="REGULAR",
    )
    result = await session.execute(
        update(Member)
        .where(Member.deleted_at.is_(None))
        .values(segment=segment)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# The daily job runs it (registered here, in its own domain; services/registry.py imports this module).
jobs.daily("members.rfm", hour=3)(recompute)

"""After-sales figures per store next to its sales (issue #17): complaints filed and ratings given over a period.

Read from the tables directly (analytics sits below the after-sales domain and imports none of it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Rating, Ticket
from services.access.permissions import Perm
from services.access.scope import StoreColumn, Viewer, store_condition
from services.platform.config import CHAIN_TZ


@dataclass(frozen=True)
class ServiceFigures:
    complaints: int = 0
    ratings: int = 0
    stars: int = 0  # the sum of the ratings' stars

    @property
    def average_rating(self) -> float | None:
        return round(self.stars / self.ratings, 2) if self.ratings else None


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    return datetime.combine(start, time.min, tzinfo=CHAIN_TZ), datetime.combine(
        end + timedelta(days=1), time.min, tzinfo=CHAIN_TZ
    )


async def by_store(
    session: AsyncSession, viewer: Viewer, store_ids: list[int], start: date, end: date
) -> dict[int, ServiceFigures]:
    """Complaints and ratings per store over the chain-time days start..end (the viewer's report scope)."""
    since, until = _bounds(start, end)

    def seen(column: StoreColumn) -> ColumnElement[bool]:
        return store_condition(viewer, column, Perm.REPORT_VIEW)

    complaints = dict(
        (
            await session.execute(
                select(Ticket.store_id, func.count())
                .where(Ticket.store_id.in_(store_ids), seen(Ticket.store_id))
                .where(Ticket.created_at >= since, Ticket.created_at < until)
                .group_by(Ticket.store_id)
            )
        ).all()
    )
    ratings = {
        int(r[0]): (int(r[1]), int(r[2] or 0))
        for r in (
            await session.execute(
                select(Rating.store_id, func.count(), func.sum(Rating.stars))
                .where(Rating.store_id.in_(store_ids), seen(Rating.store_id))
                .where(Rating.created_at >= since, Rating.created_at < until)
                .group_by(Rating.store_id)
            )
        ).all()
    }
    return {s: ServiceFigures(int(complaints.get(s, 0)), *ratings.get(s, (0, 0))) for s in store_ids}

"""Loaders for follow-up tasks, tickets and their entries, and the member a task or ticket is about; each filtered
by services/care/scope.py, so another store's rows never load."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import or_, select

from models import FollowUpTask, Member, Ticket, TicketEntry
from resolvers.loaders.base import ScopedLoader, by_key, grouped
from services.access.pii import mask_phone
from services.analytics import service
from services.analytics.service import ServiceFigures
from services.care.scope import tasks_seen, tickets_seen


@dataclass(frozen=True)
class CareMember:
    """Who to call or answer: the name and the masked phone (the full number only by the audited reveal)."""

    id: int
    name: str | None
    phone: str | None


class FollowUpTaskByIdLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[FollowUpTask | None]:
        stmt = select(FollowUpTask).where(FollowUpTask.id.in_(keys), tasks_seen(self.viewer))
        return by_key(keys, await self._rows(stmt), lambda t: t.id)


class TicketByIdLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[Ticket | None]:
        stmt = select(Ticket).where(Ticket.id.in_(keys), tickets_seen(self.viewer))
        return by_key(keys, await self._rows(stmt), lambda t: t.id)


class TicketEntriesByTicketLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[list[TicketEntry]]:
        stmt = (
            select(TicketEntry)
            .join(Ticket, Ticket.id == TicketEntry.ticket_id)
            .where(TicketEntry.ticket_id.in_(keys), tickets_seen(self.viewer))
            .order_by(TicketEntry.id)
        )
        return grouped(keys, await self._rows(stmt), lambda e: e.ticket_id)


class CareMemberLoader(ScopedLoader):
    """A member the viewer has a task or a ticket about (a clerk calling needs the name without member.read)."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[CareMember | None]:
        tasked = select(FollowUpTask.member_id).where(tasks_seen(self.viewer))
        ticketed = select(Ticket.member_id).where(tickets_seen(self.viewer))
        stmt = select(Member.id, Member.name, Member.phone_prefix, Member.phone_last4).where(
            Member.id.in_(keys), or_(Member.id.in_(tasked), Member.id.in_(ticketed))
        )
        async with self.sessionmaker() as session:
            rows = (await session.execute(stmt)).all()
        found = [CareMember(r.id, r.name, mask_phone(prefix=r.phone_prefix, last4=r.phone_last4)) for r in rows]
        return by_key(keys, found, lambda m: m.id)


class StoreServiceLoader(ScopedLoader):
    """Complaints and ratings of stores over a period (the rows of a store report already in scope)."""

    async def batch_load_fn(self, keys: Sequence[tuple[int, date, date]]) -> list[ServiceFigures]:
        periods: dict[tuple[date, date], list[int]] = defaultdict(list)
        for store_id, start, end in keys:
            periods[(start, end)].append(store_id)
        found: dict[tuple[int, date, date], ServiceFigures] = {}
        async with self.sessionmaker() as session:
            for (start, end), stores in periods.items():
                figures = await service.by_store(session, self.viewer, stores, start, end)
                found.update({(s, start, end): f for s, f in figures.items()})
        return [found.get(k, ServiceFigures()) for k in keys]

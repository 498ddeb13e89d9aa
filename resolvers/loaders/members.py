"""Loaders for members, their levels, tags, per-store stats and ledgers."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Member,
    MemberLevel,
    MemberStore,
    MemberTag,
    MemberTagLink,
)
from resolvers.loaders.base import ScopedLoader, by_key
from services.access.permissions import Perm
from services.members import ledgers
from services.members.accounts import visible_members
from services.platform.pagination import Page


class MemberByIdLoader(ScopedLoader):
    """Members the viewer may see: themself; HQ everyone; a store's staff those related to their store."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[Member | None]:
        rows = await self._rows(select(Member).where(Member.id.in_(keys), visible_members(self.viewer)))
        return by_key(keys, rows, lambda m: m.id)


class MemberLevelByIdLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[MemberLevel | None]:
        return by_key(keys, await self._rows(select(MemberLevel).where(MemberLevel.id.in_(keys))), lambda x: x.id)


class TagsByMemberLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[list[MemberTag]]:
        async with self.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(MemberTagLink.member_id, MemberTag)
                    .join(MemberTag, MemberTag.id == MemberTagLink.tag_id)
                    .where(MemberTagLink.member_id.in_(keys))
                    .order_by(MemberTag.name)
                )
            ).all()
        groups: dict[int, list[MemberTag]] = defaultdict(list)
        for member_id, tag in rows:
            groups[member_id].append(tag)
        return [groups.get(k, []) for k in keys]


@dataclass(frozen=True)
class MemberStoreStats:
    favourite_store_id: int | None
    last_purchase_at: datetime | None


class MemberStoreStatsLoader(ScopedLoader):
    """Favourite store (most purchases) and last purchase of each member, from the member-store relation."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[MemberStoreStats]:
        rows = await self._rows(
            select(MemberStore).where(MemberStore.member_id.in_(keys), MemberStore.purchase_count > 0)
        )
        by_member: dict[int, list[MemberStore]] = defaultdict(list)
        for r in rows:
            by_member[r.member_id].append(r)
        never = datetime.min.replace(tzinfo=UTC)
        stats = {
            member_id: MemberStoreStats(
                favourite_store_id=max(links, key=lambda x: (x.purchase_count, x.last_purchase_at or never)).store_id,
                last_purchase_at=max((x.last_purchase_at for x in links if x.last_purchase_at), default=None),
            )
            for member_id, links in by_member.items()
        }
        return [stats.get(k, MemberStoreStats(None, None)) for k in keys]


LedgerKey = tuple[int, int, int | None]  # member id, page size, after id


class _LedgerLoader(ScopedLoader):
    """A page of a member's ledger per key; one statement per distinct (first, after), whatever the members."""

    async def _read(
        self, session: AsyncSession, member_ids: list[int], first: int, after_id: int | None
    ) -> dict[int, Page[Any]]:
        raise NotImplementedError

    async def batch_load_fn(self, keys: Sequence[LedgerKey]) -> list[Page[Any]]:
        shapes: dict[tuple[int, int | None], list[int]] = defaultdict(list)
        for member_id, first, after_id in keys:
            shapes[(first, after_id)].append(member_id)
        pages: dict[LedgerKey, Page[Any]] = {}
        async with self.sessionmaker() as session:
            for (first, after_id), member_ids in shapes.items():
                for member_id, page in (await self._read(session, member_ids, first, after_id)).items():
                    pages[(member_id, first, after_id)] = page
        return [pages[k] for k in keys]


class PointsLedgerLoader(_LedgerLoader):
    async def _read(
        self, session: AsyncSession, member_ids: list[int], first: int, after_id: int | None
    ) -> dict[int, Page[Any]]:
        visible = visible_members(self.viewer, Perm.MEMBER_READ)
        return dict(await ledgers.points_pages(session, member_ids, visible, first=first, after_id=after_id))


class BalanceLedgerLoader(_LedgerLoader):
    async def _read(
        self, session: AsyncSession, member_ids: list[int], first: int, after_id: int | None
    ) -> dict[int, Page[Any]]:
        visible = visible_members(self.viewer, Perm.MEMBER_READ)
        return dict(await ledgers.balance_pages(session, member_ids, visible, first=first, after_id=after_id))

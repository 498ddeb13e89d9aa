"""Loaders for cards: products, members' cards (scoped), and each card's history (scoped per entry)."""

from __future__ import annotations

from collections.abc import Sequence

from models import CardEntry, CardProduct, MemberCard
from resolvers.loaders.base import ScopedLoader, by_key, grouped
from services.cards import queries


class CardProductByIdLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[CardProduct | None]:
        async with self.sessionmaker() as session:
            return by_key(keys, await queries.products_by_id(session, keys), lambda p: p.id)


class MemberCardByIdLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[MemberCard | None]:
        async with self.sessionmaker() as session:
            return by_key(keys, await queries.cards_by_id(session, self.viewer, keys), lambda c: c.id)


class CardHistoryLoader(ScopedLoader):
    """A card's entries the viewer may see, newest first: a member's own, or those at the staff's counters."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[list[CardEntry]]:
        async with self.sessionmaker() as session:
            return grouped(keys, await queries.entries_of(session, self.viewer, keys), lambda e: e.card_id)

"""The loader base: one instance per class per request, each batch in its own short session, filtered by scope."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

from aiodataloader import DataLoader
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.access.scope import Viewer
from services.platform.pagination import AnySelect

K = TypeVar("K", bound=Hashable)


L = TypeVar("L")


V = TypeVar("V")


class ScopedLoader(DataLoader[Any, Any]):
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], viewer: Viewer) -> None:
        super().__init__()
        self.sessionmaker = sessionmaker
        self.viewer = viewer

    def load(self, key: Any) -> asyncio.Future[Any]:
        """The key's value, shared by every field that asks for it. Shielded: when graphql-core cancels a field
        because a sibling failed (a non-null FORBIDDEN), only that field's wait ends; the shared future, which
        another part of the query still awaits, is not cancelled with it."""
        return asyncio.shield(super().load(key))

    async def _rows(self, stmt: AnySelect) -> Sequence[Any]:
        async with self.sessionmaker() as session:
            return (await session.scalars(stmt)).all()


def by_key(keys: Sequence[K], rows: Sequence[V], key: Callable[[V], K]) -> list[V | None]:
    found = {key(r): r for r in rows}
    return [found.get(k) for k in keys]


def grouped(keys: Sequence[K], rows: Sequence[V], key: Callable[[V], K]) -> list[list[V]]:
    groups: dict[K, list[V]] = defaultdict(list)
    for r in rows:
        groups[key(r)].append(r)
    return [groups.get(k, []) for k in keys]

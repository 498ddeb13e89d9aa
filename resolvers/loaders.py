"""Per-request dataloaders: one instance per class per request, each batch in its own short session.

Every loader filters by the viewer's scope, so a relation followed from any type can never
return another store's rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

from aiodataloader import DataLoader
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import AuditLog, Member, Role, RoleScope, Staff, Store
from services.scope import Viewer, restrict
from services.stores import visible_condition

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ScopedLoader(DataLoader[Any, Any]):
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], viewer: Viewer) -> None:
        super().__init__()
        self.sessionmaker = sessionmaker
        self.viewer = viewer

    async def _rows(self, stmt: Select[Any]) -> Sequence[Any]:
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


class StoreByIdLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[Store | None]:
        rows = await self._rows(select(Store).where(Store.id.in_(keys), visible_condition(self.viewer)))
        return by_key(keys, rows, lambda s: s.id)


class StaffByIdLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[Staff | None]:
        stmt = restrict(select(Staff).where(Staff.id.in_(keys)), self.viewer, Staff.store_id, "staff.read")
        return by_key(keys, await self._rows(stmt), lambda s: s.id)


class StaffByStoreLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[list[Staff]]:
        stmt = restrict(
            select(Staff).where(Staff.store_id.in_(keys)).order_by(Staff.id),
            self.viewer,
            Staff.store_id,
            "staff.read",
        )
        return grouped(keys, await self._rows(stmt), lambda s: s.store_id)


class RoleByIdLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[Role | None]:
        stmt = select(Role).where(Role.id.in_(keys))
        if not self.viewer.is_staff:
            return [None for _ in keys]
        if not self.viewer.is_hq:
            # Store staff see store roles, and their own role whatever its scope.
            stmt = stmt.where((Role.scope == RoleScope.STORE) | (Role.code == self.viewer.role_code))
        return by_key(keys, await self._rows(stmt), lambda r: r.id)


class MemberByIdLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[Member | None]:
        # Until member browsing lands (members issue), a member is visible only to themself.
        allowed = [k for k in keys if k == self.viewer.member_id]
        rows = await self._rows(select(Member).where(Member.id.in_(allowed))) if allowed else []
        return by_key(keys, rows, lambda m: m.id)


class AuditLogByIdLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[AuditLog | None]:
        stmt = restrict(select(AuditLog).where(AuditLog.id.in_(keys)), self.viewer, AuditLog.store_id, "audit.view")
        return by_key(keys, await self._rows(stmt), lambda a: a.id)


class Loaders:
    """The request's loaders; built in the context factory, never at import."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], viewer: Viewer) -> None:
        self.store_by_id = StoreByIdLoader(sessionmaker, viewer)
        self.staff_by_id = StaffByIdLoader(sessionmaker, viewer)
        self.staff_by_store = StaffByStoreLoader(sessionmaker, viewer)
        self.role_by_id = RoleByIdLoader(sessionmaker, viewer)
        self.member_by_id = MemberByIdLoader(sessionmaker, viewer)
        self.audit_log_by_id = AuditLogByIdLoader(sessionmaker, viewer)

"""Loaders for stores, staff, roles, and the request's chain settings."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy import BigInteger, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import (
    Role,
    RoleScope,
    Staff,
    Store,
)
from resolvers.loaders.base import ScopedLoader, by_key, grouped
from services.access.permissions import Perm
from services.access.scope import restrict, scope_key
from services.org.settings import ChainSettings, SettingsMemo, get_settings
from services.org.stores import visible_condition
from services.platform.pagination import AnySelect
from services.platform.statements import built_once


class StoreByIdLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[Store | None]:
        stmt = built_once(("stores_by_id", scope_key(self.viewer)), self._statement)
        async with self.sessionmaker() as session:
            rows = (await session.scalars(stmt, {"ids": keys})).all()
        return by_key(keys, rows, lambda s: s.id)

    def _statement(self) -> AnySelect:
        ids = bindparam("ids", expanding=True, type_=BigInteger)
        return select(Store).where(Store.id.in_(ids), visible_condition(self.viewer))


class StaffByIdLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[Staff | None]:
        stmt = restrict(select(Staff).where(Staff.id.in_(keys)), self.viewer, Staff.store_id, Perm.STAFF_READ)
        return by_key(keys, await self._rows(stmt), lambda s: s.id)


class StaffByStoreLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[list[Staff]]:
        stmt = restrict(
            select(Staff).where(Staff.store_id.in_(keys)).order_by(Staff.id),
            self.viewer,
            Staff.store_id,
            Perm.STAFF_READ,
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


class SettingsCache:
    """The chain settings, read at most once per request: from the instance's memo when it has one."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], memo: SettingsMemo | None = None) -> None:
        self.sessionmaker = sessionmaker
        self.memo = memo
        self._value: ChainSettings | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> ChainSettings:
        async with self._lock:
            if self._value is None:
                if self.memo is not None:
                    self._value = await self.memo.get(self.sessionmaker)
                else:
                    async with self.sessionmaker() as session:
                        self._value = await get_settings(session)
            return self._value

"""Loaders for the audit log."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from models import (
    AuditLog,
)
from resolvers.loaders.base import ScopedLoader, by_key
from services.access.permissions import Perm
from services.access.scope import restrict


class AuditLogByIdLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[AuditLog | None]:
        stmt = restrict(select(AuditLog).where(AuditLog.id.in_(keys)), self.viewer, AuditLog.store_id, Perm.AUDIT_VIEW)
        return by_key(keys, await self._rows(stmt), lambda a: a.id)

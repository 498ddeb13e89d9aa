"""Loaders for the job queue (failed jobs HQ can see)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from models import (
    Job,
    JobStatus,
)
from resolvers.loaders.base import ScopedLoader, by_key
from services.access.permissions import Perm


class FailedJobNodeLoader(ScopedLoader):
    """Jobs that gave up, for HQ with audit.view only (as failedJobs lists them)."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[Job | None]:
        if not (self.viewer.is_hq and self.viewer.can(Perm.AUDIT_VIEW)):
            return [None for _ in keys]
        stmt = select(Job).where(Job.id.in_(keys), Job.status == JobStatus.FAILED)
        return by_key(keys, await self._rows(stmt), lambda j: j.id)

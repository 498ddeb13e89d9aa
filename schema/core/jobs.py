"""Jobs that gave up: HQ lists them (and scrapes chain_jobs_failed) instead of learning from a customer."""

from __future__ import annotations

from datetime import datetime
from typing import Self

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from models import Job
from resolvers import audit as audit_resolvers
from resolvers.context import Context
from schema.core.common import Connection
from schema.core.node import Loaded


@strawberry.type(description="A job that failed on every retry and was given up (FAILED).")
class FailedJob(Loaded, relay.Node):
    id: relay.NodeID[int]
    kind: str = strawberry.field(description="e.g. orders.refund, orders.expire, groups.expire")
    attempts: int
    last_error: str | None
    payload: JSON = strawberry.field(description="What it was to do, e.g. {order_id, reason}")
    due_at: datetime = strawberry.field(description="When it would have run next")
    created_at: datetime

    @classmethod
    def from_model(cls, m: Job) -> Self:
        payload: JSON = m.payload  # type: ignore[assignment]
        return cls(id=m.id, kind=m.kind, attempts=m.attempts,
                   last_error=m.last_error, payload=payload, due_at=m.due_at, created_at=m.created_at)  # fmt: skip

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        m = await ctx.loaders.failed_job_node.load(pk)
        return cls.from_model(m) if m else None


@strawberry.type
class JobQuery:
    @strawberry.field(description="HQ (audit.view): jobs that gave up after their retries, newest first.")
    async def failed_jobs(
        self, info: strawberry.Info[Context, None], first: int | None = 20, after: str | None = None
    ) -> Connection[FailedJob]:
        page = await audit_resolvers.failed_jobs(info.context, first=first, after=after)
        return Connection[FailedJob].of(page, FailedJob.from_model)

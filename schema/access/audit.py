"""Audit log types."""

from __future__ import annotations

from datetime import datetime
from typing import Self

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from models import AuditLog as AuditLogModel
from models import AuditOutcome
from resolvers import Perm
from resolvers import audit as audit_resolvers
from resolvers.audit import AuditFilter
from resolvers.context import Context
from schema.core.common import Connection, decode_optional_id
from schema.core.node import Loaded
from schema.core.permissions import requires
from schema.org.types import Staff, Store

# The Python enums as GraphQL enums (registered once, here); annotations name the Python enums themselves.
strawberry.enum(AuditOutcome, name="AuditOutcome")


@strawberry.type(description="One recorded action: who, as what, where, what, on which ids, and how it ended.")
class AuditLogEntry(Loaded, relay.Node):
    id: relay.NodeID[int]
    at: datetime
    request_id: str
    actor_kind: str
    role_code: str | None
    operation: str
    target_ids: list[str]
    input: JSON | None = strawberry.field(
        description="The input as its input types declare it: personal data and secrets redacted, phones masked."
    )
    outcome: AuditOutcome
    error_code: str | None
    ip: str | None
    staff_id: strawberry.Private[int | None]
    store_id: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, m: AuditLogModel) -> Self:
        return cls(
            id=m.id,
            at=m.at,
            request_id=m.request_id,
            actor_kind=m.actor_kind,
            role_code=m.role_code,
            operation=m.operation,
            target_ids=list(m.target_ids),
            input=m.input,  # type: ignore[arg-type]
            outcome=m.outcome,
            error_code=m.error_code,
            ip=m.ip,
            staff_id=m.staff_id,
            store_id=m.store_id,
        )

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        m = await ctx.loaders.audit_log_by_id.load(pk)
        return cls.from_model(m) if m else None

    @strawberry.field
    async def actor(self, info: strawberry.Info[Context, None]) -> Staff | None:
        return await Staff.load(info.context, self.staff_id) if self.staff_id is not None else None

    @strawberry.field
    async def store(self, info: strawberry.Info[Context, None]) -> Store | None:
        return await Store.load(info.context, self.store_id) if self.store_id is not None else None


@strawberry.input
class AuditLogFilterInput:
    store_id: strawberry.ID | None = None
    staff_id: strawberry.ID | None = None
    operation: str | None = None
    outcome: AuditOutcome | None = None
    since: datetime | None = None
    until: datetime | None = None


@strawberry.type
class AuditQuery:
    @strawberry.field(
        extensions=requires(Perm.AUDIT_VIEW),
        description="Newest first. HQ sees every store; a store manager their own.",
    )
    async def audit_logs(
        self,
        info: strawberry.Info[Context, None],
        filter: AuditLogFilterInput | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[AuditLogEntry]:
        f = filter or AuditLogFilterInput()
        flt = AuditFilter(
            store_id=decode_optional_id(f.store_id, "Store", "storeId"),
            staff_id=decode_optional_id(f.staff_id, "Staff", "staffId"),
            operation=f.operation,
            outcome=AuditOutcome(f.outcome) if f.outcome else None,
            since=f.since,
            until=f.until,
        )
        page = await audit_resolvers.audit_logs(info.context, flt, first=first, after=after)
        return Connection[AuditLogEntry].of(page, AuditLogEntry.from_model)

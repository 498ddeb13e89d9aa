"""Access types: sign-in payloads and tokens, sessions, the audit log, failed jobs HQ sees."""

from __future__ import annotations

from datetime import datetime
from typing import Self

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from models import AuditLog as AuditLogModel
from models import AuditOutcome, Job, RoleScope
from resolvers.auth import TokenPair
from resolvers.context import Context
from schema.core.common import UserError
from schema.core.node import Loaded
from schema.core.personal import Sensitivity, not_personal, personal
from schema.members.types import Member
from schema.org.types import Role, Staff, Store

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
class Tokens:
    access_token: str
    access_token_expires_at: datetime
    refresh_token: str
    refresh_token_expires_at: datetime

    @classmethod
    def of(cls, pair: TokenPair) -> Tokens:
        return cls(
            access_token=pair.access_token,
            access_token_expires_at=pair.access_expires_at,
            refresh_token=pair.refresh_token,
            refresh_token_expires_at=pair.refresh_expires_at,
        )


@strawberry.type(description="A signed-in staff member: who, with which role, permissions and store.")
class StaffViewer:
    staff: Staff
    permissions: list[str]
    scope: RoleScope
    role_id: strawberry.Private[int]
    store_id: strawberry.Private[int | None]

    @strawberry.field
    async def role(self, info: strawberry.Info[Context, None]) -> Role | None:
        return await Role.load(info.context, self.role_id)

    @strawberry.field
    async def store(self, info: strawberry.Info[Context, None]) -> Store | None:
        return await Store.load(info.context, self.store_id) if self.store_id is not None else None


@strawberry.type(description="A signed-in member.")
class MemberViewer:
    member: Member


@strawberry.input
class LoginInput:
    username: str = not_personal()
    password: str = personal(Sensitivity.SECRET)


@strawberry.input
class RefreshTokenInput:
    refresh_token: str = personal(Sensitivity.SECRET)


@strawberry.input
class MemberSignInInput:
    provider: str = strawberry.field(default="wechat", description="wechat in production; local in development")
    code: str = personal(Sensitivity.SECRET, description="The provider's one-time login code (wx.login's code)")
    store_id: strawberry.ID | None = strawberry.field(default=None, description="The store the member joined in")


@strawberry.type
class LoginPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    tokens: Tokens | None = None
    staff: Staff | None = None


@strawberry.type
class RefreshTokenPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    tokens: Tokens | None = None


@strawberry.type
class LogoutPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    ok: bool = False


@strawberry.type
class MemberSignInPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    tokens: Tokens | None = None
    member: Member | None = None
    created: bool = False


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
        return cls(
            id=m.id,
            kind=m.kind,
            attempts=m.attempts,
            last_error=m.last_error,
            payload=payload,
            due_at=m.due_at,
            created_at=m.created_at,
        )

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        m = await ctx.loaders.failed_job_node.load(pk)
        return cls.from_model(m) if m else None

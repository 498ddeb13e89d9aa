"""Access root fields: staff and member sign-in, refresh, logout, sessions; the audit log and failed jobs."""

from __future__ import annotations

from typing import Annotated

import strawberry

from models import AuditOutcome
from resolvers import Perm
from resolvers import audit as audit_resolvers
from resolvers import auth as auth_resolvers
from resolvers.audit import AuditFilter
from resolvers.context import Context
from schema.access.types import (
    AuditLogEntry,
    AuditLogFilterInput,
    FailedJob,
    LoginInput,
    LoginPayload,
    LogoutPayload,
    MemberSignInInput,
    MemberSignInPayload,
    MemberViewer,
    RefreshTokenInput,
    RefreshTokenPayload,
    StaffViewer,
    Tokens,
)
from schema.core.common import Connection, decode_optional_id
from schema.core.permissions import IsSignedIn, RateLimit, only, requires
from schema.core.transaction import MutationTransaction
from schema.members.types import Member
from schema.org.types import Staff


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


Viewer = Annotated[StaffViewer | MemberViewer, strawberry.union("Viewer")]


async def resolve_me(info: strawberry.Info[Context, None]) -> Viewer | None:
    ctx = info.context
    viewer = ctx.viewer
    if viewer.is_staff and viewer.staff_id is not None:
        staff = await auth_resolvers.own_staff(ctx)
        assert viewer.role_scope is not None
        return StaffViewer(
            staff=Staff.from_model(staff),
            permissions=sorted(viewer.permissions),
            scope=viewer.role_scope,
            role_id=staff.role_id,
            store_id=staff.store_id,
        )
    if viewer.is_member and viewer.member_id is not None:
        member = await Member.load(ctx, viewer.member_id)
        return MemberViewer(member=member) if member else None
    return None


@strawberry.type
class AuthQuery:
    me: Viewer | None = strawberry.field(resolver=resolve_me, description="The signed-in viewer; null if anonymous.")


@strawberry.type
class AuthMutation:
    @strawberry.mutation(extensions=[RateLimit("login", subject_field="username"), MutationTransaction()])
    async def login(self, info: strawberry.Info[Context, None], input: LoginInput) -> LoginPayload:
        staff, tokens = await auth_resolvers.login(info.context, username=input.username, password=input.password)
        return LoginPayload(tokens=Tokens.of(tokens), staff=Staff.from_model(staff))

    @strawberry.mutation(extensions=[MutationTransaction()])
    async def refresh_token(
        self, info: strawberry.Info[Context, None], input: RefreshTokenInput
    ) -> RefreshTokenPayload:
        tokens = await auth_resolvers.refresh(info.context, refresh_token=input.refresh_token)
        return RefreshTokenPayload(tokens=Tokens.of(tokens))

    @strawberry.mutation(
        extensions=[*only(IsSignedIn()), MutationTransaction()], description="End this session and its refresh tokens."
    )
    async def logout(self, info: strawberry.Info[Context, None]) -> LogoutPayload:
        await auth_resolvers.logout(info.context)
        return LogoutPayload(ok=True)

    @strawberry.mutation(extensions=[RateLimit("memberSignIn"), MutationTransaction()])
    async def member_sign_in(
        self, info: strawberry.Info[Context, None], input: MemberSignInInput
    ) -> MemberSignInPayload:
        store_id = decode_optional_id(input.store_id, "Store", "storeId")
        member, created, tokens = await auth_resolvers.member_sign_in(
            info.context, provider=input.provider, code=input.code, store_id=store_id
        )
        return MemberSignInPayload(tokens=Tokens.of(tokens), member=Member.from_model(member), created=created)


@strawberry.type
class JobQuery:
    @strawberry.field(description="HQ (audit.view): jobs that gave up after their retries, newest first.")
    async def failed_jobs(
        self, info: strawberry.Info[Context, None], first: int | None = 20, after: str | None = None
    ) -> Connection[FailedJob]:
        page = await audit_resolvers.failed_jobs(info.context, first=first, after=after)
        return Connection[FailedJob].of(page, FailedJob.from_model)

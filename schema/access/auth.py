"""Sign-in: who am I, staff login, member sign-in, refresh, logout."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from models import RoleScope
from resolvers import auth as auth_resolvers
from resolvers.auth import TokenPair
from resolvers.context import Context
from schema.core.common import UserError, decode_optional_id
from schema.core.permissions import IsSignedIn, RateLimit, only
from schema.core.personal import Sensitivity, not_personal, personal
from schema.core.transaction import MutationTransaction
from schema.members.types import Member
from schema.org.types import Role, Staff, Store


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


Viewer = Annotated[StaffViewer | MemberViewer, strawberry.union("Viewer")]


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

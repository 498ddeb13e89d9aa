"""Sign-in: staff login, member sign-in, refresh, logout."""

from __future__ import annotations

from models import Member, Staff
from resolvers.context import Context, with_viewer
from resolvers.state import AppState
from services.access import auth as auth_service
from services.access import identity as identity_providers
from services.access.auth import SESSION_REVOKED as SESSION_REVOKED
from services.access.auth import TokenPair as TokenPair
from services.access.scope import Viewer, ViewerKind
from services.members.accounts import member_for_identity
from services.platform import ratelimit
from services.platform.errors import Unauthenticated
from services.platform.ratelimit import RateLimited as RateLimited


async def own_staff(ctx: Context) -> Staff:
    """The signed-in staff member's own account, which they may always see."""
    async with ctx.read() as session:
        staff = await session.get(Staff, ctx.viewer.staff_id)
    if staff is None:
        raise Unauthenticated()
    return staff


async def login(ctx: Context, *, username: str, password: str) -> tuple[Staff, auth_service.TokenPair]:
    return await auth_service.login(ctx.session, ctx.app.security, username=username, password=password, ip=ctx.ip)


async def refresh(ctx: Context, *, refresh_token: str) -> auth_service.TokenPair:
    return await auth_service.refresh(ctx.session, ctx.app.security, refresh_token=refresh_token)


async def logout(ctx: Context) -> None:
    await auth_service.logout(ctx.session, viewer=ctx.viewer)


async def member_sign_in(
    ctx: Context, *, provider: str, code: str, store_id: int | None
) -> tuple[Member, bool, auth_service.TokenPair]:
    identity = await identity_providers.enabled(ctx.app.identity_providers, provider).exchange(code)
    member, created = await member_for_identity(ctx.session, ctx.app.cipher, identity, store_id=store_id)
    tokens = await auth_service.start_session(ctx.session, ctx.app.security, member_id=member.id, ip=ctx.ip)
    # The rest of this response is for the member who just signed in (their own phone, their own data).
    with_viewer(ctx, Viewer(kind=ViewerKind.MEMBER, member_id=member.id))
    return member, created, tokens


async def count_call(ctx: Context, operation: str, subject: str | None) -> None:
    """Count a call against the operation's rate limits (by IP, by viewer, by subject); raise once over."""
    viewer = ctx.viewer
    who = (
        ratelimit.viewer_key("member", viewer.member_id)
        if viewer.is_member
        else ratelimit.viewer_key("staff", viewer.staff_id)
    )
    await ratelimit.check(ctx.app.rate_counter, operation, ip=ctx.ip, viewer=who, subject=subject)


async def authenticate(app: AppState, token: str) -> Viewer:
    """The viewer a bearer token names, checked against its session (a revoked or expired one is refused)."""
    async with app.read_sessionmaker() as session:
        return await auth_service.authenticate(session, app.security, token)

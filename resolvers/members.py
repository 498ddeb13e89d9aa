"""Members and loyalty: the viewer and arguments in, service calls out."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from models import Member, MemberLevel, MemberTag, TopUpPlan
from resolvers.context import Context
from services.access.permissions import Perm
from services.access.scope import require
from services.members import accounts as members
from services.members import admin as member_admin
from services.members import data as member_data
from services.members import points, top_ups
from services.orders import pos
from services.platform.errors import AccessDenied, DomainError, ErrorCode
from services.platform.pagination import Page, decode_cursor, page_size


async def search(ctx: Context, flt: member_admin.MemberFilter, *, first: int | None, after: str | None) -> Page[Member]:
    async with ctx.read() as session:
        return await member_admin.search(session, ctx.app.cipher, ctx.viewer, flt, first=first, after=after)


async def levels(ctx: Context) -> list[MemberLevel]:
    async with ctx.read() as session:
        return list((await session.scalars(select(MemberLevel).order_by(MemberLevel.spend_threshold))).all())


async def plans(ctx: Context) -> list[TopUpPlan]:
    async with ctx.read() as session:
        stmt = select(TopUpPlan).order_by(TopUpPlan.pay_amount)
        if not ctx.viewer.can(Perm.MEMBER_MANAGE):
            stmt = stmt.where(TopUpPlan.active.is_(True))
        return list((await session.scalars(stmt)).all())


async def tags(ctx: Context) -> list[MemberTag]:
    require(ctx.viewer, Perm.MEMBER_READ)
    async with ctx.read() as session:
        return list((await session.scalars(select(MemberTag).order_by(MemberTag.name))).all())


async def tags_if_allowed(ctx: Context) -> list[MemberTag]:
    return await tags(ctx) if ctx.viewer.can(Perm.MEMBER_READ) else []


async def my_data(ctx: Context) -> dict[str, Any]:
    async with ctx.read() as session:
        return await member_data.export_data(session, ctx.app.cipher, ctx.viewer)


def member_code(ctx: Context) -> tuple[str, Any]:
    if ctx.viewer.member_id is None:
        raise AccessDenied("Only members have a member code.")
    return ctx.app.member_codes.issue(ctx.viewer.member_id)


def _counter_store(ctx: Context, store_id: int | None) -> int:
    """The store a POS action happens in: the clerk's own, or one HQ names."""
    store = store_id if store_id is not None else ctx.viewer.store_id
    if store is None:
        raise DomainError(ErrorCode.INVALID_INPUT, "Say which store this happens in.", "storeId")
    return store


async def identify(ctx: Context, *, code: str | None, phone: str | None, store_id: int | None) -> Member | None:
    """The POS finds the member in front of the counter: by their member code, or an exact phone number."""
    store = _counter_store(ctx, store_id)
    ctx.audit_store_id = store
    if code:
        member_id = ctx.app.member_codes.verify(code)
        return await members.identify_by_code(ctx.session, ctx.viewer, member_id=member_id, store_id=store)
    if phone:
        return await members.find_by_phone(ctx.session, ctx.app.cipher, ctx.viewer, phone=phone)
    raise DomainError(ErrorCode.INVALID_INPUT, "Give a member code or a phone number.", "code")


async def register(ctx: Context, *, phone: str, name: str | None, store_id: int | None) -> Member:
    store = _counter_store(ctx, store_id)
    ctx.audit_store_id = store
    return await members.register_at_store(
        ctx.session, ctx.app.cipher, ctx.viewer, phone=phone, name=name, store_id=store
    )


async def reveal_phone(ctx: Context, member_id: int) -> str | None:
    return await members.reveal_phone(ctx.session, ctx.app.cipher, ctx.viewer, member_id=member_id)


async def top_up(
    ctx: Context, *, member_id: int, plan_id: int | None, amount: int | None, store_id: int | None, key: str,
    tenders: list[pos.Tender],
) -> Member:  # fmt: skip
    """A top-up paid at the counter by tenders; online top-ups arrive through the payment provider."""
    store = _counter_store(ctx, store_id)
    ctx.audit_store_id = store
    request = top_ups.CounterRequest(member_id=member_id, store_id=store, tenders=tenders, idempotency_key=key,
                                     plan_id=plan_id, amount=amount)  # fmt: skip
    await top_ups.at_counter(ctx.session, ctx.viewer, request)
    member = await ctx.session.get(Member, member_id, populate_existing=True)
    assert member is not None
    return member


async def adjust_points(ctx: Context, *, member_id: int, points_delta: int, note: str, key: str) -> Member:
    require(ctx.viewer, Perm.MEMBER_MANAGE)
    if not ctx.viewer.is_hq:
        raise AccessDenied("Points are adjusted by HQ.")
    await points.adjust_once(ctx.session, ctx.viewer, member_id, points_delta, note=note, key=key)
    member = await ctx.session.get(Member, member_id, populate_existing=True)
    assert member is not None
    return member


async def ledger_page(
    ctx: Context, member_id: int, *, stored_value: bool, first: int | None, after: str | None
) -> Page[Any]:
    """A page of the member's points or stored-value ledger: the member's own, or staff with member.read in scope."""
    if not ctx.viewer.is_member:
        require(ctx.viewer, Perm.MEMBER_READ)
    key = (member_id, page_size(first), decode_cursor(after) if after else None)
    loader = ctx.loaders.balance_ledger if stored_value else ctx.loaders.points_ledger
    page: Page[Any] = await loader.load(key)
    return page

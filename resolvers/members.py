"""Members and loyalty: the viewer and arguments in, service calls out."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from models import Member, MemberLevel, MemberTag, TopUpPlan
from resolvers.context import Context
from services import member_admin, member_data, members, points, pos, top_ups
from services.errors import AccessDenied
from services.pagination import Page, decode_cursor, page_size
from services.scope import require


async def search(ctx: Context, flt: member_admin.MemberFilter, *, first: int | None, after: str | None) -> Page[Member]:
    async with ctx.read() as session:
        return await member_admin.search(session, ctx.app.cipher, ctx.viewer, flt, first=first, after=after)


async def levels(ctx: Context) -> list[MemberLevel]:
    async with ctx.read() as session:
        return list((await session.scalars(select(MemberLevel).order_by(MemberLevel.spend_threshold))).all())


async def plans(ctx: Context) -> list[TopUpPlan]:
    async with ctx.read() as session:
        stmt = select(TopUpPlan).order_by(TopUpPlan.pay_amount)
        if not ctx.viewer.can("member.manage"):
            stmt = stmt.where(TopUpPlan.active.is_(True))
        return list((await session.scalars(stmt)).all())


async def tags(ctx: Context) -> list[MemberTag]:
    require(ctx.viewer, "member.read")
    async with ctx.read() as session:
        return list((await session.scalars(select(MemberTag).order_by(MemberTag.name))).all())


async def tags_if_allowed(ctx: Context) -> list[MemberTag]:
    return await tags(ctx) if ctx.viewer.can("member.read") else []


async def my_data(ctx: Context) -> dict[str, Any]:
    async with ctx.read() as session:
        return await member_data.export_data(session, ctx.app.cipher, ctx.viewer)


def member_code(ctx: Context) -> tuple[str, Any]:
    if ctx.viewer.member_id is None:
        raise AccessDenied("Only members have a member code.")
    return ctx.app.member_codes.issue(ctx.viewer.member_id)


async def identify(ctx: Context, *, code: str | None, phone: str | None, store_id: int | None) -> Member | None:
    return await members.identify_at_counter(ctx.session, ctx.app.cipher, ctx.app.member_codes, ctx.viewer,
                                             code=code, phone=phone, store_id=store_id)  # fmt: skip


async def register(ctx: Context, *, phone: str, name: str | None, store_id: int | None) -> Member:
    return await members.register_walk_in(
        ctx.session, ctx.app.cipher, ctx.viewer, phone=phone, name=name, store_id=store_id
    )


async def reveal_phone(ctx: Context, member_id: int) -> str | None:
    return await members.reveal_phone(ctx.session, ctx.app.cipher, ctx.viewer, member_id=member_id)


async def top_up(
    ctx: Context, *, member_id: int, plan_id: int | None, amount: int | None, store_id: int | None, key: str,
    tenders: list[pos.Tender],
) -> Member:  # fmt: skip
    """A top-up paid at the counter by tenders; online top-ups arrive through the payment provider."""
    return await top_ups.counter_top_up(ctx.session, ctx.viewer, member_id=member_id, plan_id=plan_id, amount=amount,
                                        store_id=store_id, key=key, tenders=tenders)  # fmt: skip


async def adjust_points(ctx: Context, *, member_id: int, points_delta: int, note: str, key: str) -> Member:
    return await points.adjust_by_hq(ctx.session, ctx.viewer, member_id, points_delta, note=note, key=key)


async def ledger_page(
    ctx: Context, member_id: int, *, stored_value: bool, first: int | None, after: str | None
) -> Page[Any]:
    """A page of the member's points or stored-value ledger: the member's own, or staff with member.read in scope."""
    if not ctx.viewer.is_member:
        require(ctx.viewer, "member.read")
    key = (member_id, page_size(first), decode_cursor(after) if after else None)
    loader = ctx.loaders.balance_ledger if stored_value else ctx.loaders.points_ledger
    page: Page[Any] = await loader.load(key)
    return page

"""Members and loyalty: the viewer and arguments in, service calls out. The values the member API's inputs are
made of are re-exported here (`X as X`) for schema/, which imports no service."""

from __future__ import annotations

from typing import Any

from models import Member, MemberLevel, MemberTag, TopUpPlan
from resolvers.context import Context
from services.access.permissions import Perm
from services.members import accounts as members
from services.members import admin as member_admin
from services.members import code as member_code_service
from services.members import data as member_data
from services.members import ledgers, points, stored_value, top_ups
from services.members.accounts import ProfileChanges as ProfileChanges
from services.members.admin import MemberFilter as MemberFilter
from services.members.ledgers import BalanceRow as BalanceRow
from services.members.ledgers import PointsRow as PointsRow
from services.orders import pos
from services.platform.pagination import Page, decode_cursor, page_size


async def search(ctx: Context, flt: member_admin.MemberFilter, *, first: int | None, after: str | None) -> Page[Member]:
    async with ctx.read() as session:
        return await member_admin.search(session, ctx.app.cipher, ctx.viewer, flt, first=first, after=after)


async def levels(ctx: Context) -> list[MemberLevel]:
    async with ctx.read() as session:
        return await member_admin.list_levels(session)


async def plans(ctx: Context) -> list[TopUpPlan]:
    async with ctx.read() as session:
        return await stored_value.list_plans(session, ctx.viewer)


async def tags(ctx: Context) -> list[MemberTag]:
    async with ctx.read() as session:
        return await member_admin.list_tags(session, ctx.viewer)


async def tags_if_allowed(ctx: Context) -> list[MemberTag]:
    return await tags(ctx) if ctx.viewer.can(Perm.MEMBER_READ) else []


async def my_data(ctx: Context) -> dict[str, Any]:
    async with ctx.read() as session:
        return await member_data.export_data(session, ctx.app.cipher, ctx.viewer)


def member_code(ctx: Context) -> tuple[str, Any]:
    return member_code_service.code_for(ctx.app.member_codes, ctx.viewer)


async def identify(ctx: Context, *, code: str | None, phone: str | None, store_id: int | None) -> Member:
    return await members.identify_at_counter(
        ctx.session, ctx.app.cipher, ctx.app.member_codes, ctx.viewer, code=code, phone=phone, store_id=store_id
    )


async def register(ctx: Context, *, phone: str, name: str | None, store_id: int | None) -> Member:
    return await members.register_walk_in(
        ctx.session, ctx.app.cipher, ctx.viewer, phone=phone, name=name, store_id=store_id
    )


def phone(ctx: Context, member: Member) -> str | None:
    return members.shown_phone(ctx.app.cipher, ctx.viewer, member)


async def reveal_phone(ctx: Context, member_id: int) -> str | None:
    return await members.reveal_phone(ctx.session, ctx.app.cipher, ctx.viewer, member_id=member_id)


async def top_up(
    ctx: Context,
    *,
    member_id: int,
    plan_id: int | None,
    amount: int | None,
    store_id: int | None,
    key: str,
    tenders: list[pos.Tender],
) -> Member:
    """A top-up paid at the counter by tenders; online top-ups arrive through the payment provider."""
    return await top_ups.counter_top_up(
        ctx.session,
        ctx.viewer,
        member_id=member_id,
        plan_id=plan_id,
        amount=amount,
        store_id=store_id,
        key=key,
        tenders=tenders,
    )


async def adjust_points(ctx: Context, *, member_id: int, points_delta: int, note: str, key: str) -> Member:
    return await points.adjust_by_hq(ctx.session, ctx.viewer, member_id, points_delta, note=note, key=key)


async def ledger_page(
    ctx: Context, member_id: int, *, stored_value: bool, first: int | None, after: str | None
) -> Page[Any]:
    """A page of the member's points or stored-value ledger: the member's own, or staff with member.read in scope."""
    ledgers.require_reader(ctx.viewer)
    key = (member_id, page_size(first), decode_cursor(after) if after else None)
    loader = ctx.loaders.balance_ledger if stored_value else ctx.loaders.points_ledger
    page: Page[Any] = await loader.load(key)
    return page


# Mutations: all run in ctx.session, the mutation's one transaction.


async def update_my_profile(ctx: Context, changes: ProfileChanges) -> Member:
    return await members.update_profile(ctx.session, ctx.viewer, changes)


async def set_member_level(ctx: Context, *, member_id: int, level_id: int) -> Member:
    return await member_admin.set_member_level(ctx.session, ctx.viewer, member_id=member_id, level_id=level_id)


async def create_level(
    ctx: Context, *, name: str, spend_threshold: int, discount_percent: int, points_multiplier_pct: int
) -> MemberLevel:
    return await member_admin.create_level(
        ctx.session,
        name=name,
        spend_threshold=spend_threshold,
        discount_percent=discount_percent,
        points_multiplier_pct=points_multiplier_pct,
    )


async def update_level(
    ctx: Context, *, level_id: int, name: str | None, discount_percent: int | None, points_multiplier_pct: int | None
) -> MemberLevel:
    return await member_admin.update_level(
        ctx.session,
        level_id=level_id,
        name=name,
        discount_percent=discount_percent,
        points_multiplier_pct=points_multiplier_pct,
    )


async def set_level_price(ctx: Context, *, level_id: int, sku_id: int, price: int | None) -> None:
    await member_admin.set_level_price(ctx.session, level_id=level_id, sku_id=sku_id, price=price)


async def create_top_up_plan(ctx: Context, *, name: str, pay_amount: int, bonus_amount: int) -> TopUpPlan:
    return await stored_value.create_plan(ctx.session, name=name, pay_amount=pay_amount, bonus_amount=bonus_amount)


async def create_tag(ctx: Context, name: str) -> MemberTag:
    return await member_admin.create_tag(ctx.session, name=name)


async def tag_members(ctx: Context, *, tag_id: int, member_ids: list[int], add: bool) -> int:
    return await member_admin.tag_members(ctx.session, ctx.viewer, tag_id=tag_id, member_ids=member_ids, add=add)


async def delete_my_account(ctx: Context) -> None:
    await member_data.delete_account(ctx.session, ctx.app.cipher, ctx.viewer, ctx.app.payment_providers)

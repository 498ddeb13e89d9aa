"""Member attributes and browsing history: the viewer and arguments in, service calls out. The values the schema's
inputs are made of are re-exported here (`X as X`) for schema/, which imports no service."""

from __future__ import annotations

from collections.abc import Sequence

from models import Member, MemberAttribute, MemberAttributeValue, ProductView
from resolvers.context import Context
from services.members import attributes, browsing
from services.members.attributes import AttributeChanges as AttributeChanges
from services.members.attributes import AttributeFilter as AttributeFilter
from services.members.attributes import AttributeSpec as AttributeSpec
from services.members.attributes import Shown as Shown
from services.members.browsing import CategoryInterest as CategoryInterest
from services.platform.pagination import Page


async def definitions(ctx: Context) -> list[MemberAttribute]:
    async with ctx.read() as session:
        return await attributes.list_attributes(session, ctx.viewer)


async def values(ctx: Context, member_id: int) -> list[Shown]:
    """The member's attribute values as the viewer sees them (sensitive ones masked to staff)."""
    rows: list[MemberAttributeValue] = await ctx.loaders.attribute_values_by_member.load(member_id)
    return [attributes.shown(ctx.app.cipher, ctx.viewer, r) for r in rows]


async def categories_viewed(ctx: Context, member_id: int) -> list[CategoryInterest]:
    found: list[CategoryInterest] = await ctx.loaders.categories_viewed.load(member_id)
    return found


async def history(ctx: Context, *, first: int | None, after: str | None) -> Page[ProductView]:
    async with ctx.read() as session:
        return await browsing.history(session, ctx.viewer, first=first, after=after)


# Mutations: all run in ctx.session, the mutation's one transaction.


async def define(ctx: Context, spec: AttributeSpec) -> MemberAttribute:
    return await attributes.define(ctx.session, ctx.viewer, spec)


async def update(ctx: Context, attribute_id: int, changes: AttributeChanges) -> MemberAttribute:
    return await attributes.update(ctx.session, ctx.viewer, attribute_id, changes)


async def set_values(ctx: Context, member_id: int, given: Sequence[tuple[int, str | None]]) -> Member:
    return await attributes.set_values(ctx.session, ctx.app.cipher, ctx.viewer, member_id=member_id, values=given)


async def set_my_values(ctx: Context, given: Sequence[tuple[int, str | None]]) -> Member:
    return await attributes.set_my_values(ctx.session, ctx.app.cipher, ctx.viewer, given)


async def reveal(ctx: Context, *, member_id: int, attribute_id: int) -> str | None:
    return await attributes.reveal(
        ctx.session, ctx.app.cipher, ctx.viewer, member_id=member_id, attribute_id=attribute_id
    )


async def record_views(ctx: Context, product_ids: Sequence[int], store_id: int | None) -> int:
    return await browsing.record_views(ctx.session, ctx.viewer, product_ids=product_ids, store_id=store_id)


async def clear_history(ctx: Context) -> int:
    return await browsing.clear_history(ctx.session, ctx.viewer)

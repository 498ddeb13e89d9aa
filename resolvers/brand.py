"""Brand: HQ's page templates, stores' pages, and the resolved page the mini-program reads. The values the brand
API's types are made of are re-exported here (`X as X`) for schema/, which imports no service."""

from __future__ import annotations

from models import PageKind, PageTemplate, StorePage, StorePageStatus
from resolvers.context import Context
from services.brand import pages, resolve, templates
from services.brand.pages import Slot as Slot
from services.brand.resolve import MenuGroup as MenuGroup
from services.brand.resolve import PricedItem as PricedItem
from services.brand.resolve import ResolvedPage as ResolvedPage
from services.brand.resolve import ResolvedSection as ResolvedSection
from services.brand.templates import Item as Item
from services.brand.templates import ItemKind as ItemKind
from services.brand.templates import Section as Section
from services.brand.templates import SectionKind as SectionKind
from services.brand.templates import TemplateSpec as TemplateSpec
from services.brand.templates import Theme as Theme
from services.brand.templates import sections_of as sections_of
from services.platform.pagination import Page


async def store_page(ctx: Context, store_id: int, kind: PageKind) -> ResolvedPage | None:
    """Public, like the menu: a store the viewer can see (a member, a visitor, staff), priced for a member."""
    if await ctx.loaders.store_by_id.load(store_id) is None:
        return None
    async with ctx.read() as session:
        return await resolve.resolve(session, store_id=store_id, kind=kind, member_id=ctx.viewer.member_id)


async def page_templates(ctx: Context, kind: PageKind, *, first: int | None, after: str | None) -> Page[PageTemplate]:
    async with ctx.read() as session:
        return await templates.list_versions(session, ctx.viewer, kind, first=first, after=after)


async def store_pages(
    ctx: Context, store_id: int | None, status: StorePageStatus | None, *, first: int | None, after: str | None
) -> Page[StorePage]:
    async with ctx.read() as session:
        return await pages.list_pages(session, ctx.viewer, store_id=store_id, status=status, first=first, after=after)


async def save_template(ctx: Context, spec: TemplateSpec) -> PageTemplate:
    return await templates.save_draft(ctx.session, ctx.viewer, spec)


async def publish_template(ctx: Context, kind: PageKind) -> PageTemplate:
    return await templates.publish(ctx.session, ctx.viewer, kind)


async def roll_back_template(ctx: Context, kind: PageKind, version: int) -> PageTemplate:
    return await templates.roll_back(ctx.session, ctx.viewer, kind, version)


async def save_store_page(ctx: Context, store_id: int, kind: PageKind, slots: list[Slot]) -> StorePage:
    return await pages.save_draft(ctx.session, ctx.viewer, store_id=store_id, kind=kind, slots=slots)


async def submit_store_page(ctx: Context, store_id: int, kind: PageKind) -> StorePage:
    return await pages.submit(ctx.session, ctx.viewer, store_id=store_id, kind=kind)


async def decide_store_page(ctx: Context, page_id: int, approve: bool, reason: str | None) -> StorePage:
    return await pages.decide(ctx.session, ctx.viewer, page_id=page_id, approve=approve, reason=reason)

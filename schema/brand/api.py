"""Brand root fields: HQ's page templates (draft, publish, roll back), stores' pages (edit, submit, HQ decides),
and storePage, the resolved page the mini-program reads."""

from __future__ import annotations

import strawberry

from models import PageKind, StorePageStatus
from resolvers import Perm
from resolvers import brand as brand_resolvers
from resolvers.brand import Item, Section, Slot, TemplateSpec, Theme
from resolvers.context import Context
from schema.brand.types import (
    DecideStorePageInput,
    PageItemInput,
    PageKindInput,
    PageSectionInput,
    PageTemplate,
    PageTemplatePayload,
    RollBackPageTemplateInput,
    SavePageTemplateInput,
    SaveStorePageInput,
    StorePage,
    StorePageContent,
    StorePageContentPayload,
    SubmitStorePageInput,
)
from schema.core.common import Connection, decode_id, decode_optional_id
from schema.core.permissions import IsStaff, only, requires
from schema.core.transaction import MutationTransaction


def _item(x: PageItemInput, where: str) -> Item:
    return Item(
        kind=x.kind,
        url=x.url,
        link=x.link,
        sku_id=decode_optional_id(x.sku_id, "Sku", f"{where}.skuId"),
        category_id=decode_optional_id(x.category_id, "Category", f"{where}.categoryId"),
        text=x.text,
    )


def _section(s: PageSectionInput, i: int) -> Section:
    return Section(
        key=s.key,
        kind=s.kind,
        title=s.title,
        store_fillable=s.store_fillable,
        max_items=s.max_items,
        allowed_kinds=tuple(s.allowed_kinds or ()),
        items=tuple(_item(x, f"sections[{i}].items[{n}]") for n, x in enumerate(s.items or [])),
    )


@strawberry.type
class BrandQuery:
    @strawberry.field(
        description="A store's page as the mini-program shows it: HQ's published template, the store's approved "
        "content, the campaigns running there and the menu with the viewer's price. Public; null for a store the "
        "viewer cannot see or before HQ publishes the page."
    )
    async def store_page(
        self, info: strawberry.Info[Context, None], store_id: strawberry.ID, kind: PageKind = PageKind.STORE
    ) -> StorePage | None:
        page = await brand_resolvers.store_page(info.context, decode_id(store_id, "Store", "storeId"), kind)
        return StorePage.of(page) if page else None

    @strawberry.field(extensions=requires(Perm.BRAND_MANAGE), description="Every version of a page's template.")
    async def page_templates(
        self,
        info: strawberry.Info[Context, None],
        kind: PageKind = PageKind.STORE,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[PageTemplate]:
        page = await brand_resolvers.page_templates(info.context, kind, first=first, after=after)
        return Connection[PageTemplate].of(page, PageTemplate.from_model)

    @strawberry.field(
        extensions=only(IsStaff()),
        description="Stores' pages, newest first: HQ (brand.manage) every store's, e.g. those PENDING approval; "
        "a store's editors (page.edit) their own.",
    )
    async def store_pages(
        self,
        info: strawberry.Info[Context, None],
        store_id: strawberry.ID | None = None,
        status: StorePageStatus | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[StorePageContent]:
        page = await brand_resolvers.store_pages(
            info.context,
            decode_optional_id(store_id, "Store", "storeId"),
            StorePageStatus(status) if status else None,
            first=first,
            after=after,
        )
        return Connection[StorePageContent].of(page, StorePageContent.from_model)


@strawberry.type
class BrandMutation:
    @strawberry.mutation(
        extensions=[*requires(Perm.BRAND_MANAGE), MutationTransaction()],
        description="HQ edits the draft of a page's template (the next version); what is live does not change.",
    )
    async def save_page_template(
        self, info: strawberry.Info[Context, None], input: SavePageTemplateInput
    ) -> PageTemplatePayload:
        theme = input.theme
        spec = TemplateSpec(
            kind=PageKind(input.kind),
            sections=[_section(s, i) for i, s in enumerate(input.sections)],
            theme=Theme(theme.primary_color, theme.accent_color, theme.background_color) if theme else Theme(),
            logo_url=input.logo_url,
        )
        template = await brand_resolvers.save_template(info.context, spec)
        return PageTemplatePayload(template=PageTemplate.from_model(template))

    @strawberry.mutation(
        extensions=[*requires(Perm.BRAND_MANAGE), MutationTransaction()],
        description="The draft becomes the live template; the version before is retired.",
    )
    async def publish_page_template(
        self, info: strawberry.Info[Context, None], input: PageKindInput
    ) -> PageTemplatePayload:
        template = await brand_resolvers.publish_template(info.context, PageKind(input.kind))
        return PageTemplatePayload(template=PageTemplate.from_model(template))

    @strawberry.mutation(
        extensions=[*requires(Perm.BRAND_MANAGE), MutationTransaction()],
        description="Publish again what an earlier version was, as a new version.",
    )
    async def roll_back_page_template(
        self, info: strawberry.Info[Context, None], input: RollBackPageTemplateInput
    ) -> PageTemplatePayload:
        template = await brand_resolvers.roll_back_template(info.context, PageKind(input.kind), input.version)
        return PageTemplatePayload(template=PageTemplate.from_model(template))

    @strawberry.mutation(
        extensions=[*requires(Perm.PAGE_EDIT), MutationTransaction()],
        description="A store fills the slots HQ's published template opens to it (a draft, until submitted).",
    )
    async def save_store_page(
        self, info: strawberry.Info[Context, None], input: SaveStorePageInput
    ) -> StorePageContentPayload:
        slots = [
            Slot(s.key, [_item(x, f"slots[{i}].items[{n}]") for n, x in enumerate(s.items)])
            for i, s in enumerate(input.slots)
        ]
        page = await brand_resolvers.save_store_page(
            info.context, decode_id(input.store_id, "Store", "storeId"), PageKind(input.kind), slots
        )
        return StorePageContentPayload(page=StorePageContent.from_model(page))

    @strawberry.mutation(
        extensions=[*requires(Perm.PAGE_EDIT), MutationTransaction()],
        description="The store's draft goes to HQ for approval (PENDING), or live at once when the chain setting "
        "storePagesNeedApproval is off.",
    )
    async def submit_store_page(
        self, info: strawberry.Info[Context, None], input: SubmitStorePageInput
    ) -> StorePageContentPayload:
        page = await brand_resolvers.submit_store_page(
            info.context, decode_id(input.store_id, "Store", "storeId"), PageKind(input.kind)
        )
        return StorePageContentPayload(page=StorePageContent.from_model(page))

    @strawberry.mutation(
        extensions=[*requires(Perm.BRAND_MANAGE), MutationTransaction()],
        description="HQ approves a submitted store page (it goes live) or rejects it with a reason.",
    )
    async def decide_store_page(
        self, info: strawberry.Info[Context, None], input: DecideStorePageInput
    ) -> StorePageContentPayload:
        page = await brand_resolvers.decide_store_page(
            info.context, decode_id(input.id, "StorePage"), input.approve, input.reason
        )
        return StorePageContentPayload(page=StorePageContent.from_model(page))

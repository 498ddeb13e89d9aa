"""Brand types: HQ's page templates, a store's content in them, and the resolved page the mini-program shows."""

from __future__ import annotations

from datetime import datetime
from typing import Self

import strawberry

from models import PageKind, StorePageStatus, TemplateStatus
from models import PageTemplate as PageTemplateModel
from models import StorePage as StorePageModel
from resolvers.brand import (
    Item,
    ItemKind,
    MenuGroup,
    PricedItem,
    ResolvedPage,
    ResolvedSection,
    Section,
    SectionKind,
    sections_of,
)
from resolvers.catalog import Availability
from resolvers.context import Context
from schema.catalog.types import Category, Sku
from schema.core.common import UserError, global_id
from schema.core.personal import not_personal
from schema.marketing.types import Campaign
from schema.org.types import Store

# The Python enums as GraphQL enums (registered once, here).
strawberry.enum(PageKind, name="PageKind", description="Which page of the mini-program: the home page or a store's")
strawberry.enum(TemplateStatus, name="TemplateStatus")
strawberry.enum(StorePageStatus, name="StorePageStatus")
strawberry.enum(SectionKind, name="PageSectionKind")
strawberry.enum(ItemKind, name="PageItemKind")


@strawberry.type
class PageTheme:
    primary_color: str
    accent_color: str
    background_color: str


@strawberry.type(description="One item a section shows: an image, a text, a category or a SKU.")
class PageItem:
    kind: ItemKind
    url: str | None
    link: str | None
    text: str | None
    sku_id: strawberry.Private[int | None]
    category_id: strawberry.Private[int | None]

    @classmethod
    def of(cls, item: Item) -> Self:
        return cls(
            kind=item.kind,
            url=item.url,
            link=item.link,
            text=item.text,
            sku_id=item.sku_id,
            category_id=item.category_id,
        )

    @strawberry.field
    async def sku(self, info: strawberry.Info[Context, None]) -> Sku | None:
        return await Sku.load(info.context, self.sku_id) if self.sku_id is not None else None

    @strawberry.field
    async def category(self, info: strawberry.Info[Context, None]) -> Category | None:
        return await Category.load(info.context, self.category_id) if self.category_id is not None else None


@strawberry.type(description="A section of HQ's template and what a store may put in it.")
class PageSectionSpec:
    key: str
    kind: SectionKind
    title: str | None
    store_fillable: bool
    max_items: int
    allowed_kinds: list[ItemKind]
    items: list[PageItem] = strawberry.field(description="HQ's own content, shown where the store put none")

    @classmethod
    def of(cls, s: Section) -> Self:
        return cls(
            key=s.key,
            kind=s.kind,
            title=s.title,
            store_fillable=s.store_fillable,
            max_items=s.max_items,
            allowed_kinds=list(s.allowed_kinds),
            items=[PageItem.of(i) for i in s.items],
        )


@strawberry.type(description="One version of HQ's template of a page.")
class PageTemplate:
    id: strawberry.ID
    kind: PageKind
    version: int
    status: TemplateStatus
    theme: PageTheme
    logo_url: str | None
    sections: list[PageSectionSpec]
    copied_from: int | None = strawberry.field(description="The version a roll back copied")
    created_at: datetime
    published_at: datetime | None

    @classmethod
    def from_model(cls, m: PageTemplateModel) -> Self:
        theme = m.theme or {}
        return cls(
            id=strawberry.ID(str(global_id("PageTemplate", m.id))),
            kind=m.kind,
            version=m.version,
            status=m.status,
            theme=PageTheme(
                primary_color=theme.get("primary_color", ""),
                accent_color=theme.get("accent_color", ""),
                background_color=theme.get("background_color", ""),
            ),
            logo_url=m.logo_url,
            sections=[PageSectionSpec.of(s) for s in sections_of(m)],
            copied_from=m.copied_from,
            created_at=m.created_at,
            published_at=m.published_at,
        )


@strawberry.type
class PageSlot:
    key: str
    items: list[PageItem]


@strawberry.type(description="A store's content in the slots of a page, as edited, submitted and decided.")
class StorePageContent:
    id: strawberry.ID
    kind: PageKind
    status: StorePageStatus
    slots: list[PageSlot]
    submitted_at: datetime | None
    decided_at: datetime | None
    reject_reason: str | None
    updated_at: datetime
    store_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, m: StorePageModel) -> Self:
        return cls(
            id=strawberry.ID(str(global_id("StorePage", m.id))),
            kind=m.kind,
            status=m.status,
            slots=[PageSlot(key=k, items=[PageItem.of(Item.of(i)) for i in v]) for k, v in m.slots.items()],
            submitted_at=m.submitted_at,
            decided_at=m.decided_at,
            reject_reason=m.reject_reason,
            updated_at=m.updated_at,
            store_id=m.store_id,
        )

    @strawberry.field
    async def store(self, info: strawberry.Info[Context, None]) -> Store | None:
        return await Store.load(info.context, self.store_id)


@strawberry.type(description="A SKU on the page with the store's price and what this viewer pays for one now.")
class PagePricedItem:
    listing_id: strawberry.ID
    price: int = strawberry.field(description="The store's price, fen")
    member_price: int = strawberry.field(
        description="What the viewer pays for one now, fen: the member's level price or discount, or a running "
        "limited-time discount or flash sale (the price engine's line rules; cart rules such as 满减 and coupons "
        "come in the quote)"
    )
    price_rule: str | None = strawberry.field(description="The rule behind memberPrice, e.g. LEVEL_DISCOUNT")
    price_reason: str | None
    store_id: strawberry.Private[int]
    sku_id: strawberry.Private[int]

    @classmethod
    def of(cls, store_id: int, p: PricedItem) -> Self:
        return cls(
            listing_id=strawberry.ID(str(global_id("StoreListing", p.listing_id))),
            price=p.price,
            member_price=p.member_price,
            price_rule=p.price_rule,
            price_reason=p.price_reason,
            store_id=store_id,
            sku_id=p.sku_id,
        )

    @strawberry.field
    async def availability(self, info: strawberry.Info[Context, None]) -> Availability:
        found: Availability = await info.context.loaders.availability_by_store_sku.load((self.store_id, self.sku_id))
        return found

    @strawberry.field
    async def sku(self, info: strawberry.Info[Context, None]) -> Sku | None:
        return await Sku.load(info.context, self.sku_id)


@strawberry.type
class PageMenuSection:
    items: list[PagePricedItem]
    category_id: strawberry.Private[int]

    @classmethod
    def of(cls, store_id: int, g: MenuGroup) -> Self:
        return cls(items=[PagePricedItem.of(store_id, p) for p in g.items], category_id=g.category_id)

    @strawberry.field
    async def category(self, info: strawberry.Info[Context, None]) -> Category | None:
        return await Category.load(info.context, self.category_id)


@strawberry.type(
    description="A section of the page as shown: HQ's frame with the store's or HQ's content, or live data."
)
class PageSection:
    key: str
    kind: SectionKind
    title: str | None
    filled_by_store: bool = strawberry.field(description="The store's own content (else HQ's, or live data)")
    content: list[PageItem] = strawberry.field(description="Images, texts and categories")
    items: list[PagePricedItem] = strawberry.field(description="Featured items (门店特色推荐) on the menu, priced")
    campaigns: list[Campaign] = strawberry.field(description="Campaigns running in the store now")

    @classmethod
    def of(cls, store_id: int, s: ResolvedSection) -> Self:
        return cls(
            key=s.section.key,
            kind=s.section.kind,
            title=s.section.title,
            filled_by_store=s.filled_by_store,
            content=[PageItem.of(i) for i in s.content],
            items=[PagePricedItem.of(store_id, p) for p in s.items],
            campaigns=[Campaign.from_model(c) for c in s.campaigns],
        )


@strawberry.type(description="A store's page in the mini-program, resolved: template, store content and live data.")
class StorePage:
    kind: PageKind
    template: PageTemplate
    sections: list[PageSection]
    menu: list[PageMenuSection] = strawberry.field(
        description="The menu by category, priced for the viewer, with availability, for the template's MENU section "
        "(which marks its place among the sections); empty when the template has none"
    )
    store_id: strawberry.Private[int]

    @classmethod
    def of(cls, page: ResolvedPage) -> Self:
        return cls(
            kind=page.kind,
            template=PageTemplate.from_model(page.template),
            sections=[PageSection.of(page.store_id, s) for s in page.sections],
            menu=[PageMenuSection.of(page.store_id, g) for g in page.menu],
            store_id=page.store_id,
        )

    @strawberry.field
    async def store(self, info: strawberry.Info[Context, None]) -> Store | None:
        return await Store.load(info.context, self.store_id)


@strawberry.input
class PageItemInput:
    kind: ItemKind
    url: str | None = strawberry.field(default=None, description="IMAGE: https address of the picture")
    link: str | None = strawberry.field(default=None, description="IMAGE: where a tap goes (https)")
    sku_id: strawberry.ID | None = None
    category_id: strawberry.ID | None = None
    text: str | None = None


@strawberry.input
class PageThemeInput:
    primary_color: str
    accent_color: str
    background_color: str


@strawberry.input
class PageSectionInput:
    key: str
    kind: SectionKind
    title: str | None = None
    store_fillable: bool = False
    max_items: int = 10
    allowed_kinds: list[ItemKind] | None = strawberry.field(
        default=None, description="What a store may put here; all the section holds when left out"
    )
    items: list[PageItemInput] | None = None


@strawberry.input
class SavePageTemplateInput:
    kind: PageKind
    sections: list[PageSectionInput]
    theme: PageThemeInput | None = None
    logo_url: str | None = None


@strawberry.input
class PageKindInput:
    kind: PageKind


@strawberry.input
class RollBackPageTemplateInput:
    kind: PageKind
    version: int


@strawberry.input
class PageSlotInput:
    key: str
    items: list[PageItemInput]


@strawberry.input
class SaveStorePageInput:
    store_id: strawberry.ID
    kind: PageKind = PageKind.STORE
    slots: list[PageSlotInput]


@strawberry.input
class SubmitStorePageInput:
    store_id: strawberry.ID
    kind: PageKind = PageKind.STORE


@strawberry.input
class DecideStorePageInput:
    id: strawberry.ID
    approve: bool
    reason: str | None = not_personal(default=None, description="Why HQ rejects it (shown to the store)")


@strawberry.type
class PageTemplatePayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    template: PageTemplate | None = None


@strawberry.type
class StorePageContentPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    page: StorePageContent | None = None

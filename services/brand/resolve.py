"""The page the mini-program shows for a store (storePage): HQ's published template, the store's live content in
the slots it may fill (else HQ's own items), and live data: the campaigns running there now and the menu with the
viewer's price. A fixed number of statements whatever the number of sections and items: the template, the store's
live content, the running campaigns, the featured SKUs and the menu (one statement each), and the price engine's
fixed set; availability, SKUs and categories come through the request's loaders, batched."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from models import Campaign, Category, PageKind, PageTemplate, Product, StoreListing, utcnow
from services.brand.pages import live_slots
from services.brand.templates import Item, Section, SectionKind, published, sections_of
from services.catalog.listings import menu_query
from services.marketing import promotions
from services.pricing.engine import shelf_prices

Listed = tuple[StoreListing, int]  # a menu listing and its product's category


@dataclass(frozen=True)
class PricedItem:
    listing_id: int
    sku_id: int
    category_id: int
    price: int  # the store's price
    member_price: int  # what this viewer pays for one now (a visitor: the limited-time price, if any)
    price_rule: str | None
    price_reason: str | None


@dataclass(frozen=True)
class MenuGroup:
    category_id: int
    items: list[PricedItem]


@dataclass(frozen=True)
class ResolvedSection:
    section: Section
    filled_by_store: bool
    content: list[Item] = field(default_factory=list)  # images, texts and categories, as chosen
    items: list[PricedItem] = field(default_factory=list)  # featured SKUs on the menu, priced
    campaigns: list[Campaign] = field(default_factory=list)


@dataclass(frozen=True)
class ResolvedPage:
    store_id: int
    kind: PageKind
    template: PageTemplate
    sections: list[ResolvedSection]
    menu: list[MenuGroup]  # where the template has a MENU section: the menu by category (the section marks its place)


def chosen(section: Section, store_items: list[Item] | None) -> tuple[list[Item], bool]:
    """The store's items where it may fill the section and did (within today's rules: a template published after
    the store's content may have narrowed them), else HQ's own."""
    if section.store_fillable and store_items:
        allowed = [i for i in store_items if i.kind in section.allowed_kinds]
        return allowed[: section.max_items], True
    return list(section.items[: section.max_items]), False


async def _listings(
    session: AsyncSession, store_id: int, sku_ids: set[int], menu_size: int
) -> tuple[dict[int, Listed], list[Listed]]:
    """The featured SKUs as the menu lists them (on shelf, active), and the first `menu_size` menu items in
    category order: the menu's own query (services.catalog.listings.menu_query)."""
    base = menu_query(store_id, None, None).add_columns(Product.category_id)
    featured: dict[int, Listed] = {}
    if sku_ids:
        rows = (await session.execute(base.where(StoreListing.sku_id.in_(sku_ids)))).all()
        featured = {r[0].sku_id: (r[0], int(r[1])) for r in rows}
    menu: list[Listed] = []
    if menu_size:
        stmt = base.join(Category, Category.id == Product.category_id)
        stmt = stmt.order_by(Category.sort, Category.id, StoreListing.id).limit(menu_size)
        menu = [(r[0], int(r[1])) for r in (await session.execute(stmt)).all()]
    return featured, menu


async def resolve(
    session: AsyncSession, *, store_id: int, kind: PageKind, member_id: int | None, at: datetime | None = None
) -> ResolvedPage | None:
    """The store's page as the viewer (a member, or a visitor when member_id is None) sees it now."""
    at = at or utcnow()
    template = await published(session, kind)
    if template is None:
        return None
    sections = sections_of(template)
    slots = await live_slots(session, store_id, kind)
    content = {s.key: chosen(s, slots.get(s.key)) for s in sections}
    running = await promotions.running(session, store_id, at) if _has(sections, SectionKind.CAMPAIGN_STRIP) else []
    featured_ids = {
        i.sku_id for s in sections if s.kind is SectionKind.RECOMMENDED_ITEMS for i in content[s.key][0] if i.sku_id
    }
    menu_size = max((s.max_items for s in sections if s.kind is SectionKind.MENU), default=0)
    featured, menu = await _listings(session, store_id, featured_ids, menu_size)
    listed = {r[0].sku_id: (r[0].price, int(r[1])) for r in [*featured.values(), *menu]}
    prices = await shelf_prices(session, store_id=store_id, member_id=member_id, listed=listed, at=at)

    def priced(row: Listed) -> PricedItem:
        listing, price = row[0], prices[row[0].sku_id]
        return PricedItem(listing.id, listing.sku_id, int(row[1]), listing.price, price.price, price.rule, price.reason)

    resolved = []
    for s in sections:
        items, by_store = content[s.key]
        match s.kind:
            case SectionKind.RECOMMENDED_ITEMS:
                found = [priced(featured[i.sku_id]) for i in items if i.sku_id in featured]
                resolved.append(ResolvedSection(s, by_store, items=found))
            case SectionKind.CAMPAIGN_STRIP:
                resolved.append(ResolvedSection(s, False, campaigns=running[: s.max_items]))
            case _:
                resolved.append(ResolvedSection(s, by_store, content=items))
    return ResolvedPage(store_id, kind, template, resolved, _groups([priced(r) for r in menu]))


def _has(sections: list[Section], kind: SectionKind) -> bool:
    return any(s.kind is kind for s in sections)


def _groups(items: list[PricedItem]) -> list[MenuGroup]:
    """Menu items (in category order) grouped by category."""
    groups: list[MenuGroup] = []
    for item in items:
        if not groups or groups[-1].category_id != item.category_id:
            groups.append(MenuGroup(item.category_id, []))
        groups[-1].items.append(item)
    return groups

"""Store listings: a store adopts library SKUs in one action (一键上架) and prices them inside HQ's band."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import BigInteger, BindParameter, and_, bindparam, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    CatalogStatus,
    Category,
    CategoryRow,
    Product,
    ProductRow,
    Sku,
    SkuRow,
    StockLevel,
    Store,
    StoreListing,
    utcnow,
)
from services.access.permissions import Perm
from services.access.scope import Viewer, acted_in, require, require_store, scope_key
from services.catalog.products import money, visible_products
from services.inventory.levels import (
    SKU_ROW_WIDTH,
    Availability,
    availability,
    available_expr,
    sku_row_columns,
    threshold_expr,
)
from services.inventory.stock import ensure_levels
from services.org.settings import ChainSettings, get_settings
from services.platform.errors import DomainError, ErrorCode
from services.platform.pagination import AnySelect, Page, keyset_page, keyset_rows, keyset_statement
from services.platform.statements import built_once
from services.platform.validation import text

MAX_BATCH = 500


def price_band(sku: Sku | SkuRow, settings: ChainSettings) -> tuple[int, int]:
    """The lowest and highest store price HQ allows for this SKU."""
    if sku.min_price is not None and sku.max_price is not None:
        return sku.min_price, sku.max_price
    spread = sku.base_price * settings.price_band_percent // 100
    return sku.base_price - spread, sku.base_price + spread


def check_price(sku: Sku, price: int, settings: ChainSettings, field: str) -> int:
    money(price, field)
    low, high = price_band(sku, settings)
    if not low <= price <= high:
        raise DomainError(ErrorCode.PRICE_OUT_OF_BAND, f"The store price must be between {low} and {high} fen.", field)
    return price


@dataclass(frozen=True)
class Adoption:
    sku_id: int
    price: int | None = None
    on_shelf: bool = True


async def adopt(session: AsyncSession, viewer: Viewer, *, store_id: int, items: list[Adoption]) -> list[StoreListing]:
    """List many library SKUs in a store at once, at the base price unless a price is given."""
    acted_in(store_id)  # the store named, even when refused
    require_store(viewer, store_id, Perm.LISTING_MANAGE)
    if not items or len(items) > MAX_BATCH:
        raise DomainError(ErrorCode.INVALID_INPUT, f"Adopt 1 to {MAX_BATCH} SKUs at a time.", "items")
    if await session.get(Store, store_id) is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such store.", "storeId")
    settings = await get_settings(session)
    sku_ids = [i.sku_id for i in items]
    skus = {
        s.id: (s, owner)
        for s, owner in (
            await session.execute(
                select(Sku, Product.owner_store_id)
                .join(Product, Product.id == Sku.product_id)
                .where(Sku.id.in_(sku_ids))
            )
        )
    }
    listed = set(
        (
            await session.scalars(
                select(StoreListing.sku_id).where(StoreListing.store_id == store_id, StoreListing.sku_id.in_(sku_ids))
            )
        ).all()
    )
    seen: set[int] = set()
    rows = []
    for i, item in enumerate(items):
        found = skus.get(item.sku_id)
        if found is None or found[1] not in (None, store_id):
            raise DomainError(ErrorCode.NOT_FOUND, "No such SKU in the library.", f"items[{i}].skuId")
        sku = found[0]
        if sku.status is not CatalogStatus.ACTIVE:
            raise DomainError(ErrorCode.INVALID_INPUT, "This SKU is not active.", f"items[{i}].skuId")
        if item.sku_id in listed or item.sku_id in seen:
            raise DomainError(ErrorCode.ALREADY_LISTED, "This SKU is already listed in the store.", f"items[{i}].skuId")
        seen.add(item.sku_id)
        price = check_price(
            sku, item.price if item.price is not None else sku.base_price, settings, f"items[{i}].price"
        )
        rows.append(StoreListing(store_id=store_id, sku_id=sku.id, price=price, on_shelf=item.on_shelf))
    session.add_all(rows)
    await ensure_levels(session, store_id, sku_ids)
    await session.flush()
    return rows


async def _listing(session: AsyncSession, viewer: Viewer, listing_id: int) -> tuple[StoreListing, Sku]:
    row = (
        await session.execute(
            select(StoreListing, Sku)
            .join(Sku, Sku.id == StoreListing.sku_id)
            .where(StoreListing.id == listing_id)
            .with_for_update(of=StoreListing)
        )
    ).first()
    if row is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such listing.", "id")
    require_store(viewer, row[0].store_id, Perm.LISTING_MANAGE)
    return row


async def set_price(session: AsyncSession, viewer: Viewer, *, listing_id: int, price: int) -> StoreListing:
    listing, sku = await _listing(session, viewer, listing_id)
    listing.price = check_price(sku, price, await get_settings(session), "price")
    listing.updated_at = utcnow()
    await session.flush()
    return listing


async def set_on_shelf(
    session: AsyncSession, viewer: Viewer, *, listing_ids: list[int], on_shelf: bool
) -> list[StoreListing]:
    if not listing_ids or len(listing_ids) > MAX_BATCH:
        raise DomainError(ErrorCode.INVALID_INPUT, f"Give 1 to {MAX_BATCH} listings.", "ids")
    rows = list(
        (await session.scalars(select(StoreListing).where(StoreListing.id.in_(listing_ids)).with_for_update())).all()
    )
    if len(rows) != len(set(listing_ids)):
        raise DomainError(ErrorCode.NOT_FOUND, "Some listings do not exist.", "ids")
    for row in rows:
        require_store(viewer, row.store_id, Perm.LISTING_MANAGE)
        row.on_shelf, row.updated_at = on_shelf, utcnow()
    await session.flush()
    return sorted(rows, key=lambda r: listing_ids.index(r.id))


async def push_price(session: AsyncSession, viewer: Viewer, *, sku_id: int, price: int) -> tuple[Sku, int]:
    """HQ sets a SKU's base price and every store's price to it at once; returns how many stores changed."""
    require(viewer, Perm.CATALOG_MANAGE)
    sku = await session.get(Sku, sku_id, with_for_update=True)
    if sku is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such SKU.", "skuId")
    money(price, "price")
    if sku.min_price is not None and sku.max_price is not None and not sku.min_price <= price <= sku.max_price:
        raise DomainError(ErrorCode.PRICE_OUT_OF_BAND, "The price lies outside the SKU's own band.", "price")
    sku.base_price = price
    result = await session.execute(
        update(StoreListing)
        .where(StoreListing.sku_id == sku_id)
        .values(price=price, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    await session.flush()
    return sku, int(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ListingFilter:
    on_shelf: bool | None = None
    search: str | None = None
    category_id: int | None = None


def listing_query(
    store_id: int | BindParameter[int], flt: ListingFilter, category_ids: list[int] | None = None
) -> AnySelect:
    stmt = (
        select(StoreListing)
        .join(Sku, Sku.id == StoreListing.sku_id)
        .join(Product, Product.id == Sku.product_id)
        .where(StoreListing.store_id == store_id)
    )
    if flt.on_shelf is not None:
        stmt = stmt.where(StoreListing.on_shelf.is_(flt.on_shelf))
    if flt.search:
        term = f"%{text(flt.search, 'search', max_len=64).lower()}%"
        stmt = stmt.where(func.lower(Product.name).like(term) | (Sku.barcode == flt.search.strip()))
    if category_ids is not None:
        stmt = stmt.where(Product.category_id.in_(category_ids))
    return stmt


async def list_listings(
    session: AsyncSession, viewer: Viewer, store_id: int, flt: ListingFilter, *, first: int | None, after: str | None
) -> Page[StoreListing]:
    require_store(viewer, store_id, Perm.STOCK_READ)
    return await keyset_page(session, listing_query(store_id, flt), StoreListing.id, first=first, after=after)


def menu_query(store_id: int | BindParameter[int], search: str | None, category_ids: list[int] | None) -> AnySelect:
    """What a member can buy in a store: on shelf, active SKU of an active product."""
    stmt = listing_query(store_id, ListingFilter(on_shelf=True, search=search), category_ids)
    return stmt.where(Sku.status == CatalogStatus.ACTIVE, Product.status == CatalogStatus.ACTIVE)


@dataclass(frozen=True, slots=True)
class MenuRow:
    """A menu item with its SKU and product, or None for both where the viewer may not see the product, and what
    anyone may know of its stock."""

    listing_id: int
    price: int
    sku: SkuRow | None
    product: ProductRow | None
    availability: Availability


_SKU = slice(2, 2 + SKU_ROW_WIDTH)
_PRODUCT = slice(_SKU.stop, _SKU.stop + len(ProductRow.FIELDS))


def _menu_page_statement(
    viewer: Viewer, store_id: int | BindParameter[int], search: str | None, category_ids: list[int] | None, default: int
) -> AnySelect:
    """The menu's rows: the listing's id and price, its SKU's columns (the spec as text) and its product's, whether the
    viewer may see the product, the available quantity and the low-stock line."""
    level = and_(StockLevel.store_id == StoreListing.store_id, StockLevel.sku_id == StoreListing.sku_id)
    return (
        menu_query(store_id, search, category_ids)
        .with_only_columns(StoreListing.id, StoreListing.price)
        .add_columns(*sku_row_columns())
        .add_columns(*(getattr(Product, name) for name in ProductRow.FIELDS))
        .add_columns(
            visible_products(viewer).label("visible"),
            available_expr().label("available"),
            threshold_expr(default).label("threshold"),
        )
        .outerjoin(StockLevel, level)
    )


async def menu_page(
    session: AsyncSession,
    viewer: Viewer,
    store_id: int,
    search: str | None,
    category_ids: list[int] | None,
    *,
    default_threshold: int,
    first: int | None,
    after: str | None,
) -> Page[MenuRow]:
    """A page of the menu, each item's SKU, product and availability read by the same statement: the menu joins the
    SKU and product anyway, a store's level of a SKU is one index entry, and a member asks for them on every item (a
    statement of their own each cost a round trip per page). No level reads as sold out.

    A store's whole menu (no search, no category: what the mini-program opens on) runs a statement built once per
    viewer scope and page shape; a search or a category builds its own."""
    if search is None and category_ids is None:

        def build() -> AnySelect:
            stmt = _menu_page_statement(viewer, bindparam("store_id", type_=BigInteger), None, None, default_threshold)
            return keyset_statement(stmt, StoreListing.id, after=after is not None)

        key = ("menu_page", scope_key(viewer), default_threshold, after is not None)
        stmt = built_once(key, build)
        values = {"store_id": store_id}
        page = await keyset_rows(session, stmt, StoreListing.id, values, first=first, after=after, whole_rows=True)
    else:
        stmt = _menu_page_statement(viewer, store_id, search, category_ids, default_threshold)
        page = await keyset_page(session, stmt, StoreListing.id, first=first, after=after, whole_rows=True)
    rows = [
        MenuRow(
            r[0],
            r[1],
            SkuRow(*r[_SKU]) if r.visible else None,
            ProductRow(*r[_PRODUCT]) if r.visible else None,
            _band(r.available, r.threshold),
        )
        for r in page.rows
    ]
    return Page(rows=rows, has_next=page.has_next, cursors=page.cursors)


def _band(available: int | None, threshold: int) -> Availability:
    """What a member sees of a listed SKU's stock; no level reads as sold out."""
    return Availability.SOLD_OUT if available is None else availability(available, threshold)


async def listing_bands(session: AsyncSession, pairs: Sequence[tuple[int, int]]) -> dict[int, dict[int, Availability]]:
    """The bands of the listings of these (store, SKU) pairs, by store and listing id, as the menu shows them: what
    the public reads write into the menus they keep when the SKUs move band. The chain's low-stock line is read in
    the same session, so a line changed just before is the one applied."""
    if not pairs:
        return {}
    default = (await get_settings(session)).default_low_stock_threshold
    level = and_(StockLevel.store_id == StoreListing.store_id, StockLevel.sku_id == StoreListing.sku_id)
    stmt = (
        select(
            StoreListing.id,
            StoreListing.store_id,
            available_expr().label("available"),
            threshold_expr(default).label("threshold"),
        )
        .join(Sku, Sku.id == StoreListing.sku_id)
        .outerjoin(StockLevel, level)
        .where(tuple_(StoreListing.store_id, StoreListing.sku_id).in_(list(pairs)))
    )
    found: dict[int, dict[int, Availability]] = {}
    for r in await session.execute(stmt):
        found.setdefault(r.store_id, {})[r.id] = _band(r.available, r.threshold)
    return found


async def menu_categories(session: AsyncSession, store_id: int) -> list[tuple[CategoryRow, int]]:
    """The categories of a store's menu with how many items each holds (plain columns, by a statement built once:
    the mini-program's StoreMenu asks it with every menu it opens)."""
    rows = await session.execute(built_once(("menu_categories",), _menu_categories), {"store_id": store_id})
    return [(CategoryRow(r.id, r.name, r.sort, r.parent_id), int(r.items)) for r in rows]


def _menu_categories() -> AnySelect:
    on_menu = menu_query(bindparam("store_id", type_=BigInteger), None, None)
    sub = on_menu.with_only_columns(Product.category_id.label("category_id")).subquery()
    columns = (Category.id, Category.name, Category.sort, Category.parent_id)
    return (
        select(*columns, func.count().label("items"))
        .join(sub, sub.c.category_id == Category.id)
        .group_by(*columns)
        .order_by(Category.sort, Category.id)
    )

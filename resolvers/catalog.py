"""Catalog, listings and settings: the viewer and arguments in, service calls out. The values the catalog API's
types are made of are re-exported here (`X as X`) for schema/, which imports no service."""

from __future__ import annotations

from models import CatalogStatus, Category, CategoryRow, Product, Sku, SkuRow, StoreListing
from resolvers.context import Context
from services.catalog import csv_io as catalog_csv
from services.catalog import listings
from services.catalog import products as catalog_service
from services.catalog.listings import Adoption as Adoption
from services.catalog.listings import ListingFilter as ListingFilter
from services.catalog.listings import MenuRow as MenuRow
from services.catalog.products import ProductFilter as ProductFilter
from services.catalog.products import SkuFields as SkuFields
from services.inventory import stock
from services.inventory.levels import Availability as Availability
from services.org.settings import ChainSettings as ChainSettings
from services.platform.pagination import Page


async def products(
    ctx: Context, flt: catalog_service.ProductFilter, *, first: int | None, after: str | None
) -> Page[Product]:
    async with ctx.read() as session:
        return await catalog_service.list_products(session, ctx.viewer, flt, first=first, after=after)


async def root_categories(ctx: Context) -> list[Category]:
    result: list[Category] = await ctx.loaders.categories_by_parent.load(0)
    return result


async def store_listings(
    ctx: Context, store_id: int, flt: listings.ListingFilter, *, first: int | None, after: str | None
) -> Page[StoreListing]:
    async with ctx.read() as session:
        return await listings.list_listings(session, ctx.viewer, store_id, flt, first=first, after=after)


async def menu(
    ctx: Context, store_id: int, *, category_id: int | None, search: str | None, first: int | None, after: str | None
) -> Page[MenuRow]:
    """A store's menu is public, but only for a store the viewer can see. Each item comes with its SKU and product
    (as the viewer may see them) and its availability: an item's `sku { product }` and `availability` cost no
    statement, and no loader, of their own."""
    if await ctx.loaders.store_by_id.load(store_id) is None:
        return Page(rows=[], has_next=False, cursors=[])
    default = (await ctx.loaders.settings.get()).default_low_stock_threshold
    async with ctx.read() as session:
        categories = await catalog_service.category_subtree(session, category_id) if category_id is not None else None
        return await listings.menu_page(
            session, ctx.viewer, store_id, search, categories, default_threshold=default, first=first, after=after
        )


async def menu_categories(ctx: Context, store_id: int) -> list[tuple[CategoryRow, int]]:
    if await ctx.loaders.store_by_id.load(store_id) is None:
        return []
    async with ctx.read() as session:
        return await listings.menu_categories(session, store_id)


async def sku_by_barcode(ctx: Context, barcode: str) -> Sku | None:
    async with ctx.read() as session:
        page = await catalog_service.list_products(
            session, ctx.viewer, catalog_service.ProductFilter(barcode=barcode), first=1, after=None
        )
    if not page.rows:
        return None
    for sku in await ctx.loaders.skus_by_product.load(page.rows[0].id):
        if sku.barcode == barcode.strip():
            return sku  # type: ignore[no-any-return]
    return None


def price_band(sku: Sku | SkuRow, settings: ChainSettings) -> tuple[int, int]:
    return listings.price_band(sku, settings)


async def chain_settings(ctx: Context) -> ChainSettings:
    return await ctx.loaders.settings.get()


async def catalog_csv_export(ctx: Context) -> str:
    async with ctx.read() as session:
        return await catalog_csv.export_catalog(session, ctx.viewer)


# Mutations: all run in ctx.session, the mutation's one transaction.


async def create_category(ctx: Context, *, name: str, sort: int, parent_id: int | None) -> Category:
    return await catalog_service.create_category(ctx.session, name=name, sort=sort, parent_id=parent_id)


async def update_category(
    ctx: Context, *, category_id: int, name: str | None, parent_id: int | None, sort: int | None
) -> Category:
    return await catalog_service.update_category(
        ctx.session, category_id=category_id, name=name, parent_id=parent_id, sort=sort
    )


async def create_product(
    ctx: Context,
    *,
    name: str,
    category_id: int,
    skus: list[SkuFields],
    description: str | None,
    images: list[str] | None,
    store_id: int | None,
) -> Product:
    product, _ = await catalog_service.create_product(
        ctx.session,
        ctx.viewer,
        name=name,
        category_id=category_id,
        skus=skus,
        description=description,
        images=images,
        store_id=store_id,
    )
    return product


async def update_product(
    ctx: Context,
    *,
    product_id: int,
    name: str | None,
    description: str | None,
    category_id: int | None,
    images: list[str] | None,
    status: CatalogStatus | None,
) -> Product:
    return await catalog_service.update_product(
        ctx.session,
        ctx.viewer,
        product_id=product_id,
        name=name,
        description=description,
        category_id=category_id,
        images=images,
        status=status,
    )


async def add_sku(ctx: Context, *, product_id: int, fields: SkuFields) -> Sku:
    return await catalog_service.add_sku(ctx.session, ctx.viewer, product_id=product_id, fields=fields)


async def update_sku(ctx: Context, *, sku_id: int, changes: dict[str, object]) -> Sku:
    return await catalog_service.update_sku(ctx.session, ctx.viewer, sku_id=sku_id, changes=changes)


async def save_settings(ctx: Context, **changes: object) -> ChainSettings:
    return await stock.save_settings(ctx.session, **changes)


async def adopt(ctx: Context, store_id: int, items: list[listings.Adoption]) -> list[StoreListing]:
    return await listings.adopt(ctx.session, ctx.viewer, store_id=store_id, items=items)


async def set_listing_price(ctx: Context, listing_id: int, price: int) -> StoreListing:
    return await listings.set_price(ctx.session, ctx.viewer, listing_id=listing_id, price=price)


async def set_on_shelf(ctx: Context, listing_ids: list[int], on_shelf: bool) -> list[StoreListing]:
    return await listings.set_on_shelf(ctx.session, ctx.viewer, listing_ids=listing_ids, on_shelf=on_shelf)


async def push_price(ctx: Context, sku_id: int, price: int) -> tuple[Sku, int]:
    return await listings.push_price(ctx.session, ctx.viewer, sku_id=sku_id, price=price)


async def import_csv(ctx: Context, content: str) -> catalog_csv.ImportReport:
    return await catalog_csv.import_catalog(ctx.session, ctx.viewer, content)

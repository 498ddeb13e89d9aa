"""Product library: category tree, products (SPU) and SKUs, search. HQ owns it; stores may add their own."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import CatalogStatus, Category, Product, Sku, utcnow
from services.access.permissions import Perm
from services.access.scope import Viewer, acted_in, require, require_store
from services.access.visible import owned_condition
from services.inventory import stock
from services.org.settings import get_settings
from services.platform.errors import AccessDenied, DomainError, ErrorCode
from services.platform.pagination import AnySelect, Page, keyset_page
from services.platform.validation import optional_text, text

_BARCODE = re.compile(r"^[0-9A-Za-z\-]{4,64}$")
_URL = re.compile(r"^https?://\S{1,500}$")
MAX_PRICE = 100_000_000  # one million yuan, in fen


def visible_products(viewer: Viewer) -> ColumnElement[bool]:
    """The library is public; a store's own products are seen by that store's staff and HQ only."""
    return owned_condition(viewer, Product.owner_store_id)


def money(value: int, field_name: str) -> int:
    if not 0 <= value <= MAX_PRICE:
        raise DomainError(ErrorCode.INVALID_INPUT, f"{field_name} must be 0 to {MAX_PRICE} fen.", field_name)
    return value


@dataclass(frozen=True)
class SkuFields:
    barcode: str
    base_price: int
    cost_price: int = 0
    spec: dict[str, str] = field(default_factory=dict)
    min_price: int | None = None
    max_price: int | None = None
    low_stock_default: int | None = None


def check_sku_fields(f: SkuFields, prefix: str = "") -> SkuFields:
    if not _BARCODE.match(f.barcode.strip()):
        raise DomainError(ErrorCode.INVALID_INPUT, "Barcodes are 4-64 letters, digits or dashes.", f"{prefix}barcode")
    money(f.base_price, f"{prefix}basePrice")
    money(f.cost_price, f"{prefix}costPrice")
    for name in ("min_price", "max_price"):
        value = getattr(f, name)
        if value is not None:
            money(value, prefix + ("minPrice" if name == "min_price" else "maxPrice"))
    if (f.min_price is None) != (f.max_price is None):
        raise DomainError(ErrorCode.INVALID_INPUT, "Give both minPrice and maxPrice, or neither.", f"{prefix}minPrice")
    if f.min_price is not None and f.max_price is not None and not f.min_price <= f.base_price <= f.max_price:
        raise DomainError(ErrorCode.INVALID_INPUT, "The base price must lie in the SKU's band.", f"{prefix}minPrice")
    if len(f.spec) > 10 or any(len(k) > 32 or len(str(v)) > 64 for k, v in f.spec.items()):
        raise DomainError(ErrorCode.INVALID_INPUT, "At most 10 spec values, each short.", f"{prefix}spec")
    return f


async def create_category(session: AsyncSession, *, name: str, parent_id: int | None, sort: int = 0) -> Category:
    if parent_id is not None and await session.get(Category, parent_id) is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such parent category.", "parentId")
    category = Category(name=text(name, "name", max_len=64), parent_id=parent_id, sort=sort)
    session.add(category)
    await session.flush()
    return category


async def update_category(
    session: AsyncSession, *, category_id: int, name: str | None, parent_id: int | None, sort: int | None
) -> Category:
    category = await session.get(Category, category_id, with_for_update=True)
    if category is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such category.", "id")
    if name is not None:
        category.name = text(name, "name", max_len=64)
    if sort is not None:
        category.sort = sort
    if parent_id is not None:
        parents = dict((await session.execute(select(Category.id, Category.parent_id))).all())
        cursor: int | None = parent_id
        if parent_id not in parents:
            raise DomainError(ErrorCode.NOT_FOUND, "No such parent category.", "parentId")
        while cursor is not None:
            if cursor == category_id:
                raise DomainError(ErrorCode.INVALID_INPUT, "A category cannot sit under itself.", "parentId")
            cursor = parents.get(cursor)
        category.parent_id = parent_id
    await session.flush()
    return category


async def _check_barcodes_free(session: AsyncSession, barcodes: list[str], prefix: str = "skus") -> None:
    seen: set[str] = set()
    for i, code in enumerate(barcodes):
        if code in seen:
            raise DomainError(ErrorCode.DUPLICATE, f"Barcode {code} appears twice.", f"{prefix}[{i}].barcode")
        seen.add(code)
    taken = set((await session.scalars(select(Sku.barcode).where(Sku.barcode.in_(barcodes)))).all())
    for i, code in enumerate(barcodes):
        if code in taken:
            raise DomainError(
                ErrorCode.DUPLICATE, f"Barcode {code} is already in the library.", f"{prefix}[{i}].barcode"
            )


async def create_product(
    session: AsyncSession,
    viewer: Viewer,
    *,
    name: str,
    category_id: int,
    skus: list[SkuFields],
    description: str | None = None,
    images: list[str] | None = None,
    store_id: int | None = None,
) -> tuple[Product, list[Sku]]:
    """HQ adds to the library; a store adds a product of its own only where HQ's policy allows."""
    acted_in(store_id)  # the store named, even when refused (none: the library's, so the viewer's own)
    if store_id is None:
        require(viewer, Perm.CATALOG_MANAGE)
    else:
        require_store(viewer, store_id, Perm.LISTING_MANAGE)
        if not (await get_settings(session)).stores_may_create_products:
            raise DomainError(ErrorCode.NOT_ALLOWED_BY_POLICY, "HQ does not let stores create products.", "storeId")
    if not skus:
        raise DomainError(ErrorCode.INVALID_INPUT, "A product needs at least one SKU.", "skus")
    if len(skus) > 100:
        raise DomainError(ErrorCode.INVALID_INPUT, "At most 100 SKUs per product.", "skus")
    checked = [check_sku_fields(s, f"skus[{i}].") for i, s in enumerate(skus)]
    if await session.get(Category, category_id) is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such category.", "categoryId")
    for i, url in enumerate(images or []):
        if not _URL.match(url):
            raise DomainError(ErrorCode.INVALID_INPUT, "Images are http(s) URLs.", f"images[{i}]")
    await _check_barcodes_free(session, [s.barcode.strip() for s in checked])
    product = Product(
        name=text(name, "name", max_len=128),
        description=optional_text(description, "description", max_len=1000),
        category_id=category_id,
        owner_store_id=store_id,
        images=list(images or []),
        status=CatalogStatus.ACTIVE,
    )
    session.add(product)
    await session.flush()
    rows = [
        Sku(
            product_id=product.id,
            barcode=s.barcode.strip(),
            spec=dict(s.spec),
            base_price=s.base_price,
            cost_price=s.cost_price,
            min_price=s.min_price,
            max_price=s.max_price,
            low_stock_default=s.low_stock_default,
            status=CatalogStatus.ACTIVE,
        )
        for s in checked
    ]
    session.add_all(rows)
    await session.flush()
    return product, rows


async def editable_product(session: AsyncSession, viewer: Viewer, product_id: int) -> Product:
    product = await session.get(Product, product_id, with_for_update=True)
    if product is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such product.", "id")
    if product.owner_store_id is None:
        require(viewer, Perm.CATALOG_MANAGE)
    elif not (viewer.can(Perm.CATALOG_MANAGE) or viewer.sees_store(product.owner_store_id, Perm.LISTING_MANAGE)):
        raise AccessDenied("This product belongs to another store.")
    return product


async def update_product(
    session: AsyncSession,
    viewer: Viewer,
    *,
    product_id: int,
    name: str | None = None,
    description: str | None = None,
    category_id: int | None = None,
    images: list[str] | None = None,
    status: CatalogStatus | None = None,
) -> Product:
    product = await editable_product(session, viewer, product_id)
    if name is not None:
        product.name = text(name, "name", max_len=128)
    if description is not None:
        product.description = optional_text(description, "description", max_len=1000)
    if category_id is not None:
        if await session.get(Category, category_id) is None:
            raise DomainError(ErrorCode.NOT_FOUND, "No such category.", "categoryId")
        product.category_id = category_id
    if images is not None:
        if any(not _URL.match(u) for u in images):
            raise DomainError(ErrorCode.INVALID_INPUT, "Images are http(s) URLs.", "images")
        product.images = list(images)
    if status is not None:
        product.status = status
    product.updated_at = utcnow()
    await session.flush()
    return product


async def add_sku(session: AsyncSession, viewer: Viewer, *, product_id: int, fields: SkuFields) -> Sku:
    product = await editable_product(session, viewer, product_id)
    check_sku_fields(fields)
    await _check_barcodes_free(session, [fields.barcode.strip()], prefix="sku")
    sku = Sku(
        product_id=product.id,
        barcode=fields.barcode.strip(),
        spec=dict(fields.spec),
        base_price=fields.base_price,
        cost_price=fields.cost_price,
        min_price=fields.min_price,
        max_price=fields.max_price,
        low_stock_default=fields.low_stock_default,
    )
    session.add(sku)
    await session.flush()
    return sku


async def update_sku(session: AsyncSession, viewer: Viewer, *, sku_id: int, changes: dict[str, Any]) -> Sku:
    """Change a SKU's prices, spec, band or status (its barcode stays: receipts and labels refer to it)."""
    sku = await session.get(Sku, sku_id, with_for_update=True)
    if sku is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such SKU.", "id")
    await editable_product(session, viewer, sku.product_id)
    merged = SkuFields(
        barcode=sku.barcode,
        base_price=changes.get("base_price", sku.base_price),
        cost_price=changes.get("cost_price", sku.cost_price),
        spec=changes.get("spec", sku.spec),
        min_price=changes.get("min_price", sku.min_price),
        max_price=changes.get("max_price", sku.max_price),
        low_stock_default=changes.get("low_stock_default", sku.low_stock_default),
    )
    check_sku_fields(merged)
    line_moved = merged.low_stock_default != sku.low_stock_default
    for key, value in changes.items():
        setattr(sku, key, value)
    await session.flush()
    if line_moved:  # every store's level that follows the SKU's line now shows another lowThreshold / isLow
        await stock.announce(session, [sku.id], stock.THRESHOLD_CHANGED, store_id=None)
    return sku


@dataclass(frozen=True)
class ProductFilter:
    search: str | None = None
    barcode: str | None = None
    category_id: int | None = None
    status: CatalogStatus | None = None


async def category_subtree(session: AsyncSession, category_id: int) -> list[int]:
    pairs = (await session.execute(select(Category.id, Category.parent_id))).all()
    children: dict[int | None, list[int]] = {}
    for cid, parent in pairs:
        children.setdefault(parent, []).append(cid)
    found, stack = [], [category_id]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, []))
    return found


async def product_query(session: AsyncSession, viewer: Viewer, flt: ProductFilter) -> AnySelect:
    stmt = select(Product).where(visible_products(viewer))
    if flt.search:
        term = f"%{text(flt.search, 'search', max_len=64).lower()}%"
        stmt = stmt.where(func.lower(Product.name).like(term))
    if flt.barcode:
        stmt = stmt.where(Product.id.in_(select(Sku.product_id).where(Sku.barcode == flt.barcode.strip())))
    if flt.category_id is not None:
        stmt = stmt.where(Product.category_id.in_(await category_subtree(session, flt.category_id)))
    if flt.status is not None:
        stmt = stmt.where(Product.status == flt.status)
    elif not viewer.is_staff:
        stmt = stmt.where(Product.status == CatalogStatus.ACTIVE)
    return stmt


async def list_products(
    session: AsyncSession, viewer: Viewer, flt: ProductFilter, *, first: int | None, after: str | None
) -> Page[Product]:
    return await keyset_page(session, await product_query(session, viewer, flt), Product.id, first=first, after=after)

"""Loaders for the product library: categories, products, SKUs, store listings."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import (
    Category,
    Product,
    Sku,
    StoreListing,
)
from resolvers.loaders.base import ScopedLoader, by_key, grouped
from services.access.permissions import Perm
from services.access.scope import Viewer, restrict
from services.catalog.products import visible_products


class CategoryByIdLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[Category | None]:
        return by_key(keys, await self._rows(select(Category).where(Category.id.in_(keys))), lambda c: c.id)


class CategoriesByParentLoader(ScopedLoader):
    """Children of each category; key 0 stands for the roots."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[list[Category]]:
        parents = [k for k in keys if k != 0]
        cond: ColumnElement[bool] = Category.parent_id.in_(parents)
        if 0 in keys:
            cond = cond | Category.parent_id.is_(None)
        rows = await self._rows(select(Category).where(cond).order_by(Category.sort, Category.id))
        return grouped(keys, rows, lambda c: c.parent_id or 0)


class ProductByIdLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[Product | None]:
        stmt = select(Product).where(Product.id.in_(keys), visible_products(self.viewer))
        return by_key(keys, await self._rows(stmt), lambda p: p.id)


class SkuByIdLoader(ScopedLoader):
    """SKUs of products the viewer may see. The products come in the same statement (the join decides visibility
    anyway) and are primed into the product loader: a SKU's `product` costs no statement of its own."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], viewer: Viewer, products: ProductByIdLoader
    ) -> None:
        super().__init__(sessionmaker, viewer)
        self.products = products

    async def batch_load_fn(self, keys: Sequence[int]) -> list[Sku | None]:
        stmt = (
            select(Sku, Product)
            .join(Product, Product.id == Sku.product_id)
            .where(Sku.id.in_(keys), visible_products(self.viewer))
        )
        async with self.sessionmaker() as session:
            rows = (await session.execute(stmt)).all()
        for _, product in rows:
            self.products.prime(product.id, product)
        return by_key(keys, [sku for sku, _ in rows], lambda s: s.id)


class SkusByProductLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[list[Sku]]:
        rows = await self._rows(select(Sku).where(Sku.product_id.in_(keys)).order_by(Sku.id))
        return grouped(keys, rows, lambda s: s.product_id)


class ListingByIdLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[StoreListing | None]:
        stmt = restrict(
            select(StoreListing).where(StoreListing.id.in_(keys)), self.viewer, StoreListing.store_id, Perm.STOCK_READ
        )
        return by_key(keys, await self._rows(stmt), lambda x: x.id)

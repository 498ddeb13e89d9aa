"""Givens for catalog and stock tests, built through the services the API uses."""

from __future__ import annotations

from dataclasses import dataclass

from models import RoleScope, Staff
from resolvers.state import AppState
from services.access.permissions import PERMISSIONS
from services.access.scope import Viewer, ViewerKind
from services.catalog import listings
from services.catalog import products as catalog
from services.inventory import stock
from services.org.settings import update_settings
from services.platform.db import write_transaction

HQ = Viewer(kind=ViewerKind.STAFF, role_code="HQ_ADMIN", role_scope=RoleScope.HQ, permissions=frozenset(PERMISSIONS))


@dataclass
class Library:
    category_ids: dict[str, int]
    sku_ids: list[int]  # in creation order
    product_ids: list[int]


async def make_library(state: AppState, *, products: int = 3, skus_per_product: int = 2, price: int = 1000) -> Library:
    """Given a library of drinks and food: `products` products with `skus_per_product` SKUs each."""
    async with write_transaction(state.sessionmaker) as session:
        drinks = await catalog.create_category(session, name="饮品", parent_id=None)
        coffee = await catalog.create_category(session, name="咖啡", parent_id=drinks.id)
        food = await catalog.create_category(session, name="食品", parent_id=None)
        sku_ids, product_ids = [], []
        for p in range(products):
            category = coffee if p % 2 == 0 else food
            product, skus = await catalog.create_product(
                session,
                HQ,
                name=f"商品{p}",
                category_id=category.id,
                skus=[
                    catalog.SkuFields(
                        barcode=f"690{p:05d}{s:02d}",
                        base_price=price,
                        cost_price=price // 2,
                        spec={"size": ["M", "L", "XL"][s % 3]},
                    )
                    for s in range(skus_per_product)
                ],
            )
            product_ids.append(product.id)
            sku_ids += [s.id for s in skus]
    return Library({"饮品": drinks.id, "咖啡": coffee.id, "食品": food.id}, sku_ids, product_ids)


async def list_in_store(state: AppState, store_id: int, sku_ids: list[int], *, on_hand: int = 0) -> None:
    """Given the store lists these SKUs and has `on_hand` of each."""
    async with write_transaction(state.sessionmaker) as session:
        await listings.adopt(session, HQ, store_id=store_id, items=[listings.Adoption(s) for s in sku_ids])
        if on_hand:
            await stock.receive(session, store_id, [stock.Line(s, on_hand) for s in sku_ids], stock.Ref("seed"))


async def allow_store_products(state: AppState) -> None:
    async with write_transaction(state.sessionmaker) as session:
        await update_settings(session, stores_may_create_products=True)


__all__ = ["HQ", "Library", "Staff", "allow_store_products", "list_in_store", "make_library"]

"""The baseline for the load bench: hand-written Starlette endpoints running the same SQL as our resolvers and
returning byte-for-byte the JSON our GraphQL answers for the member's store menu and HQ's store list with stock.

    DATABASE_URL=postgresql+asyncpg://... uvicorn bench.baseline:app --workers 2

No auth, no GraphQL, no loaders: what is left is the floor our API is measured against.
"""

from __future__ import annotations

import base64
import os
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import aliased
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from models import Product, RoleScope, Sku, StockLevel, Store, StoreListing, StoreStatus
from services.access.permissions import Perm
from services.access.scope import Viewer, ViewerKind
from services.catalog.listings import menu_query
from services.inventory.levels import store_level_pages
from services.platform.db import create_engine, create_sessionmaker

engine = create_engine(os.environ.get("DATABASE_URL", "sqlite+aiosqlite:///data/bench.db"))
sessionmaker = create_sessionmaker(engine)
HQ = Viewer(kind=ViewerKind.STAFF, role_scope=RoleScope.HQ, permissions=frozenset({Perm.STOCK_READ}))


def _gid(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def levels_for_stores_query(store_ids: list[int], default: int, *, first: int, dialect: str) -> Any:
    """(StockLevel, threshold) rows: the first `first`+1 levels of each store, as whole rows, in one statement."""
    levels, stmt = store_level_pages(HQ, default, store_ids, first + 1, None, low_only=False, dialect=dialect)
    return stmt.add_columns(aliased(StockLevel, levels), levels.c.threshold)


def _json(data: Any) -> Response:
    return Response(orjson.dumps({"data": data}), media_type="application/json")


async def menu(request: Request) -> Response:
    store_id = int(request.query_params["store"])
    first = int(request.query_params.get("first", "20"))
    async with sessionmaker() as session:
        visible = await session.scalar(
            select(Store.id).where(Store.id == store_id, Store.status != StoreStatus.PREPARING)
        )
        if visible is None:
            return _json({"store": None})
        listings = (
            await session.scalars(menu_query(store_id, None, None).order_by(StoreListing.id).limit(first))
        ).all()
        skus = {
            row.id: row
            for row in (
                await session.execute(
                    select(Sku.id, Sku.barcode, Product.name)
                    .join(Product, Product.id == Sku.product_id)
                    .where(Sku.id.in_([x.sku_id for x in listings]))
                )
            ).all()
        }
    edges = [
        {
            "node": {
                "listingId": _gid("StoreListing", x.id),
                "price": x.price,
                "sku": {"barcode": skus[x.sku_id].barcode, "product": {"name": skus[x.sku_id].name}},
            }
        }
        for x in listings
    ]
    return _json({"store": {"menu": {"edges": edges}}})


async def store_list(request: Request) -> Response:
    first = int(request.query_params.get("first", "20"))
    levels_first = int(request.query_params.get("levels", "5"))
    async with sessionmaker() as session:
        stores = (await session.scalars(select(Store).order_by(Store.id).limit(first))).all()
        rows = (
            await session.execute(
                levels_for_stores_query([s.id for s in stores], 5, first=levels_first, dialect=engine.dialect.name)
            )
        ).all()
        barcodes = dict(
            (
                await session.execute(
                    select(Sku.id, Sku.barcode).where(Sku.id.in_({level.sku_id for level, _ in rows}))
                )
            ).all()
        )
    by_store: dict[int, list[Any]] = {}
    for level, _ in rows:
        by_store.setdefault(level.store_id, []).append(level)
    edges = [
        {
            "node": {
                "code": s.code,
                "name": s.name,
                "stockLevels": {
                    "edges": [
                        {"node": {"onHand": r.on_hand, "reserved": r.reserved, "sku": {"barcode": barcodes[r.sku_id]}}}
                        for r in by_store.get(s.id, [])[:levels_first]
                    ]
                },
            }
        }
        for s in stores
    ]
    return _json({"stores": {"edges": edges}})


app = Starlette(routes=[Route("/menu", menu), Route("/stores", store_list)])
__all__ = ["app"]

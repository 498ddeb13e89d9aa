"""Load a chain at scale for the benches: stores, a product library listed everywhere with stock, members, and
paid orders spread over the last days, with their lines, payments and report facts.

    python -m bench.generate --url postgresql+asyncpg://postgres@127.0.0.1/bench --orders 1000000   # the full set
    python -m bench.generate --url sqlite+aiosqlite:///data/bench.db --small                         # a small set
    python -m bench.generate --url postgresql+asyncpg://postgres@127.0.0.1/bench5000 --stores 5000 --listed 400 \
        --members 200000 --orders 200000                                                             # the growth set

Run again with a larger --orders to add orders to an existing set (the benches grow 100k to 1M this way).
Rows are written in large multi-row INSERTs; the report facts are folded by the same job the app runs.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from models import (
    Category,
    Channel,
    FactEvent,
    FactEventKind,
    Fulfilment,
    Member,
    MemberLevel,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Product,
    Sku,
    StockLevel,
    Store,
    StoreListing,
    StoreStatus,
    utcnow,
)
from services.access.keys import load_keys
from services.access.security import Security
from services.analytics import facts
from services.platform.config import Settings
from services.platform.db import create_engine, create_sessionmaker
from services.platform.migrate import upgrade
from services.seed import seed_demo

CHUNK = 20_000
PREFIX = "G"  # generated stores' codes


@dataclass(frozen=True)
class Size:
    stores: int
    skus: int
    members: int
    orders: int
    days: int = 30
    listed: int | None = None  # SKUs each store lists (the library's first ones); None: every SKU everywhere


FULL = Size(stores=500, skus=2000, members=200_000, orders=1_000_000)
SMALL = Size(stores=20, skus=200, members=5_000, orders=50_000)


async def _bulk(session: AsyncSession, model: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK):
        await session.execute(insert(model), rows[start : start + CHUNK])


async def _library(engine: AsyncEngine, size: Size, rng: random.Random) -> None:
    async with create_sessionmaker(engine)() as session, session.begin():
        if await session.scalar(select(func.count()).select_from(Store).where(Store.code.like(f"{PREFIX}%"))):
            return
        categories = [Category(name=f"类目{i:02d}", sort=i) for i in range(20)]
        session.add_all(categories)
        await session.flush()
        products = [Product(name=f"商品{i:05d}", category_id=categories[i % 20].id) for i in range(size.skus)]
        session.add_all(products)
        await session.flush()
        await _bulk(
            session,
            Sku,
            [
                {
                    "product_id": p.id,
                    "barcode": f"69{i:011d}",
                    "spec": {},
                    "base_price": rng.randrange(500, 9000, 100),
                    "cost_price": 300,
                }
                for i, p in enumerate(products)
            ],
        )
        await _bulk(
            session,
            Store,
            [
                {
                    "code": f"{PREFIX}{i:04d}",
                    "name": f"门店{i:04d}",
                    "city": "上海",
                    "address": f"路{i}号",
                    "lat": 31.0 + (i % 50) / 100,
                    "lng": 121.0 + (i // 50) / 100,
                    "status": StoreStatus.OPEN,
                    "hours": [{"weekday": d, "opens": "00:00", "closes": "00:00"} for d in range(7)],
                }
                for i in range(size.stores)
            ],
        )
        skus = (await session.execute(select(Sku.id, Sku.base_price).order_by(Sku.id))).all()[: size.listed]
        stores = (await session.scalars(select(Store.id).where(Store.code.like(f"{PREFIX}%")))).all()
        for store_id in stores:
            await _bulk(
                session,
                StoreListing,
                [{"store_id": store_id, "sku_id": s, "price": p, "on_shelf": True} for s, p in skus],
            )
            await _bulk(
                session,
                StockLevel,
                [{"store_id": store_id, "sku_id": s, "on_hand": rng.randrange(0, 200), "reserved": 0} for s, _ in skus],
            )


async def _members(engine: AsyncEngine, size: Size, rng: random.Random) -> None:
    async with create_sessionmaker(engine)() as session, session.begin():
        have = int(await session.scalar(select(func.count()).select_from(Member)) or 0)
        level = await session.scalar(select(MemberLevel.id).order_by(MemberLevel.spend_threshold).limit(1))
        stores = (await session.scalars(select(Store.id).where(Store.code.like(f"{PREFIX}%")))).all()
        now = utcnow()
        await _bulk(
            session,
            Member,
            [
                {
                    "name": f"会员{i}",
                    "level_id": level,
                    "home_store_id": rng.choice(stores),
                    "points_balance": 0,
                    "balance_principal": 0,
                    "balance_bonus": 0,
                    "total_spend": 0,
                    "visit_count": 0,
                    "segment": rng.choice(["NEW", "VIP", "LOYAL", "REGULAR", "AT_RISK", "LOST"]),
                    "joined_at": now - timedelta(days=rng.randrange(0, 365)),
                }
                for i in range(have, size.members)
            ],
        )


async def _orders(engine: AsyncEngine, size: Size, rng: random.Random) -> int:
    sessionmaker = create_sessionmaker(engine)
    async with sessionmaker() as session:
        have = int(
            await session.scalar(select(func.count()).select_from(Order).where(Order.client_order_id.like("gen:%")))
            or 0
        )
        next_id = int(await session.scalar(select(func.coalesce(func.max(Order.id), 0))) or 0) + 1
        stores = list((await session.scalars(select(Store.id).where(Store.code.like(f"{PREFIX}%")))).all())
        prices = dict((await session.execute(select(Sku.id, Sku.base_price).order_by(Sku.id))).all()[: size.listed])
        member_ids = list((await session.scalars(select(Member.id))).all())
    sku_ids = list(prices)
    now = utcnow()
    made = 0
    for start in range(have, size.orders, CHUNK):
        orders, lines, payments, events = [], [], [], []
        for n in range(start, min(start + CHUNK, size.orders)):
            oid = next_id
            next_id += 1
            online = rng.random() < 0.4
            paid = now - timedelta(seconds=rng.randrange(0, size.days * 86400))
            subtotal = 0
            for sku in rng.sample(sku_ids, rng.randint(1, 3)):
                qty = rng.randint(1, 2)
                subtotal += prices[sku] * qty
                lines.append(
                    {
                        "order_id": oid,
                        "sku_id": sku,
                        "quantity": qty,
                        "list_price": prices[sku],
                        "unit_price": prices[sku],
                        "line_total": prices[sku] * qty,
                        "adjustments": [],
                        "picked_up": qty,
                        "refunded": 0,
                    }
                )
            store = rng.choice(stores)
            orders.append(
                {
                    "id": oid,
                    "store_id": store,
                    "member_id": rng.choice(member_ids) if rng.random() < 0.7 else None,
                    "channel": Channel.MINI_PROGRAM if online else Channel.POS,
                    "fulfilment": (Fulfilment.DELIVERY if rng.random() < 0.3 else Fulfilment.PICKUP)
                    if online
                    else Fulfilment.IN_STORE,
                    "status": OrderStatus.COMPLETED,
                    "client_order_id": f"gen:{n}",
                    "subtotal": subtotal,
                    "discount_total": 0,
                    "points_used": 0,
                    "points_value": 0,
                    "stored_value_used": 0,
                    "payable": subtotal,
                    "delivery_fee": 0,
                    "paid_at": paid,
                    "completed_at": paid,
                    "created_at": paid,
                }
            )
            payments.append(
                {
                    "order_id": oid,
                    "method": PaymentMethod.WECHAT_PAY if online else PaymentMethod.CASH,
                    "amount": subtotal,
                    "status": PaymentStatus.SUCCEEDED,
                    "store_id": store,
                    "paid_at": paid,
                }
            )
            events.append({"kind": FactEventKind.SALE, "order_id": oid, "created_at": now})
        async with sessionmaker() as session, session.begin():
            for model, rows in ((Order, orders), (OrderLine, lines), (Payment, payments), (FactEvent, events)):
                await _bulk(session, model, rows)
        made += len(orders)
        print(f"  orders {start + len(orders):>9,}", flush=True)
    if engine.dialect.name == "postgresql":
        async with engine.begin() as conn:
            await conn.execute(
                text("SELECT setval(pg_get_serial_sequence('orders', 'id'), (SELECT max(id) FROM orders))")
            )
    return made


async def _analyze(engine: AsyncEngine, *, vacuum: bool = False) -> None:
    """What autovacuum does for a real chain's database as it grows (and this machine's PostgreSQL has it off):
    statistics, and with `vacuum` the dead rows of the fold's deletes and upserts cleared, so that a read timed next
    does not scan a million dead fact events."""
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        for statement in ("VACUUM", "ANALYZE") if vacuum else ("ANALYZE",):
            await conn.execute(text(statement))


async def generate(url: str, size: Size, seed: int = 7) -> dict[str, float]:
    engine = create_engine(url)
    timings: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        await upgrade(engine)
        settings = Settings.from_env()
        async with create_sessionmaker(engine)() as session, session.begin():
            await seed_demo(session, Security(settings, load_keys(settings)))  # HQ sign-ins for the benches
        async with create_sessionmaker(engine)() as session:
            rng = random.Random(seed + int(await session.scalar(select(func.count()).select_from(Order)) or 0))
        await _library(engine, size, rng)
        await _members(engine, size, rng)
        timings["setup_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        made = await _orders(engine, size, rng)
        timings["orders_s"] = time.perf_counter() - t1
        # Bulk loads leave the planner's statistics behind (it estimated 1 product of 2,000 and chose nested loops
        # 30x slower than the right plan; it took 900,000 pending fact events for one, and the fold's delete of a
        # batch outran the statement timeout); a real chain's tables are analysed by autovacuum as they grow.
        await _analyze(engine)
        t2 = time.perf_counter()
        folded = await facts.refresh_all(create_sessionmaker(engine), batch=10_000)
        timings["facts_s"] = time.perf_counter() - t2
        await _analyze(engine, vacuum=True)
        print(f"{made:,} orders added, {folded:,} fact events folded; {timings}", flush=True)
    finally:
        await engine.dispose()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.generate")
    parser.add_argument("--url", required=True)
    parser.add_argument("--small", action="store_true", help="20 stores, 200 SKUs, 5,000 members, 50,000 orders")
    parser.add_argument("--orders", type=int, help="total orders wanted (default: the set's)")
    parser.add_argument("--stores", type=int, help="stores (default: the set's; only when the library is first made)")
    parser.add_argument("--members", type=int, help="total members wanted (default: the set's)")
    parser.add_argument("--listed", type=int, help="SKUs each store lists (default: all of the library's)")
    args = parser.parse_args()
    size = SMALL if args.small else FULL
    size = replace(
        size,
        stores=args.stores or size.stores,
        members=args.members or size.members,
        orders=args.orders or size.orders,
        listed=args.listed or size.listed,
    )
    asyncio.run(generate(args.url, size))


if __name__ == "__main__":
    main()

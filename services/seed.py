"""The demo chain: nine stores in three cities, a warehouse with its keeper, HQ staff, and a manager and clerk per
store."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

import services.registry  # noqa: F401  (imports every domain, so their jobs are registered)
from models import MemberLevel, Role, RoleScope, Sku, Staff, Store, StoreKind, StoreStatus, TopUpPlan
from services.access.permissions import PERMISSIONS
from services.access.roles import sync_builtin_roles
from services.access.scope import Viewer, ViewerKind
from services.access.security import Security
from services.catalog import products as catalog
from services.catalog.csv_io import category_ids_for_paths
from services.catalog.listings import Adoption, adopt
from services.inventory import stock
from services.platform.jobs import ensure_recurring

DEMO_PASSWORD = "demo-pass-2026"

DEMO_STORES: tuple[tuple[str, str, str, str, float, float], ...] = (
    ("SH01", "静安寺店", "上海", "静安区南京西路1618号", 31.2243, 121.4456),
    ("SH02", "人民广场店", "上海", "黄浦区南京东路300号", 31.2335, 121.4737),
    ("SH03", "陆家嘴店", "上海", "浦东新区世纪大道100号", 31.2397, 121.4998),
    ("SH04", "徐家汇店", "上海", "徐汇区虹桥路1号", 31.1951, 121.4375),
    ("HZ01", "西湖店", "杭州", "上城区湖滨路28号", 30.2590, 120.1641),
    ("HZ02", "武林广场店", "杭州", "拱墅区武林广场1号", 30.2755, 120.1644),
    ("HZ03", "滨江店", "杭州", "滨江区江南大道588号", 30.2084, 120.2105),
    ("SZ01", "观前街店", "苏州", "姑苏区观前街88号", 31.3101, 120.6255),
    ("SZ02", "金鸡湖店", "苏州", "工业园区苏州大道东268号", 31.3180, 120.6728),
)
# The demo warehouse (stores order replenishment from it; it receives purchases) and its keeper's account.
DEMO_WAREHOUSE = ("WHSH", "华东仓", "上海", "嘉定区仓储路88号", 31.3758, 121.2650)
WAREHOUSE_KEEPER = "whsh.keeper"
HQ_ACCOUNTS = (
    ("hq.admin", "总部管理员", "HQ_ADMIN"),
    ("hq.operator", "总部运营", "HQ_OPERATOR"),
    ("hq.analyst", "总部分析师", "HQ_ANALYST"),
)
# name, lifetime spend to reach it (fen), percent of price paid, points multiplier percent
DEMO_LEVELS = (
    ("普通会员", 0, 100, 100),
    ("银卡", 100_000, 98, 120),
    ("金卡", 500_000, 95, 150),
    ("钻石卡", 2_000_000, 90, 200),
)
WEEK_HOURS = [{"weekday": d, "opens": "08:00", "closes": "22:00"} for d in range(7)]


@dataclass(frozen=True)
class SignIn:
    username: str
    password: str
    role: str
    store: str | None


def demo_sign_ins() -> list[SignIn]:
    rows = [SignIn(u, DEMO_PASSWORD, r, None) for u, _, r in HQ_ACCOUNTS]
    for code, *_ in DEMO_STORES:
        rows.append(SignIn(f"{code.lower()}.manager", DEMO_PASSWORD, "STORE_MANAGER", code))
        rows.append(SignIn(f"{code.lower()}.clerk", DEMO_PASSWORD, "CLERK", code))
    rows.append(SignIn(WAREHOUSE_KEEPER, DEMO_PASSWORD, "WAREHOUSE_KEEPER", DEMO_WAREHOUSE[0]))
    return rows


DEMO_REFUSED = (
    "seed-demo refuses to run with APP_ENV=production: every demo account's password is published in the README."
)


class DemoRefused(RuntimeError):
    """The demo chain was asked for in production."""


async def seed_demo(session: AsyncSession, security: Security) -> bool:
    """Load the demo chain into an empty database; returns False when there were stores already.

    Never in production: every demo account's password is published in the README."""
    if security.settings.is_production:
        raise DemoRefused(DEMO_REFUSED)
    await sync_builtin_roles(session)
    if await session.scalar(select(func.count()).select_from(Store)):
        return False
    roles = {r.code: r.id for r in (await session.scalars(select(Role))).all()}
    password_hash = security.hash_password(DEMO_PASSWORD)
    stores: dict[str, Store] = {}
    for code, name, city, address, lat, lng in DEMO_STORES:
        store = Store(
            code=code,
            name=name,
            city=city,
            address=address,
            lat=lat,
            lng=lng,
            status=StoreStatus.OPEN,
            hours=WEEK_HOURS,
            timezone="Asia/Shanghai",
        )
        session.add(store)
        stores[code] = store
    await session.flush()
    for username, display, role in HQ_ACCOUNTS:
        session.add(Staff(username=username, display_name=display, password_hash=password_hash, role_id=roles[role]))
    for code, store in stores.items():
        for suffix, label, role in (("manager", "店长", "STORE_MANAGER"), ("clerk", "店员", "CLERK")):
            session.add(
                Staff(
                    username=f"{code.lower()}.{suffix}",
                    display_name=f"{store.name}{label}",
                    password_hash=password_hash,
                    role_id=roles[role],
                    store_id=store.id,
                )
            )
    await _seed_warehouse(session, roles["WAREHOUSE_KEEPER"], password_hash)
    for name, threshold, discount, multiplier in DEMO_LEVELS:
        session.add(
            MemberLevel(
                name=name, spend_threshold=threshold, discount_percent=discount, points_multiplier_pct=multiplier
            )
        )
    for name, pay, bonus in (
        ("充200送10", 20_000, 1_000),
        ("充500送50", 50_000, 5_000),
        ("充1000送150", 100_000, 15_000),
    ):
        session.add(TopUpPlan(name=name, pay_amount=pay, bonus_amount=bonus))
    await ensure_recurring(session)
    await session.flush()
    return True


async def _seed_warehouse(session: AsyncSession, keeper_role: int, password_hash: str) -> None:
    """The demo warehouse, open, and its keeper (a staff account posted there: receives and ships, nothing else)."""
    code, name, city, address, lat, lng = DEMO_WAREHOUSE
    warehouse = Store(
        code=code,
        name=name,
        city=city,
        address=address,
        lat=lat,
        lng=lng,
        status=StoreStatus.OPEN,
        kind=StoreKind.WAREHOUSE,
        hours=WEEK_HOURS,
        timezone="Asia/Shanghai",
    )
    session.add(warehouse)
    await session.flush()
    session.add(
        Staff(
            username=WAREHOUSE_KEEPER,
            display_name=f"{name}仓管",
            password_hash=password_hash,
            role_id=keeper_role,
            store_id=warehouse.id,
        )
    )


DEMO_MENU: tuple[tuple[str, str, tuple[tuple[str, str, int], ...]], ...] = (
    ("饮品/咖啡", "美式咖啡", (("6920000000011", "中杯", 1800), ("6920000000012", "大杯", 2200))),
    ("饮品/咖啡", "拿铁", (("6920000000021", "中杯", 2600), ("6920000000022", "大杯", 3000))),
    ("饮品/茶", "茉莉花茶", (("6920000000031", "热", 1600), ("6920000000032", "冰", 1600))),
    ("食品/烘焙", "黄油可颂", (("6920000000041", "单个", 1200),)),
    ("食品/烘焙", "肉松小贝", (("6920000000051", "两只装", 1500),)),
    ("食品/轻食", "鸡胸肉沙拉", (("6920000000061", "标准", 3200),)),
)


async def seed_demo_catalog(session: AsyncSession) -> bool:
    """A small menu, listed in every demo store with stock, so the mini-program has something to show."""
    if await session.scalar(select(func.count()).select_from(Sku)):
        return False
    hq = Viewer(
        kind=ViewerKind.STAFF, role_code="HQ_ADMIN", role_scope=RoleScope.HQ, permissions=frozenset(PERMISSIONS)
    )
    categories = await category_ids_for_paths(session, {tuple(path.split("/")) for path, _, _ in DEMO_MENU})
    sku_ids: list[int] = []
    for path, name, skus in DEMO_MENU:
        _, created = await catalog.create_product(
            session,
            hq,
            name=name,
            category_id=categories[tuple(path.split("/"))],
            skus=[
                catalog.SkuFields(barcode=code, base_price=price, cost_price=price * 35 // 100, spec={"规格": spec})
                for code, spec, price in skus
            ],
        )
        sku_ids += [s.id for s in created]
    for store_id, kind in (await session.execute(select(Store.id, Store.kind).order_by(Store.id))).all():
        if kind is StoreKind.STORE:  # a warehouse lists nothing: it holds stock for the stores
            await adopt(session, hq, store_id=store_id, items=[Adoption(s) for s in sku_ids])
        await stock.receive(session, store_id, [stock.Line(s, 30) for s in sku_ids], stock.Ref("demo"))
    return True

"""Per-request dataloaders: one instance per class per request, each batch in its own short session.

Every loader filters by the viewer's scope, so a relation followed from any type can never
return another store's rows.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from aiodataloader import DataLoader
from sqlalchemy import ColumnElement, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import (
    AuditLog,
    Campaign,
    CampaignItem,
    CampaignKind,
    CampaignStatus,
    Category,
    CouponTemplate,
    Job,
    JobStatus,
    Member,
    MemberCoupon,
    MemberLevel,
    MemberStore,
    MemberTag,
    MemberTagLink,
    Order,
    OrderLine,
    Payment,
    PointsMallItem,
    Product,
    Refund,
    Role,
    RoleScope,
    Sku,
    Staff,
    StockLevel,
    StockMovement,
    Store,
    StoreListing,
    Transfer,
    TransferLine,
)
from services.access.scope import Viewer, restrict
from services.access.visible import template_condition
from services.catalog.products import visible_products
from services.inventory.levels import Availability, availability, level_query, levels_for_stores_query
from services.marketing.promotions import visible_campaigns
from services.members import ledgers
from services.members.accounts import visible_members
from services.org.settings import ChainSettings, get_settings
from services.org.stores import visible_condition
from services.platform.db import dialect_name
from services.platform.pagination import AnySelect, Page, encode_cursor

# What the mini-program shows of campaigns (runningCampaigns); referral rewards are HQ's business.
PUBLIC_CAMPAIGN_KINDS = (CampaignKind.LIMITED_DISCOUNT, CampaignKind.FULL_REDUCTION, CampaignKind.FLASH_SALE,
                         CampaignKind.GROUP_BUY)  # fmt: skip

K = TypeVar("K", bound=Hashable)
L = TypeVar("L")
V = TypeVar("V")


class ScopedLoader(DataLoader[Any, Any]):
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], viewer: Viewer) -> None:
        super().__init__()
        self.sessionmaker = sessionmaker
        self.viewer = viewer

    def load(self, key: Any) -> asyncio.Future[Any]:
        """The key's value, shared by every field that asks for it. Shielded: when graphql-core cancels a field
        because a sibling failed (a non-null FORBIDDEN), only that field's wait ends; the shared future, which
        another part of the query still awaits, is not cancelled with it."""
        return asyncio.shield(super().load(key))

    async def _rows(self, stmt: AnySelect) -> Sequence[Any]:
        async with self.sessionmaker() as session:
            return (await session.scalars(stmt)).all()


def by_key(keys: Sequence[K], rows: Sequence[V], key: Callable[[V], K]) -> list[V | None]:
    found = {key(r): r for r in rows}
    return [found.get(k) for k in keys]


def grouped(keys: Sequence[K], rows: Sequence[V], key: Callable[[V], K]) -> list[list[V]]:
    groups: dict[K, list[V]] = defaultdict(list)
    for r in rows:
        groups[key(r)].append(r)
    return [groups.get(k, []) for k in keys]


class StoreByIdLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[Store | None]:
        rows = await self._rows(select(Store).where(Store.id.in_(keys), visible_condition(self.viewer)))
        return by_key(keys, rows, lambda s: s.id)


class StaffByIdLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[Staff | None]:
        stmt = restrict(select(Staff).where(Staff.id.in_(keys)), self.viewer, Staff.store_id, "staff.read")
        return by_key(keys, await self._rows(stmt), lambda s: s.id)


class StaffByStoreLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[list[Staff]]:
        stmt = restrict(
            select(Staff).where(Staff.store_id.in_(keys)).order_by(Staff.id),
            self.viewer,
            Staff.store_id,
            "staff.read",
        )
        return grouped(keys, await self._rows(stmt), lambda s: s.store_id)


class RoleByIdLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[Role | None]:
        stmt = select(Role).where(Role.id.in_(keys))
        if not self.viewer.is_staff:
            return [None for _ in keys]
        if not self.viewer.is_hq:
            # Store staff see store roles, and their own role whatever its scope.
            stmt = stmt.where((Role.scope == RoleScope.STORE) | (Role.code == self.viewer.role_code))
        return by_key(keys, await self._rows(stmt), lambda r: r.id)


class MemberByIdLoader(ScopedLoader):
    """Members the viewer may see: themself; HQ everyone; a store's staff those related to their store."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[Member | None]:
        rows = await self._rows(select(Member).where(Member.id.in_(keys), visible_members(self.viewer)))
        return by_key(keys, rows, lambda m: m.id)


class MemberLevelByIdLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[MemberLevel | None]:
        return by_key(keys, await self._rows(select(MemberLevel).where(MemberLevel.id.in_(keys))), lambda x: x.id)


class TagsByMemberLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[list[MemberTag]]:
        async with self.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(MemberTagLink.member_id, MemberTag)
                    .join(MemberTag, MemberTag.id == MemberTagLink.tag_id)
                    .where(MemberTagLink.member_id.in_(keys))
                    .order_by(MemberTag.name)
                )
            ).all()
        groups: dict[int, list[MemberTag]] = defaultdict(list)
        for member_id, tag in rows:
            groups[member_id].append(tag)
        return [groups.get(k, []) for k in keys]


@dataclass(frozen=True)
class MemberStoreStats:
    favourite_store_id: int | None
    last_purchase_at: datetime | None


class MemberStoreStatsLoader(ScopedLoader):
    """Favourite store (most purchases) and last purchase of each member, from the member-store relation."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[MemberStoreStats]:
        rows = await self._rows(
            select(MemberStore).where(MemberStore.member_id.in_(keys), MemberStore.purchase_count > 0)
        )
        by_member: dict[int, list[MemberStore]] = defaultdict(list)
        for r in rows:
            by_member[r.member_id].append(r)
        never = datetime.min.replace(tzinfo=UTC)
        stats = {
            member_id: MemberStoreStats(
                favourite_store_id=max(links, key=lambda x: (x.purchase_count, x.last_purchase_at or never)).store_id,
                last_purchase_at=max((x.last_purchase_at for x in links if x.last_purchase_at), default=None),
            )
            for member_id, links in by_member.items()
        }
        return [stats.get(k, MemberStoreStats(None, None)) for k in keys]


class AuditLogByIdLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[AuditLog | None]:
        stmt = restrict(select(AuditLog).where(AuditLog.id.in_(keys)), self.viewer, AuditLog.store_id, "audit.view")
        return by_key(keys, await self._rows(stmt), lambda a: a.id)


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

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], viewer: Viewer,
                 products: ProductByIdLoader) -> None:  # fmt: skip
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
            select(StoreListing).where(StoreListing.id.in_(keys)), self.viewer, StoreListing.store_id, "stock.read"
        )
        return by_key(keys, await self._rows(stmt), lambda x: x.id)


@dataclass(frozen=True)
class LevelView:
    """A stock level with its effective low-stock line."""

    level: StockLevel
    threshold: int


class _LevelLoader(ScopedLoader):
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], viewer: Viewer, settings: SettingsCache) -> None:
        super().__init__(sessionmaker, viewer)
        self.settings = settings

    async def _levels(self, where: ColumnElement[bool]) -> list[LevelView]:
        default = (await self.settings.get()).default_low_stock_threshold
        stmt = restrict(level_query(default, low_only=False), self.viewer, StockLevel.store_id, "stock.read").where(
            where
        )
        async with self.sessionmaker() as session:
            return [LevelView(r.StockLevel, r.threshold) for r in (await session.execute(stmt)).all()]


class StockLevelByIdLoader(_LevelLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[LevelView | None]:
        return by_key(keys, await self._levels(StockLevel.id.in_(keys)), lambda v: v.level.id)


class StockLevelByStoreSkuLoader(_LevelLoader):
    async def batch_load_fn(self, keys: Sequence[tuple[int, int]]) -> list[LevelView | None]:
        rows = await self._levels(tuple_(StockLevel.store_id, StockLevel.sku_id).in_(list(keys)))
        return by_key(keys, rows, lambda v: (v.level.store_id, v.level.sku_id))


class AvailabilityByStoreSkuLoader(_LevelLoader):
    """What anyone may know of a store's stock: in stock, low or sold out; never the count."""

    async def batch_load_fn(self, keys: Sequence[tuple[int, int]]) -> list[Availability]:
        default = (await self.settings.get()).default_low_stock_threshold
        stmt = level_query(default, low_only=False).where(
            tuple_(StockLevel.store_id, StockLevel.sku_id).in_(list(keys))
        )
        async with self.sessionmaker() as session:
            found = {
                (r.StockLevel.store_id, r.StockLevel.sku_id): availability(
                    r.StockLevel.on_hand - r.StockLevel.reserved, r.threshold
                )
                for r in (await session.execute(stmt)).all()
            }
        return [found.get(k, Availability.SOLD_OUT) for k in keys]


class StockLevelsByStoreLoader(_LevelLoader):
    """A page of levels per store; key (store_id, low_only, first, after_id). One statement per distinct page shape."""

    async def batch_load_fn(self, keys: Sequence[tuple[int, bool, int, int | None]]) -> list[Page[LevelView]]:
        default = (await self.settings.get()).default_low_stock_threshold
        shapes: dict[tuple[bool, int, int | None], list[int]] = defaultdict(list)
        for store_id, low_only, first, after_id in keys:
            shapes[(low_only, first, after_id)].append(store_id)
        pages: dict[tuple[int, bool, int, int | None], Page[LevelView]] = {}
        async with self.sessionmaker() as session:
            for (low_only, first, after_id), store_ids in shapes.items():
                stmt = levels_for_stores_query(
                    self.viewer,
                    store_ids,
                    default,
                    low_only=low_only,
                    first=first,
                    after_id=after_id,
                    dialect=dialect_name(session),
                )
                per_store: dict[int, list[LevelView]] = defaultdict(list)
                for level, threshold in (await session.execute(stmt)).all():
                    per_store[level.store_id].append(LevelView(level, threshold))
                for store_id in store_ids:
                    views = per_store.get(store_id, [])
                    shown = views[:first]
                    pages[(store_id, low_only, first, after_id)] = Page(
                        rows=shown, has_next=len(views) > first, cursors=[encode_cursor(v.level.id) for v in shown]
                    )
        return [pages[k] for k in keys]


class StockMovementByIdLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[StockMovement | None]:
        stmt = restrict(
            select(StockMovement).where(StockMovement.id.in_(keys)), self.viewer, StockMovement.store_id, "stock.read"
        )
        return by_key(keys, await self._rows(stmt), lambda m: m.id)


class TransferByIdLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[Transfer | None]:
        if not self.viewer.can("stock.read"):
            return [None for _ in keys]
        stmt = select(Transfer).where(Transfer.id.in_(keys))
        if not self.viewer.is_hq:
            stmt = stmt.where(
                or_(Transfer.from_store_id == self.viewer.store_id, Transfer.to_store_id == self.viewer.store_id)
            )
        return by_key(keys, await self._rows(stmt), lambda t: t.id)


class TransferLinesByTransferLoader(ScopedLoader):
    """Lines of transfers the caller already loaded through TransferByIdLoader (and so may see)."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[list[TransferLine]]:
        rows = await self._rows(
            select(TransferLine).where(TransferLine.transfer_id.in_(keys)).order_by(TransferLine.id)
        )
        return grouped(keys, rows, lambda line: line.transfer_id)


class SettingsCache:
    """The chain settings, read at most once per request."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker
        self._value: ChainSettings | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> ChainSettings:
        async with self._lock:
            if self._value is None:
                async with self.sessionmaker() as session:
                    self._value = await get_settings(session)
            return self._value


class OrderByIdLoader(ScopedLoader):
    """Orders a viewer may see: a member their own; staff their store's (order.read); HQ all."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[Order | None]:
        stmt = select(Order).where(Order.id.in_(keys))
        if self.viewer.is_member:
            stmt = stmt.where(Order.member_id == self.viewer.member_id)
        else:
            stmt = restrict(stmt, self.viewer, Order.store_id, "order.read")
        return by_key(keys, await self._rows(stmt), lambda o: o.id)


class OrderLinesByOrderLoader(ScopedLoader):
    """Lines of orders already loaded through a scoped path."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[list[OrderLine]]:
        rows = await self._rows(select(OrderLine).where(OrderLine.order_id.in_(keys)).order_by(OrderLine.id))
        return grouped(keys, rows, lambda line: line.order_id)


class PaymentsByOrderLoader(ScopedLoader):
    """Payments of orders already loaded through a scoped path, oldest first."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[list[Payment]]:
        rows = await self._rows(select(Payment).where(Payment.order_id.in_(keys)).order_by(Payment.id))
        return grouped(keys, rows, lambda p: p.order_id)


class PaymentByIdLoader(ScopedLoader):
    """A payment the viewer may see: on a member's own order; staff their store's (order.read); HQ all."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[Payment | None]:
        stmt = select(Payment).where(Payment.id.in_(keys))
        if self.viewer.is_member:
            stmt = stmt.join(Order, Order.id == Payment.order_id).where(Order.member_id == self.viewer.member_id)
        else:
            stmt = restrict(stmt, self.viewer, Payment.store_id, "order.read")
        return by_key(keys, await self._rows(stmt), lambda p: p.id)


class RefundsByOrderLoader(ScopedLoader):
    """Refunds of orders already loaded through a scoped path, oldest first."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[list[Refund]]:
        rows = await self._rows(select(Refund).where(Refund.order_id.in_(keys)).order_by(Refund.id))
        return grouped(keys, rows, lambda r: r.order_id)


class RefundByIdLoader(ScopedLoader):
    """Refunds of orders the viewer may see (as OrderByIdLoader): a member their own; staff their store's."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[Refund | None]:
        stmt = select(Refund).where(Refund.id.in_(keys))
        if self.viewer.is_member:
            stmt = stmt.join(Order, Order.id == Refund.order_id).where(Order.member_id == self.viewer.member_id)
        else:
            stmt = restrict(stmt, self.viewer, Refund.store_id, "order.read")
        return by_key(keys, await self._rows(stmt), lambda r: r.id)


class CampaignItemsByCampaignLoader(ScopedLoader):
    """The SKU terms of campaigns already loaded through a scoped path."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[list[CampaignItem]]:
        rows = await self._rows(
            select(CampaignItem).where(CampaignItem.campaign_id.in_(keys)).order_by(CampaignItem.id)
        )
        return grouped(keys, rows, lambda item: item.campaign_id)


class CouponTemplateByIdLoader(ScopedLoader):
    """Coupon templates are public terms (members see them in their wallet and to claim); staff see the chain's
    and their own store's, as everywhere (`services.access.visible`)."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[CouponTemplate | None]:
        stmt = select(CouponTemplate).where(CouponTemplate.id.in_(keys), template_condition(self.viewer))
        return by_key(keys, await self._rows(stmt), lambda t: t.id)


class _Lazy(Generic[L]):
    """A request's loader, made on first use: a request uses a few of the many."""

    def __init__(self, make: Callable[[Loaders], L]) -> None:
        self.make = make

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, loaders: Loaders, owner: type | None = None) -> L:
        made = self.make(loaders)
        loaders.__dict__[self.name] = made  # later reads find the instance attribute first
        return made


class Loaders:
    """The request's loaders; built in the context factory, never at import."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], viewer: Viewer) -> None:
        self.sessionmaker = sessionmaker
        self.viewer = viewer
        self.settings = SettingsCache(sessionmaker)

    store_by_id = _Lazy(lambda x: StoreByIdLoader(x.sessionmaker, x.viewer))
    staff_by_id = _Lazy(lambda x: StaffByIdLoader(x.sessionmaker, x.viewer))
    staff_by_store = _Lazy(lambda x: StaffByStoreLoader(x.sessionmaker, x.viewer))
    role_by_id = _Lazy(lambda x: RoleByIdLoader(x.sessionmaker, x.viewer))
    member_by_id = _Lazy(lambda x: MemberByIdLoader(x.sessionmaker, x.viewer))
    member_level_by_id = _Lazy(lambda x: MemberLevelByIdLoader(x.sessionmaker, x.viewer))
    tags_by_member = _Lazy(lambda x: TagsByMemberLoader(x.sessionmaker, x.viewer))
    member_store_stats = _Lazy(lambda x: MemberStoreStatsLoader(x.sessionmaker, x.viewer))
    audit_log_by_id = _Lazy(lambda x: AuditLogByIdLoader(x.sessionmaker, x.viewer))
    category_by_id = _Lazy(lambda x: CategoryByIdLoader(x.sessionmaker, x.viewer))
    categories_by_parent = _Lazy(lambda x: CategoriesByParentLoader(x.sessionmaker, x.viewer))
    product_by_id = _Lazy(lambda x: ProductByIdLoader(x.sessionmaker, x.viewer))
    sku_by_id = _Lazy(lambda x: SkuByIdLoader(x.sessionmaker, x.viewer, x.product_by_id))
    skus_by_product = _Lazy(lambda x: SkusByProductLoader(x.sessionmaker, x.viewer))
    listing_by_id = _Lazy(lambda x: ListingByIdLoader(x.sessionmaker, x.viewer))
    stock_level_by_id = _Lazy(lambda x: StockLevelByIdLoader(x.sessionmaker, x.viewer, x.settings))
    stock_level_by_store_sku = _Lazy(lambda x: StockLevelByStoreSkuLoader(x.sessionmaker, x.viewer, x.settings))
    availability_by_store_sku = _Lazy(lambda x: AvailabilityByStoreSkuLoader(x.sessionmaker, x.viewer, x.settings))
    stock_levels_by_store = _Lazy(lambda x: StockLevelsByStoreLoader(x.sessionmaker, x.viewer, x.settings))
    stock_movement_by_id = _Lazy(lambda x: StockMovementByIdLoader(x.sessionmaker, x.viewer))
    transfer_by_id = _Lazy(lambda x: TransferByIdLoader(x.sessionmaker, x.viewer))
    transfer_lines_by_transfer = _Lazy(lambda x: TransferLinesByTransferLoader(x.sessionmaker, x.viewer))
    order_by_id = _Lazy(lambda x: OrderByIdLoader(x.sessionmaker, x.viewer))
    order_lines_by_order = _Lazy(lambda x: OrderLinesByOrderLoader(x.sessionmaker, x.viewer))
    payments_by_order = _Lazy(lambda x: PaymentsByOrderLoader(x.sessionmaker, x.viewer))
    payment_by_id = _Lazy(lambda x: PaymentByIdLoader(x.sessionmaker, x.viewer))
    refunds_by_order = _Lazy(lambda x: RefundsByOrderLoader(x.sessionmaker, x.viewer))
    refund_by_id = _Lazy(lambda x: RefundByIdLoader(x.sessionmaker, x.viewer))
    campaign_items_by_campaign = _Lazy(lambda x: CampaignItemsByCampaignLoader(x.sessionmaker, x.viewer))
    coupon_template_by_id = _Lazy(lambda x: CouponTemplateByIdLoader(x.sessionmaker, x.viewer))
    points_ledger = _Lazy(lambda x: PointsLedgerLoader(x.sessionmaker, x.viewer))
    balance_ledger = _Lazy(lambda x: BalanceLedgerLoader(x.sessionmaker, x.viewer))
    campaign_node = _Lazy(lambda x: CampaignNodeLoader(x.sessionmaker, x.viewer))
    coupon_template_node = _Lazy(lambda x: CouponTemplateNodeLoader(x.sessionmaker, x.viewer))
    member_coupon_node = _Lazy(lambda x: MemberCouponNodeLoader(x.sessionmaker, x.viewer))
    points_mall_item_node = _Lazy(lambda x: PointsMallItemNodeLoader(x.sessionmaker, x.viewer))
    failed_job_node = _Lazy(lambda x: FailedJobNodeLoader(x.sessionmaker, x.viewer))


LedgerKey = tuple[int, int, int | None]  # member id, page size, after id


class _LedgerLoader(ScopedLoader):
    """A page of a member's ledger per key; one statement per distinct (first, after), whatever the members."""

    async def _read(
        self, session: AsyncSession, member_ids: list[int], first: int, after_id: int | None
    ) -> dict[int, Page[Any]]:
        raise NotImplementedError

    async def batch_load_fn(self, keys: Sequence[LedgerKey]) -> list[Page[Any]]:
        shapes: dict[tuple[int, int | None], list[int]] = defaultdict(list)
        for member_id, first, after_id in keys:
            shapes[(first, after_id)].append(member_id)
        pages: dict[LedgerKey, Page[Any]] = {}
        async with self.sessionmaker() as session:
            for (first, after_id), member_ids in shapes.items():
                for member_id, page in (await self._read(session, member_ids, first, after_id)).items():
                    pages[(member_id, first, after_id)] = page
        return [pages[k] for k in keys]


class PointsLedgerLoader(_LedgerLoader):
    async def _read(
        self, session: AsyncSession, member_ids: list[int], first: int, after_id: int | None
    ) -> dict[int, Page[Any]]:
        visible = visible_members(self.viewer, "member.read")
        return dict(await ledgers.points_pages(session, member_ids, visible, first=first, after_id=after_id))


class BalanceLedgerLoader(_LedgerLoader):
    async def _read(
        self, session: AsyncSession, member_ids: list[int], first: int, after_id: int | None
    ) -> dict[int, Page[Any]]:
        visible = visible_members(self.viewer, "member.read")
        return dict(await ledgers.balance_pages(session, member_ids, visible, first=first, after_id=after_id))


class CampaignNodeLoader(ScopedLoader):
    """node(id) for campaigns: marketing staff see HQ's and their store's; everyone the running public ones."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[Campaign | None]:
        public = (Campaign.status == CampaignStatus.ACTIVE) & Campaign.kind.in_(PUBLIC_CAMPAIGN_KINDS)
        shown = visible_campaigns(self.viewer) if self.viewer.can("marketing.manage") else public
        return by_key(keys, await self._rows(select(Campaign).where(Campaign.id.in_(keys), shown)), lambda c: c.id)


class CouponTemplateNodeLoader(ScopedLoader):
    """node(id) for coupon templates: staff see the chain's and their store's; members and visitors the terms
    (claimable or held: the wallet shows any store's), as the wallet and the claim list do."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[CouponTemplate | None]:
        stmt = select(CouponTemplate).where(CouponTemplate.id.in_(keys))
        if self.viewer.is_staff and not self.viewer.is_hq:
            stmt = stmt.where(
                CouponTemplate.owner_store_id.is_(None) | (CouponTemplate.owner_store_id == self.viewer.store_id)
            )
        return by_key(keys, await self._rows(stmt), lambda t: t.id)


class MemberCouponNodeLoader(ScopedLoader):
    """A member's coupons: the member's own; staff with member.read those of members in their scope."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[MemberCoupon | None]:
        members = select(Member.id).where(visible_members(self.viewer, "member.read"))
        stmt = select(MemberCoupon).where(MemberCoupon.id.in_(keys), MemberCoupon.member_id.in_(members))
        return by_key(keys, await self._rows(stmt), lambda c: c.id)


class PointsMallItemNodeLoader(ScopedLoader):
    """Points-mall items are public while on sale; marketing staff also see retired ones."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[PointsMallItem | None]:
        stmt = select(PointsMallItem).where(PointsMallItem.id.in_(keys))
        if not self.viewer.can("marketing.manage"):
            stmt = stmt.where(PointsMallItem.active.is_(True))
        return by_key(keys, await self._rows(stmt), lambda i: i.id)


class FailedJobNodeLoader(ScopedLoader):
    """Jobs that gave up, for HQ with audit.view only (as failedJobs lists them)."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[Job | None]:
        if not (self.viewer.is_hq and self.viewer.can("audit.view")):
            return [None for _ in keys]
        stmt = select(Job).where(Job.id.in_(keys), Job.status == JobStatus.FAILED)
        return by_key(keys, await self._rows(stmt), lambda j: j.id)

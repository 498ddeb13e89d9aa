"""Loaders for stock levels, movements and transfers."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import (
    PurchaseReceipt,
    PurchaseReceiptLine,
    SkuRow,
    StockLevel,
    StockMovement,
    Transfer,
    TransferLine,
)
from resolvers.loaders.base import ScopedLoader, by_key, grouped
from resolvers.loaders.org import SettingsCache
from services.access.permissions import Perm
from services.access.scope import Viewer, restrict
from services.inventory.levels import LEVEL_PAGE_SKU, Availability, availability, level_pages, level_query
from services.platform.db import dialect_name
from services.platform.pagination import Page, encode_cursor


@dataclass(frozen=True, slots=True)
class LevelView:
    """A stock level's values with its effective low-stock line, and its SKU when the statement read it too
    (`sku_read`; the SKU is None where the viewer may not see its product)."""

    id: int
    store_id: int
    sku_id: int
    on_hand: int
    reserved: int
    updated_at: datetime | None
    threshold: int
    sku: SkuRow | None = None
    sku_read: bool = False

    @classmethod
    def of(cls, level: StockLevel, threshold: int) -> LevelView:
        return cls(level.id, level.store_id, level.sku_id, level.on_hand, level.reserved, level.updated_at, threshold)


class _LevelLoader(ScopedLoader):
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], viewer: Viewer, settings: SettingsCache) -> None:
        super().__init__(sessionmaker, viewer)
        self.settings = settings

    async def _levels(self, where: ColumnElement[bool]) -> list[LevelView]:
        default = (await self.settings.get()).default_low_stock_threshold
        stmt = restrict(level_query(default, low_only=False), self.viewer, StockLevel.store_id, Perm.STOCK_READ).where(
            where
        )
        async with self.sessionmaker() as session:
            return [LevelView.of(r.StockLevel, r.threshold) for r in (await session.execute(stmt)).all()]


class StockLevelByIdLoader(_LevelLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[LevelView | None]:
        return by_key(keys, await self._levels(StockLevel.id.in_(keys)), lambda v: v.id)


class StockLevelByStoreSkuLoader(_LevelLoader):
    async def batch_load_fn(self, keys: Sequence[tuple[int, int]]) -> list[LevelView | None]:
        rows = await self._levels(tuple_(StockLevel.store_id, StockLevel.sku_id).in_(list(keys)))
        return by_key(keys, rows, lambda v: (v.store_id, v.sku_id))


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
    """A page of levels per store; key (store_id, low_only, first, after_id). One statement per distinct page shape,
    which also reads each level's SKU: a level's `sku` costs no statement, and no loader, of its own."""

    async def batch_load_fn(self, keys: Sequence[tuple[int, bool, int, int | None]]) -> list[Page[LevelView]]:
        default = (await self.settings.get()).default_low_stock_threshold
        shapes: dict[tuple[bool, int, int | None], list[int]] = defaultdict(list)
        for store_id, low_only, first, after_id in keys:
            shapes[(low_only, first, after_id)].append(store_id)
        pages: dict[tuple[int, bool, int, int | None], Page[LevelView]] = {}
        async with self.sessionmaker() as session:
            dialect = dialect_name(session)
            for (low_only, first, after_id), store_ids in shapes.items():
                stmt = level_pages(self.viewer, default, low_only=low_only, after=after_id is not None, dialect=dialect)
                params = {"store_ids": store_ids, "page_limit": first + 1, "after_id": after_id}
                per_store: dict[int, list[LevelView]] = defaultdict(list)
                for r in await session.execute(stmt, params):
                    sku = SkuRow(*r[LEVEL_PAGE_SKU]) if r.visible else None
                    per_store[r.store_id].append(
                        LevelView(
                            r.id, r.store_id, r.sku_id, r.on_hand, r.reserved, r.updated_at, r.threshold, sku, True
                        )
                    )
                for store_id in store_ids:
                    views = per_store.get(store_id, [])
                    shown = views[:first]
                    pages[(store_id, low_only, first, after_id)] = Page(
                        rows=shown, has_next=len(views) > first, cursors=[encode_cursor(v.id) for v in shown]
                    )
        return [pages[k] for k in keys]


class StockMovementByIdLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[StockMovement | None]:
        stmt = restrict(
            select(StockMovement).where(StockMovement.id.in_(keys)),
            self.viewer,
            StockMovement.store_id,
            Perm.STOCK_READ,
        )
        return by_key(keys, await self._rows(stmt), lambda m: m.id)


class TransferByIdLoader(ScopedLoader):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[Transfer | None]:
        if not self.viewer.can(Perm.STOCK_READ):
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


class PurchaseReceiptLinesLoader(ScopedLoader):
    """The lines of purchase receipts at the warehouses the viewer reads stock of (as purchaseReceipts lists them), in
    SKU order."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[list[PurchaseReceiptLine]]:
        stmt = (
            select(PurchaseReceiptLine)
            .join(PurchaseReceipt, PurchaseReceipt.id == PurchaseReceiptLine.receipt_id)
            .where(PurchaseReceiptLine.receipt_id.in_(keys))
            .order_by(PurchaseReceiptLine.receipt_id, PurchaseReceiptLine.sku_id)
        )
        rows = await self._rows(restrict(stmt, self.viewer, PurchaseReceipt.warehouse_id, Perm.STOCK_READ))
        return grouped(keys, rows, lambda line: line.receipt_id)

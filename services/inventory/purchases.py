"""Purchase receipts (进货): goods bought from a supplier arrive at a warehouse.

Receiving one moves each line's quantity into the warehouse's stock (RECEIPT movements, ref "purchase") and sets
each SKU's moving average cost (skus.cost_price, fen), in the same transaction and once per idempotency key:

    new_cost = round((on_hand_before * old_cost + qty * unit_cost) / (on_hand_before + qty))

where on_hand_before is the SKU's on hand summed over every location (stores and warehouses, reserved units
included; units shipped but not yet received are on no one's hand) just before the receipt, old_cost is
skus.cost_price just before, and the rounding is to the nearest fen, halves up. The SKU rows are locked first, so
two receipts of one SKU apply one after the other. Each receipt line keeps on_hand_before, cost_before and cost_after.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import PurchaseReceipt, PurchaseReceiptLine, Sku, StockLevel, Store, StoreKind
from services.access.permissions import Perm
from services.access.scope import Viewer, acted_in, idempotency_scope, require, require_store, restrict
from services.access.visible import require_visible
from services.inventory import stock
from services.platform import idempotency
from services.platform.errors import DomainError, ErrorCode
from services.platform.pagination import Page, keyset_page
from services.platform.validation import business_day, optional_text, text

MAX_LINES = 200
MAX_UNIT_COST = 100_000_000  # 1,000,000 yuan a unit


@dataclass(frozen=True)
class PurchaseLine:
    sku_id: int
    quantity: int
    unit_cost: int


@dataclass(frozen=True)
class Purchase:
    warehouse_id: int
    supplier_name: str
    supplier_code: str | None
    lines: list[PurchaseLine]
    note: str | None


def moving_average(on_hand_before: int, old_cost: int, quantity: int, unit_cost: int) -> int:
    """The module docstring's formula, in integers: the nearest fen, halves up."""
    numerator = max(on_hand_before, 0) * old_cost + quantity * unit_cost
    denominator = max(on_hand_before, 0) + quantity
    return (2 * numerator + denominator) // (2 * denominator)


def _check(purchase: Purchase) -> None:
    if not purchase.lines or len(purchase.lines) > MAX_LINES:
        raise DomainError(ErrorCode.INVALID_INPUT, f"A receipt has 1 to {MAX_LINES} lines.", "lines")
    if len({line.sku_id for line in purchase.lines}) != len(purchase.lines):
        raise DomainError(ErrorCode.INVALID_INPUT, "Each SKU once per receipt.", "lines")
    for i, line in enumerate(purchase.lines):
        if not 0 < line.quantity <= 1_000_000:
            raise DomainError(ErrorCode.INVALID_INPUT, "Quantities must be positive.", f"lines[{i}].quantity")
        if not 0 <= line.unit_cost <= MAX_UNIT_COST:
            raise DomainError(ErrorCode.INVALID_INPUT, "The unit cost is not valid.", f"lines[{i}].unitCost")


async def _receive(session: AsyncSession, viewer: Viewer, purchase: Purchase) -> PurchaseReceipt:
    warehouse = await session.get(Store, purchase.warehouse_id)
    if warehouse is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such warehouse.", "warehouseId")
    if warehouse.kind is not StoreKind.WAREHOUSE:
        raise DomainError(ErrorCode.NOT_A_WAREHOUSE, "Purchases are received at a warehouse.", "warehouseId")
    _check(purchase)
    sku_ids = sorted(line.sku_id for line in purchase.lines)
    await require_visible(session, viewer, Sku, sku_ids, lambda i: f"lines[{i}].skuId")
    skus = {
        s.id: s
        for s in (
            await session.scalars(select(Sku).where(Sku.id.in_(sku_ids)).order_by(Sku.id).with_for_update())
        ).all()
    }
    on_hand = dict(
        (
            await session.execute(
                select(StockLevel.sku_id, func.sum(StockLevel.on_hand))
                .where(StockLevel.sku_id.in_(sku_ids))
                .group_by(StockLevel.sku_id)
            )
        ).all()
    )
    receipt = PurchaseReceipt(
        warehouse_id=warehouse.id,
        supplier_name=text(purchase.supplier_name, "supplierName", max_len=128),
        supplier_code=optional_text(purchase.supplier_code, "supplierCode", max_len=32),
        note=optional_text(purchase.note, "note", max_len=255),
        received_by=viewer.staff_id,
    )
    session.add(receipt)
    await session.flush()
    for line in purchase.lines:
        sku, before = skus[line.sku_id], int(on_hand.get(line.sku_id) or 0)
        after = moving_average(before, sku.cost_price, line.quantity, line.unit_cost)
        session.add(
            PurchaseReceiptLine(
                receipt_id=receipt.id,
                sku_id=sku.id,
                quantity=line.quantity,
                unit_cost=line.unit_cost,
                on_hand_before=before,
                cost_before=sku.cost_price,
                cost_after=after,
            )
        )
        sku.cost_price = after
    ref = stock.Ref("purchase", receipt.id, viewer.staff_id, purchase.note)
    await stock.receive(session, warehouse.id, [stock.Line(x.sku_id, x.quantity) for x in purchase.lines], ref)
    await session.flush()
    return receipt


async def receive_once(session: AsyncSession, viewer: Viewer, purchase: Purchase, *, key: str) -> PurchaseReceipt:
    """Receive a purchase at a warehouse once per key: a replay returns the first receipt and changes nothing."""
    acted_in(purchase.warehouse_id)
    require_store(viewer, purchase.warehouse_id, Perm.PURCHASE_RECEIVE)
    fingerprint = {
        "warehouse": purchase.warehouse_id,
        "supplier": [purchase.supplier_name, purchase.supplier_code],
        "lines": sorted((x.sku_id, x.quantity, x.unit_cost) for x in purchase.lines),
        "note": purchase.note,
    }

    async def load(stored: dict[str, Any]) -> PurchaseReceipt:
        receipt = await session.get(PurchaseReceipt, int(stored["receipt_id"]))
        assert receipt is not None
        return receipt

    return await idempotency.once(
        session,
        scope=idempotency_scope(viewer, "receivePurchase"),
        key=key,
        request=fingerprint,
        run=lambda: _receive(session, viewer, purchase),
        save=lambda r: {"receipt_id": r.id},
        load=load,
    )


async def receipt_lines(session: AsyncSession, receipt_id: int) -> list[PurchaseReceiptLine]:
    """The lines of a receipt the caller just received (or replayed), in SKU order."""
    return list(
        (
            await session.scalars(
                select(PurchaseReceiptLine)
                .where(PurchaseReceiptLine.receipt_id == receipt_id)
                .order_by(PurchaseReceiptLine.sku_id)
            )
        ).all()
    )


def _day_start(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC)


async def list_receipts(
    session: AsyncSession,
    viewer: Viewer,
    *,
    warehouse_id: int,
    since: date | None,
    until: date | None,
    first: int | None,
    after: str | None,
) -> Page[PurchaseReceipt]:
    """A warehouse's purchase receipts (进货单), newest first, received from `since` to `until` (the warehouse's local
    days, both included): HQ and the warehouse's own staff (stock.read); other staff see none, as for a warehouse
    that does not exist."""
    require(viewer, Perm.STOCK_READ)
    stmt = restrict(
        select(PurchaseReceipt).where(PurchaseReceipt.warehouse_id == warehouse_id),
        viewer,
        PurchaseReceipt.warehouse_id,
        Perm.STOCK_READ,
    )
    if since is not None or until is not None:
        if since is not None and until is not None and until < business_day(since, "from"):
            raise DomainError(ErrorCode.INVALID_INPUT, "The range ends before it starts.", "to")
        warehouse = await session.get(Store, warehouse_id)
        tz = ZoneInfo(warehouse.timezone if warehouse else "Asia/Shanghai")
        if since is not None:
            stmt = stmt.where(PurchaseReceipt.created_at >= _day_start(business_day(since, "from"), tz))
        if until is not None:
            end = business_day(until, "to") + timedelta(days=1)
            stmt = stmt.where(PurchaseReceipt.created_at < _day_start(end, tz))
    return await keyset_page(session, stmt, PurchaseReceipt.id, first=first, after=after, descending=True)

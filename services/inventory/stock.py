"""Stock: the one place where a stock level changes.

Every change is one conditional UPDATE checked by its row count plus one ledger row, inside the
caller's transaction, so stock never goes negative, is never promised twice, and on hand always
equals the sum of its movements. Rows are touched in (store, sku) order so that two transactions
never wait on each other's rows crosswise. The same statements are correct on SQLite and PostgreSQL.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, insert, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from models import AdjustmentReason, MovementKind, Sku, StockLevel, StockMovement, utcnow
from services.access.permissions import Perm
from services.access.scope import Viewer, require, require_store
from services.org.settings import ChainSettings, get_settings, update_settings
from services.platform import public_reads
from services.platform.db import insert_new
from services.platform.errors import AccessDenied, DomainError, ErrorCode
from services.platform.events import emit


@dataclass(frozen=True)
class Line:
    sku_id: int
    quantity: int


@dataclass(frozen=True)
class Ref:
    """What caused a movement: an order, a transfer, a stocktake, a receipt request."""

    type: str | None = None
    id: int | None = None
    staff_id: int | None = None
    note: str | None = None


class OutOfStock(DomainError):
    def __init__(self, sku_id: int, message: str = "Not enough stock.") -> None:
        super().__init__(ErrorCode.OUT_OF_STOCK, message, "lines")
        self.sku_id = sku_id


class Availability(enum.StrEnum):
    """What a member sees of a level: the band its available quantity is in."""

    IN_STOCK = "IN_STOCK"
    LOW = "LOW"
    SOLD_OUT = "SOLD_OUT"


def availability(available: int, threshold: int) -> Availability:
    if available <= 0:
        return Availability.SOLD_OUT
    return Availability.LOW if available <= threshold else Availability.IN_STOCK


def stock_topic(store_id: int) -> str:
    return f"stock.store.{store_id}"


ALL_STORES_TOPICS = "stock.store.*"


def store_feed(viewer: Viewer, store_id: int) -> str:
    """The topic of one store's stock changes, for its staff and HQ holding stock.read."""
    require_store(viewer, store_id, Perm.STOCK_READ)
    return stock_topic(store_id)


def chain_feed(viewer: Viewer) -> str:
    """The topics of every store's stock changes: HQ's."""
    require(viewer, Perm.STOCK_READ)
    if not viewer.is_hq:
        raise AccessDenied("Chain-wide stock is for HQ.")
    return ALL_STORES_TOPICS


def _merge(lines: Iterable[Line]) -> list[Line]:
    """One line per SKU, in SKU order; quantities must be positive."""
    totals: dict[int, int] = {}
    for line in lines:
        if line.quantity <= 0:
            raise DomainError(ErrorCode.INVALID_INPUT, "Quantities must be positive.", "lines")
        totals[line.sku_id] = totals.get(line.sku_id, 0) + line.quantity
    return [Line(sku, qty) for sku, qty in sorted(totals.items())]


async def ensure_levels(session: AsyncSession, store_id: int, sku_ids: Iterable[int]) -> None:
    """Create missing stock level rows (zero) without racing another transaction doing the same."""
    rows = [{"store_id": store_id, "sku_id": s, "on_hand": 0, "reserved": 0, "updated_at": utcnow()} for s in sku_ids]
    if not rows:
        return
    await session.execute(insert_new(session, StockLevel, rows, unique=["store_id", "sku_id"]))


async def _move(
    session: AsyncSession,
    store_id: int,
    changes: Sequence[tuple[int, int, int]],
    kind: MovementKind,
    ref: Ref,
    reason: AdjustmentReason | None = None,
) -> None:
    """Apply (sku, on_hand delta, reserved delta) changes; all or none, each guarded by its own WHERE."""
    for sku_id, d_on_hand, d_reserved in sorted(changes):
        level = StockLevel.__table__.c
        result: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
            update(StockLevel)
            .where(
                StockLevel.store_id == store_id,
                StockLevel.sku_id == sku_id,
                # The guard is the rule: nothing below zero, nothing promised beyond what is on hand.
                level.reserved + d_reserved >= 0,
                level.on_hand + d_on_hand >= level.reserved + d_reserved,
            )
            .values(on_hand=level.on_hand + d_on_hand, reserved=level.reserved + d_reserved, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            raise OutOfStock(sku_id)
    await session.execute(
        insert(StockMovement),
        [
            {
                "store_id": store_id,
                "sku_id": sku_id,
                "kind": kind,
                "quantity": d_on_hand,
                "reserved_delta": d_reserved,
                "reason": reason,
                "ref_type": ref.type,
                "ref_id": ref.id,
                "note": ref.note,
                "staff_id": ref.staff_id,
                "created_at": utcnow(),
            }
            for sku_id, d_on_hand, d_reserved in changes
        ],
    )
    moved: dict[int, tuple[int, int]] = {}
    for sku_id, d_on_hand, d_reserved in changes:
        on_hand_before, reserved_before = moved.get(sku_id, (0, 0))
        moved[sku_id] = (on_hand_before + d_on_hand, reserved_before + d_reserved)
    await announce(session, list(moved), kind.value, store_id=store_id, moved=moved)


# The kind of an event that changed what stockChanged shows without moving stock (a low-stock line).
THRESHOLD_CHANGED = "THRESHOLD"


async def announce(
    session: AsyncSession,
    sku_ids: list[int],
    kind: str,
    *,
    store_id: int | None,
    moved: dict[int, tuple[int, int]] | None = None,
) -> None:
    """Publish (after commit) the levels of `sku_ids` in one store, or in every store when `store_id` is None:
    every change to what stockChanged shows (on hand, reserved, the low-stock line) goes through here. `moved`:
    what each SKU's on hand and reserved just moved by, to tell whether its availability band moved with them."""
    where = StockLevel.sku_id.in_(sku_ids)
    await _emit_levels(session, where if store_id is None else where & (StockLevel.store_id == store_id), kind, moved)


async def announce_default_followers(session: AsyncSession) -> None:
    """The chain's default line moved: publish every level that has no line of its own nor its SKU's."""
    await _emit_levels(session, StockLevel.low_threshold.is_(None) & Sku.low_stock_default.is_(None), THRESHOLD_CHANGED)


async def _emit_levels(
    session: AsyncSession, where: ColumnElement[bool], kind: str, moved: dict[int, tuple[int, int]] | None = None
) -> None:
    bands_moved: dict[int, set[int]] = {}
    default = (await get_settings(session)).default_low_stock_threshold
    levels = (
        await session.execute(
            select(
                StockLevel.id,
                StockLevel.store_id,
                StockLevel.sku_id,
                StockLevel.on_hand,
                StockLevel.reserved,
                func.coalesce(StockLevel.low_threshold, Sku.low_stock_default, default).label("threshold"),
            )
            .join(Sku, Sku.id == StockLevel.sku_id)
            .where(where)
        )
    ).all()
    for row in levels:
        d_on_hand, d_reserved = (moved or {}).get(row.sku_id, (0, 0))
        before = availability(row.on_hand - d_on_hand - (row.reserved - d_reserved), row.threshold)
        if moved is None or before != availability(row.on_hand - row.reserved, row.threshold):
            bands_moved.setdefault(row.store_id, set()).add(row.sku_id)  # what a member's menu shows of it moved
        emit(
            session,
            stock_topic(row.store_id),
            {
                "levelId": row.id,
                "storeId": row.store_id,
                "skuId": row.sku_id,
                "onHand": row.on_hand,
                "reserved": row.reserved,
                "threshold": row.threshold,
                "kind": kind,
            },
        )
    public_reads.changed(session.info, [], stock=bands_moved)


async def receive(session: AsyncSession, store_id: int, lines: Iterable[Line], ref: Ref) -> None:
    """Goods arrived: on hand goes up."""
    merged = _merge(lines)
    await ensure_levels(session, store_id, [line.sku_id for line in merged])
    await _move(session, store_id, [(line.sku_id, line.quantity, 0) for line in merged], MovementKind.RECEIPT, ref)


async def reserve(session: AsyncSession, store_id: int, lines: Iterable[Line], ref: Ref) -> None:
    """Promise stock to an unpaid order: available goes down, on hand stays."""
    merged = _merge(lines)
    await _move(session, store_id, [(line.sku_id, 0, line.quantity) for line in merged], MovementKind.RESERVE, ref)


async def release(session: AsyncSession, store_id: int, lines: Iterable[Line], ref: Ref) -> None:
    """Give a promise back (order cancelled or expired)."""
    merged = _merge(lines)
    await _move(session, store_id, [(line.sku_id, 0, -line.quantity) for line in merged], MovementKind.RELEASE, ref)


async def commit(session: AsyncSession, store_id: int, lines: Iterable[Line], ref: Ref) -> None:
    """A reserved order is paid: the promised units leave the shelf."""
    merged = _merge(lines)
    changes = [(line.sku_id, -line.quantity, -line.quantity) for line in merged]
    await _move(session, store_id, changes, MovementKind.SALE, ref)


async def sell(session: AsyncSession, store_id: int, lines: Iterable[Line], ref: Ref) -> None:
    """A counter sale with no reservation: only what is available may go."""
    merged = _merge(lines)
    await _move(session, store_id, [(line.sku_id, -line.quantity, 0) for line in merged], MovementKind.SALE, ref)


async def return_to_stock(session: AsyncSession, store_id: int, lines: Iterable[Line], ref: Ref) -> None:
    merged = _merge(lines)
    await ensure_levels(session, store_id, [line.sku_id for line in merged])
    await _move(session, store_id, [(line.sku_id, line.quantity, 0) for line in merged], MovementKind.RETURN, ref)


async def transfer_out(session: AsyncSession, store_id: int, lines: Iterable[Line], ref: Ref) -> None:
    merged = _merge(lines)
    changes = [(line.sku_id, -line.quantity, 0) for line in merged]
    await _move(session, store_id, changes, MovementKind.TRANSFER_OUT, ref)


async def transfer_in(session: AsyncSession, store_id: int, lines: Iterable[Line], ref: Ref) -> None:
    merged = _merge(lines)
    await ensure_levels(session, store_id, [line.sku_id for line in merged])
    changes = [(line.sku_id, line.quantity, 0) for line in merged]
    await _move(session, store_id, changes, MovementKind.TRANSFER_IN, ref)


async def adjust(
    session: AsyncSession, store_id: int, deltas: dict[int, int], reason: AdjustmentReason, ref: Ref
) -> None:
    """Correct on hand by signed deltas (damage, loss, correction); never below what is reserved."""
    changes = [(sku, delta, 0) for sku, delta in sorted(deltas.items()) if delta != 0]
    if not changes:
        return
    await ensure_levels(session, store_id, [c[0] for c in changes])
    await _move(session, store_id, changes, MovementKind.ADJUSTMENT, ref, reason)


async def stocktake(session: AsyncSession, store_id: int, counted: dict[int, int], ref: Ref) -> dict[int, int]:
    """Set on hand to counted quantities; records and returns the differences (counted - expected)."""
    if any(q < 0 for q in counted.values()):
        raise DomainError(ErrorCode.INVALID_INPUT, "Counted quantities cannot be negative.", "counts")
    await ensure_levels(session, store_id, counted)
    seen = dict(
        (
            await session.execute(
                select(StockLevel.sku_id, StockLevel.on_hand).where(
                    StockLevel.store_id == store_id, StockLevel.sku_id.in_(list(counted))
                )
            )
        ).all()
    )
    # The adjustment is a delta from the on hand just read; _move's guard keeps it above reservations.
    differences = {sku: counted[sku] - seen[sku] for sku in sorted(counted)}
    changes = [(sku, diff, 0) for sku, diff in differences.items() if diff != 0]
    if changes:
        await _move(session, store_id, changes, MovementKind.ADJUSTMENT, ref, AdjustmentReason.STOCKTAKE)
    return differences


async def save_settings(session: AsyncSession, **changes: object) -> ChainSettings:
    """Save the chain's settings. A new default low-stock line moves the levels that follow it (they show another
    isLow), so they are announced to the tablets and HQ watching stockChanged."""
    before = (await get_settings(session)).default_low_stock_threshold
    saved = await update_settings(session, **changes)
    if saved.default_low_stock_threshold != before:
        await announce_default_followers(session)
    return saved

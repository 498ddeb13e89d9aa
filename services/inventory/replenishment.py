"""Replenishment (补货): a store asks a warehouse for stock, HQ approves (editing quantities) or rejects, the
warehouse ships, the store receives. A replenishment is a Transfer of purpose REPLENISHMENT: every step after the
request (decide, ship, receive with short and damaged lines, cancel) is services/inventory/transfers.py's, on the
same stock ledger, each stock-moving step once per idempotency key. This module adds the per store x SKU bounds,
the suggestion, and the request.

The suggestion for one SKU in one store, from its bounds (min_level, max_level; unset counts as 0) and the units it
sold in the last 14 days (SALE movements):

    week = ceil(sold_14d / 2)                 # a week of recent sales
    target = max(max_level, week)
    quantity = target - available             if available <= max(min_level, ceil(sold_14d * 3 / 14))
             = 0                              otherwise (not yet at the reorder point)

so a store refills to its maximum, or to a week of what it sells when that is more, once it is down to its minimum
or to three days of sales.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import MovementKind, Sku, StockLevel, StockMovement, Store, StoreKind, Transfer, TransferPurpose, utcnow
from services.access.permissions import Perm
from services.access.scope import Viewer, acted_in, idempotency_scope, require_store
from services.access.visible import require_visible
from services.inventory import stock, transfers
from services.platform import idempotency
from services.platform.errors import DomainError, ErrorCode

SALES_WINDOW_DAYS = 14
MAX_LEVEL = 1_000_000


@dataclass(frozen=True)
class Suggestion:
    sku_id: int
    available: int
    min_level: int | None
    max_level: int | None
    sold_last_14_days: int
    quantity: int


def suggest_quantity(available: int, min_level: int | None, max_level: int | None, sold_14d: int) -> int:
    """The module docstring's rule, for one SKU."""
    week = -(-sold_14d // 2)
    reorder_at = max(min_level or 0, -(-sold_14d * 3 // 14))
    if available > reorder_at:
        return 0
    return max(max(max_level or 0, week) - available, 0)


async def _sold(session: AsyncSession, store_id: int, sku_ids: Sequence[int]) -> dict[int, int]:
    since = utcnow() - timedelta(days=SALES_WINDOW_DAYS)
    rows = await session.execute(
        select(StockMovement.sku_id, func.sum(StockMovement.quantity))
        .where(
            StockMovement.store_id == store_id,
            StockMovement.sku_id.in_(list(sku_ids)),
            StockMovement.kind == MovementKind.SALE,
            StockMovement.created_at >= since,
        )
        .group_by(StockMovement.sku_id)
    )
    return {sku: -int(total or 0) for sku, total in rows.all()}


async def _suggest(session: AsyncSession, store_id: int, sku_ids: Sequence[int] | None) -> list[Suggestion]:
    """Suggestions for `sku_ids`, or for every SKU with bounds in the store when None; in SKU order."""
    stmt = select(StockLevel).where(StockLevel.store_id == store_id)
    if sku_ids is None:
        stmt = stmt.where((StockLevel.min_level.is_not(None)) | (StockLevel.max_level.is_not(None)))
    else:
        stmt = stmt.where(StockLevel.sku_id.in_(list(sku_ids)))
    levels = {level.sku_id: level for level in (await session.scalars(stmt)).all()}
    wanted = sorted(levels) if sku_ids is None else sorted(set(sku_ids))
    sold = await _sold(session, store_id, wanted) if wanted else {}
    out = []
    for sku_id in wanted:
        level = levels.get(sku_id)
        available = level.on_hand - level.reserved if level else 0
        low, high = (level.min_level, level.max_level) if level else (None, None)
        n = sold.get(sku_id, 0)
        out.append(Suggestion(sku_id, available, low, high, n, suggest_quantity(available, low, high, n)))
    return out


async def suggestions(
    session: AsyncSession, viewer: Viewer, *, store_id: int, sku_ids: list[int] | None = None
) -> list[Suggestion]:
    """What the store should ask for now: its bounded SKUs (or the ones named), with the numbers behind each."""
    require_store(viewer, store_id, Perm.STOCK_READ)
    if sku_ids is not None:
        await require_visible(session, viewer, Sku, sku_ids, lambda i: f"skuIds[{i}]")
    return await _suggest(session, store_id, sku_ids)


async def set_bounds(
    session: AsyncSession, viewer: Viewer, *, store_id: int, sku_id: int, min_level: int | None, max_level: int | None
) -> Suggestion:
    """A store's (or HQ's) min/max for one SKU in one store; returns the suggestion they now give."""
    acted_in(store_id)
    require_store(viewer, store_id, Perm.STOCK_ADJUST)
    await require_visible(session, viewer, Sku, [sku_id], "skuId")
    for value, field in ((min_level, "minLevel"), (max_level, "maxLevel")):
        if value is not None and not 0 <= value <= MAX_LEVEL:
            raise DomainError(ErrorCode.INVALID_INPUT, f"Levels are 0 to {MAX_LEVEL}.", field)
    if min_level is not None and max_level is not None and min_level > max_level:
        raise DomainError(ErrorCode.INVALID_INPUT, "The minimum cannot exceed the maximum.", "minLevel")
    store = await session.get(Store, store_id)
    if store is None or store.kind is not StoreKind.STORE:
        raise DomainError(ErrorCode.NOT_FOUND, "No such store.", "storeId")
    await stock.ensure_levels(session, store_id, [sku_id])
    level = await session.scalar(
        select(StockLevel).where(StockLevel.store_id == store_id, StockLevel.sku_id == sku_id).with_for_update()
    )
    assert level is not None
    level.min_level, level.max_level = min_level, max_level
    await session.flush()
    return (await _suggest(session, store_id, [sku_id]))[0]


@dataclass(frozen=True)
class Request:
    store_id: int
    warehouse_id: int
    # None: ask for every suggested line.
    lines: list[transfers.LineQuantity] | None
    wanted_date: date | None
    note: str | None


async def _request(session: AsyncSession, viewer: Viewer, req: Request) -> Transfer:
    if req.wanted_date is not None and req.wanted_date < utcnow().date() - timedelta(days=1):
        raise DomainError(ErrorCode.INVALID_INPUT, "The wanted date is in the past.", "wantedDate")
    named = None if req.lines is None else [line.sku_id for line in req.lines]
    if named is not None:
        await require_visible(session, viewer, Sku, named, lambda i: f"lines[{i}].skuId")
    suggested = {s.sku_id: s.quantity for s in await _suggest(session, req.store_id, named)}
    lines = req.lines
    if lines is None:
        lines = [transfers.LineQuantity(sku, qty) for sku, qty in suggested.items() if qty > 0]
        if not lines:
            raise DomainError(ErrorCode.INVALID_INPUT, "Nothing needs replenishing: name the lines.", "lines")
    transfer, rows = await transfers.request(
        session,
        viewer,
        from_store_id=req.warehouse_id,
        to_store_id=req.store_id,
        lines=lines,
        note=req.note,
        purpose=TransferPurpose.REPLENISHMENT,
        wanted_date=req.wanted_date,
    )
    for row in rows:
        row.suggested_quantity = suggested.get(row.sku_id, 0)
    await session.flush()
    return transfer


async def request_once(session: AsyncSession, viewer: Viewer, req: Request, *, key: str) -> Transfer:
    """A store's manager (or HQ) asks a warehouse for stock, once per key; each line keeps the suggested quantity."""
    acted_in(req.store_id)
    require_store(viewer, req.store_id, Perm.TRANSFER_REQUEST)
    fingerprint = {
        "store": req.store_id,
        "warehouse": req.warehouse_id,
        "lines": None if req.lines is None else sorted((x.sku_id, x.quantity) for x in req.lines),
        "wanted": req.wanted_date.isoformat() if req.wanted_date else None,
        "note": req.note,
    }

    async def load(stored: dict[str, object]) -> Transfer:
        transfer = await session.get(Transfer, int(str(stored["transfer_id"])))
        assert transfer is not None
        return transfer

    return await idempotency.once(
        session,
        scope=idempotency_scope(viewer, "requestReplenishment"),
        key=key,
        request=fingerprint,
        run=lambda: _request(session, viewer, req),
        save=lambda t: {"transfer_id": t.id},
        load=load,
    )

"""Transfers (调拨): requested -> approved | rejected -> shipped -> received, or cancelled before shipping.

Each step belongs to one role of one store: the short store (or HQ) asks, HQ decides, the sending
store ships (stock out), the receiving store receives (stock in, differences kept). A step is a
conditional status update, so a double click never ships twice.

A replenishment (purpose REPLENISHMENT, see services/inventory/replenishment.py) is a transfer from a warehouse to
a store and runs the same steps; HQ may edit its quantities when approving (any transfer's, in fact), and on
receipt its differences go back to the warehouse's ledger: short units return to the warehouse's stock (TRANSFER_IN),
damaged ones return and are written off there (ADJUSTMENT, reason DAMAGE).

Another store's staff see no transfer of other stores: its id behaves as one that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from sqlalchemy import or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    AdjustmentReason,
    Sku,
    Store,
    StoreKind,
    StoreStatus,
    Transfer,
    TransferLine,
    TransferPurpose,
    TransferStatus,
    utcnow,
)
from services.access.permissions import Perm
from services.access.scope import Viewer, acted_in, idempotency_scope, require, require_store
from services.access.visible import require_visible
from services.inventory import stock
from services.platform import idempotency
from services.platform.errors import AccessDenied, DomainError, ErrorCode
from services.platform.pagination import AnySelect, Page, keyset_page
from services.platform.validation import optional_text

MAX_LINES = 200


@dataclass(frozen=True)
class LineQuantity:
    sku_id: int
    quantity: int


async def request(
    session: AsyncSession,
    viewer: Viewer,
    *,
    from_store_id: int,
    to_store_id: int,
    lines: list[LineQuantity],
    note: str | None,
    purpose: TransferPurpose = TransferPurpose.TRANSFER,
    wanted_date: date | None = None,
) -> tuple[Transfer, list[TransferLine]]:
    """The receiving store's manager, or HQ, asks for stock from another store (or, replenishing, a warehouse)."""
    require_store(viewer, to_store_id, Perm.TRANSFER_REQUEST)
    if from_store_id == to_store_id:
        raise DomainError(ErrorCode.INVALID_INPUT, "A transfer goes between two different stores.", "fromStoreId")
    if not lines or len(lines) > MAX_LINES:
        raise DomainError(ErrorCode.INVALID_INPUT, f"A transfer has 1 to {MAX_LINES} lines.", "lines")
    stores = {
        s.id: s for s in (await session.scalars(select(Store).where(Store.id.in_([from_store_id, to_store_id])))).all()
    }
    for store_id, field in ((from_store_id, "fromStoreId"), (to_store_id, "toStoreId")):
        if store_id not in stores:
            raise DomainError(ErrorCode.NOT_FOUND, "No such store.", field)
        if stores[store_id].status is not StoreStatus.OPEN:
            raise DomainError(ErrorCode.STORE_NOT_OPEN, "Both stores must be open.", field)
    if purpose is TransferPurpose.REPLENISHMENT:
        if stores[from_store_id].kind is not StoreKind.WAREHOUSE:
            raise DomainError(ErrorCode.NOT_A_WAREHOUSE, "Replenishment comes from a warehouse.", "warehouseId")
        if stores[to_store_id].kind is not StoreKind.STORE:
            raise DomainError(ErrorCode.INVALID_INPUT, "Replenishment goes to a store.", "storeId")
    sku_ids = [line.sku_id for line in lines]
    if len(set(sku_ids)) != len(sku_ids):
        raise DomainError(ErrorCode.INVALID_INPUT, "Each SKU once per transfer.", "lines")
    await require_visible(session, viewer, Sku, sku_ids, lambda i: f"lines[{i}].skuId")
    for i, line in enumerate(lines):
        if not 0 < line.quantity <= 1_000_000:
            raise DomainError(ErrorCode.INVALID_INPUT, "Quantities must be positive.", f"lines[{i}].quantity")
    transfer = Transfer(
        from_store_id=from_store_id,
        to_store_id=to_store_id,
        status=TransferStatus.REQUESTED,
        purpose=purpose,
        wanted_date=wanted_date,
        note=optional_text(note, "note", max_len=255),
        requested_by=viewer.staff_id,
    )
    session.add(transfer)
    await session.flush()
    rows = [TransferLine(transfer_id=transfer.id, sku_id=line.sku_id, quantity=line.quantity) for line in lines]
    session.add_all(rows)
    await session.flush()
    return transfer, rows


async def _step(
    session: AsyncSession, transfer_id: int, allowed_from: set[TransferStatus], to: TransferStatus, **values: Any
) -> Transfer:
    """Move the transfer to `to` only if it is still in one of `allowed_from`; else a coded refusal."""
    result: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
        update(Transfer)
        .where(Transfer.id == transfer_id, Transfer.status.in_(allowed_from))
        .values(status=to, **values)
        .execution_options(synchronize_session=False)
    )
    transfer = await session.get(Transfer, transfer_id, populate_existing=True)
    if transfer is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such transfer.", "id")
    if result.rowcount != 1:
        raise DomainError(
            ErrorCode.INVALID_TRANSITION, f"A {transfer.status.value} transfer cannot become {to.value}.", "id"
        )
    return transfer


async def _load(session: AsyncSession, transfer_id: int, viewer: Viewer | None = None) -> Transfer:
    """The transfer; with a viewer, only one HQ or either end's staff may see (else it does not exist)."""
    transfer = await session.get(Transfer, transfer_id)
    hidden = (
        viewer is not None
        and transfer is not None
        and not viewer.is_hq
        and viewer.store_id not in (transfer.from_store_id, transfer.to_store_id)
    )
    if transfer is None or hidden:
        raise DomainError(ErrorCode.NOT_FOUND, "No such transfer.", "id")
    return transfer


async def _lines(session: AsyncSession, transfer_id: int) -> list[TransferLine]:
    return list(
        (
            await session.scalars(
                select(TransferLine).where(TransferLine.transfer_id == transfer_id).order_by(TransferLine.sku_id)
            )
        ).all()
    )


async def decide(
    session: AsyncSession,
    viewer: Viewer,
    *,
    transfer_id: int,
    approve: bool,
    quantities: dict[int, int] | None = None,
) -> Transfer:
    """HQ approves (optionally with its own quantity per SKU; the store's stays as requested) or rejects."""
    require(viewer, Perm.TRANSFER_APPROVE)
    await _load(session, transfer_id, viewer)
    if quantities and not approve:
        raise DomainError(ErrorCode.INVALID_INPUT, "Quantities go with an approval.", "lines")
    target = TransferStatus.APPROVED if approve else TransferStatus.REJECTED
    transfer = await _step(
        session, transfer_id, {TransferStatus.REQUESTED}, target, decided_by=viewer.staff_id, decided_at=utcnow()
    )
    if quantities:
        await _edit(session, transfer_id, quantities)
    return transfer


async def _edit(session: AsyncSession, transfer_id: int, quantities: dict[int, int]) -> None:
    lines = {line.sku_id: line for line in await _lines(session, transfer_id)}
    if set(quantities) - set(lines):
        raise DomainError(ErrorCode.INVALID_INPUT, "Edit only the SKUs the request has.", "lines")
    for sku_id, qty in quantities.items():
        if not 0 < qty <= 1_000_000:
            raise DomainError(ErrorCode.INVALID_INPUT, "Approved quantities must be positive.", "lines")
        line = lines[sku_id]
        if line.requested_quantity is None:
            line.requested_quantity = line.quantity
        line.quantity = qty
    await session.flush()


async def _count_lines(
    session: AsyncSession, transfer_id: int, quantities: dict[int, int] | None, *, stage: str
) -> list[stock.Line]:
    """Record the shipped or received quantity of each line (default: all of the step before) and return them."""
    moving = []
    for line in await _lines(session, transfer_id):
        ceiling = line.quantity if stage == "shipped" else (line.shipped_quantity or 0)
        qty = (quantities or {}).get(line.sku_id, ceiling)
        if not 0 <= qty <= ceiling:
            raise DomainError(ErrorCode.INVALID_INPUT, f"Quantities {stage} must be between 0 and {ceiling}.", "lines")
        setattr(line, f"{stage}_quantity", qty)
        if qty:
            moving.append(stock.Line(line.sku_id, qty))
    return moving


async def ship(
    session: AsyncSession,
    viewer: Viewer,
    *,
    transfer_id: int,
    quantities: dict[int, int] | None = None,
    damaged: dict[int, int] | None = None,
) -> Transfer:
    """The sending store ships (all, or fewer per line): its stock goes out now. (For a replenishment the sender is a
    warehouse: HQ with stock.adjust, or staff posted at that warehouse, ship it.)"""
    if damaged:
        raise DomainError(ErrorCode.INVALID_INPUT, "Damage is counted on receipt.", "damaged")
    transfer = await _load(session, transfer_id, viewer)
    require_store(viewer, transfer.from_store_id, Perm.STOCK_ADJUST)
    transfer = await _step(
        session,
        transfer_id,
        {TransferStatus.APPROVED},
        TransferStatus.SHIPPED,
        shipped_by=viewer.staff_id,
        shipped_at=utcnow(),
    )
    out = await _count_lines(session, transfer_id, quantities, stage="shipped")
    if out:
        ref = stock.Ref("transfer", transfer.id, viewer.staff_id)
        await stock.transfer_out(session, transfer.from_store_id, out, ref)
    await session.flush()
    return transfer


async def receive(
    session: AsyncSession,
    viewer: Viewer,
    *,
    transfer_id: int,
    quantities: dict[int, int] | None = None,
    damaged: dict[int, int] | None = None,
) -> Transfer:
    """The receiving store counts what arrived: its stock goes in, differences stay on the lines. A replenishment's
    differences go back to the warehouse: short units into its stock, damaged ones in and written off."""
    transfer = await _load(session, transfer_id, viewer)
    if damaged and transfer.purpose is not TransferPurpose.REPLENISHMENT:
        raise DomainError(ErrorCode.INVALID_INPUT, "Damage is recorded on replenishments.", "damaged")
    require_store(viewer, transfer.to_store_id, Perm.STOCK_ADJUST)
    transfer = await _step(
        session,
        transfer_id,
        {TransferStatus.SHIPPED},
        TransferStatus.RECEIVED,
        received_by=viewer.staff_id,
        received_at=utcnow(),
    )
    if damaged and quantities is None:  # counted damaged, the rest arrived
        shipped = {line.sku_id: line.shipped_quantity or 0 for line in await _lines(session, transfer_id)}
        quantities = {sku: max(qty - damaged.get(sku, 0), 0) for sku, qty in shipped.items()}
    arrived = await _count_lines(session, transfer_id, quantities, stage="received")
    if arrived:
        ref = stock.Ref("transfer", transfer.id, viewer.staff_id)
        await stock.transfer_in(session, transfer.to_store_id, arrived, ref)
    if transfer.purpose is TransferPurpose.REPLENISHMENT:
        await _back_to_warehouse(session, viewer, transfer, damaged or {})
    await session.flush()
    return transfer


async def _back_to_warehouse(
    session: AsyncSession, viewer: Viewer, transfer: Transfer, damaged: dict[int, int]
) -> None:
    """Short (shipped - received - damaged) returns to the warehouse's stock; damaged returns and is written off."""
    short: list[stock.Line] = []
    lines = await _lines(session, transfer.id)
    if set(damaged) - {line.sku_id for line in lines}:
        raise DomainError(ErrorCode.INVALID_INPUT, "Damage only on the SKUs shipped.", "damaged")
    for line in lines:
        bad = damaged.get(line.sku_id, 0)
        missing = (line.shipped_quantity or 0) - (line.received_quantity or 0) - bad
        if bad < 0 or missing < 0:
            raise DomainError(ErrorCode.INVALID_INPUT, "Received plus damaged cannot exceed shipped.", "damaged")
        line.damaged_quantity = bad
        if missing + bad:
            short.append(stock.Line(line.sku_id, missing + bad))
    if not short:
        return
    ref = stock.Ref("transfer", transfer.id, viewer.staff_id, "not received: back to the warehouse")
    await stock.transfer_in(session, transfer.from_store_id, short, ref)
    write_off = {sku: -qty for sku, qty in damaged.items() if qty}
    if write_off:
        note = stock.Ref("transfer", transfer.id, viewer.staff_id, "damaged in replenishment: written off")
        await stock.adjust(session, transfer.from_store_id, write_off, AdjustmentReason.DAMAGE, note)


async def cancel(session: AsyncSession, viewer: Viewer, *, transfer_id: int) -> Transfer:
    """Before shipping, the requesting store or HQ may cancel."""
    transfer = await _load(session, transfer_id, viewer)
    if not (viewer.is_hq and viewer.can(Perm.TRANSFER_APPROVE)):
        require_store(viewer, transfer.to_store_id, Perm.TRANSFER_REQUEST)
    return await _step(
        session, transfer_id, {TransferStatus.REQUESTED, TransferStatus.APPROVED}, TransferStatus.CANCELLED
    )


def visible_transfers(viewer: Viewer) -> AnySelect:
    stmt = select(Transfer)
    if viewer.is_hq and viewer.can(Perm.STOCK_READ):
        return stmt
    if not viewer.can(Perm.STOCK_READ) or viewer.store_id is None:
        raise AccessDenied()
    return stmt.where(or_(Transfer.from_store_id == viewer.store_id, Transfer.to_store_id == viewer.store_id))


@dataclass(frozen=True)
class TransferFilter:
    store_id: int | None = None
    status: TransferStatus | None = None
    purpose: TransferPurpose | None = None


async def list_transfers(
    session: AsyncSession, viewer: Viewer, flt: TransferFilter, *, first: int | None, after: str | None
) -> Page[Transfer]:
    stmt = visible_transfers(viewer)
    if flt.store_id is not None:
        require_store(viewer, flt.store_id, Perm.STOCK_READ)
        stmt = stmt.where(or_(Transfer.from_store_id == flt.store_id, Transfer.to_store_id == flt.store_id))
    if flt.status is not None:
        stmt = stmt.where(Transfer.status == flt.status)
    if flt.purpose is not None:
        stmt = stmt.where(Transfer.purpose == flt.purpose)
    return await keyset_page(session, stmt, Transfer.id, first=first, after=after, descending=True)


class _Step(Protocol):
    async def __call__(
        self,
        session: AsyncSession,
        viewer: Viewer,
        *,
        transfer_id: int,
        quantities: dict[int, int] | None = None,
        damaged: dict[int, int] | None = None,
    ) -> Transfer: ...


async def once(
    session: AsyncSession,
    viewer: Viewer,
    operation: str,
    key: str,
    transfer_id: int,
    quantities: dict[int, int] | None,
    step: _Step,
    damaged: dict[int, int] | None = None,
) -> Transfer:
    """Ship or receive once per idempotency key: a replay returns the transfer, moving no stock again."""
    request: dict[str, Any] = {
        "transfer": transfer_id,
        "quantities": None if quantities is None else sorted(quantities.items()),
    }
    if damaged:
        request["damaged"] = sorted(damaged.items())
    transfer = await idempotency.once(
        session,
        scope=idempotency_scope(viewer, operation),
        key=key,
        request=request,
        run=lambda: step(session, viewer, transfer_id=transfer_id, quantities=quantities, damaged=damaged),
        save=lambda t: {"transfer_id": t.id},
        load=lambda r: _load(session, int(r["transfer_id"])),
    )
    # A replay runs no step: it still acts in the store the step does (shipping: the sender; receiving: the receiver).
    acted_in(transfer.from_store_id if step is ship else transfer.to_store_id)
    return transfer


async def request_once(
    session: AsyncSession,
    viewer: Viewer,
    *,
    from_store_id: int,
    to_store_id: int,
    lines: list[LineQuantity],
    note: str | None,
    key: str,
) -> Transfer:
    """`request` once per idempotency key: a retried request creates one transfer."""
    acted_in(to_store_id)  # the requesting store, even when refused

    async def run() -> Transfer:
        transfer, _ = await request(
            session, viewer, from_store_id=from_store_id, to_store_id=to_store_id, lines=lines, note=note
        )
        return transfer

    fingerprint = {
        "from": from_store_id,
        "to": to_store_id,
        "note": note,
        "lines": sorted((x.sku_id, x.quantity) for x in lines),
    }
    return await idempotency.once(
        session,
        scope=idempotency_scope(viewer, "requestTransfer"),
        key=key,
        request=fingerprint,
        run=run,
        save=lambda t: {"transfer_id": t.id},
        load=lambda r: _load(session, int(r["transfer_id"])),
    )

"""Stock and transfers: the viewer and arguments in, service calls out. The values the inventory API's types are
made of are re-exported here (`X as X`) for schema/, which imports no service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

from models import AdjustmentReason, PurchaseReceipt, PurchaseReceiptLine, StockMovement, Transfer
from resolvers.context import Context
from resolvers.loaders.inventory import LevelView
from services.access.permissions import Perm
from services.access.scope import require_store
from services.inventory import levels as inventory
from services.inventory import purchases, replenishment, stock, transfers
from services.inventory.levels import MovementFilter as MovementFilter
from services.inventory.levels import Suggestion as Suggestion
from services.inventory.purchases import Purchase as Purchase
from services.inventory.purchases import PurchaseLine as PurchaseLine
from services.inventory.stock import Line as Line
from services.inventory.transfers import LineQuantity as LineQuantity
from services.inventory.transfers import TransferFilter as TransferFilter
from services.platform.pagination import Page, decode_cursor, page_size

# Under names of their own (the stock levels' Suggestion is the transfer one).
ReplenishmentRequest = replenishment.Request
ReplenishmentSuggestion = replenishment.Suggestion


async def store_levels(
    ctx: Context, store_id: int, *, low_only: bool, first: int | None, after: str | None
) -> Page[LevelView]:
    require_store(ctx.viewer, store_id, Perm.STOCK_READ)
    key = (store_id, low_only, page_size(first), decode_cursor(after) if after else None)
    page: Page[LevelView] = await ctx.loaders.stock_levels_by_store.load(key)
    return page


async def low_stock(ctx: Context, store_id: int | None, *, first: int | None, after: str | None) -> Page[LevelView]:
    async with ctx.read() as session:
        page = await inventory.low_stock(session, ctx.viewer, store_id=store_id, first=first, after=after)
    return Page(
        rows=[LevelView.of(r.StockLevel, r.threshold) for r in page.rows], has_next=page.has_next, cursors=page.cursors
    )


async def movements(
    ctx: Context, flt: inventory.MovementFilter, *, first: int | None, after: str | None
) -> Page[StockMovement]:
    async with ctx.read() as session:
        return await inventory.movements(session, ctx.viewer, flt, first=first, after=after)


async def transfer_list(
    ctx: Context, flt: transfers.TransferFilter, *, first: int | None, after: str | None
) -> Page[Transfer]:
    async with ctx.read() as session:
        return await transfers.list_transfers(session, ctx.viewer, flt, first=first, after=after)


async def suggestions(ctx: Context, store_id: int) -> list[inventory.Suggestion]:
    async with ctx.read() as session:
        return await inventory.transfer_suggestions(session, ctx.viewer, store_id=store_id)


async def stock_changes(ctx: Context, store_id: int) -> AsyncIterator[dict[str, Any]]:
    """Stock levels of one store as they change (its staff and HQ): each change's payload."""
    async for event in ctx.app.broker.subscribe(stock.store_feed(ctx.viewer, store_id)):
        yield event.payload


async def chain_stock_changes(ctx: Context) -> AsyncIterator[dict[str, Any]]:
    """Stock changes in every store (HQ)."""
    async for event in ctx.app.broker.subscribe(stock.chain_feed(ctx.viewer)):
        yield event.payload


async def levels_after(ctx: Context, store_id: int, sku_ids: list[int]) -> list[LevelView]:
    """Fresh levels after a change: read in the mutation's own transaction, so they include it."""
    rows = await inventory.levels_of(ctx.session, store_id, sku_ids)
    return [LevelView.of(r.StockLevel, r.threshold) for r in rows]


async def receive_stock(ctx: Context, store_id: int, lines: list[stock.Line], note: str | None, key: str) -> list[int]:
    """Record goods received, once per key; returns the touched SKU ids."""
    return await inventory.receive(ctx.session, ctx.viewer, store_id, lines, note, key)


async def adjust_stock(
    ctx: Context, store_id: int, deltas: dict[int, int], reason: AdjustmentReason, note: str | None, key: str
) -> list[int]:
    return await inventory.adjust(ctx.session, ctx.viewer, store_id, deltas, reason, note, key)


async def stocktake(ctx: Context, store_id: int, counted: dict[int, int], key: str) -> dict[int, int]:
    """Counted quantities in; differences out (the first result again on a retry)."""
    return await inventory.stocktake(ctx.session, ctx.viewer, store_id, counted, key)


async def set_threshold(ctx: Context, store_id: int, sku_id: int, threshold: int | None) -> int:
    level = await inventory.set_threshold(
        ctx.session, ctx.viewer, store_id=store_id, sku_id=sku_id, threshold=threshold
    )
    return level.id


async def request_transfer(
    ctx: Context, from_store_id: int, to_store_id: int, lines: list[transfers.LineQuantity], note: str | None, key: str
) -> Transfer:
    return await transfers.request_once(
        ctx.session, ctx.viewer, from_store_id=from_store_id, to_store_id=to_store_id, lines=lines, note=note, key=key
    )


async def decide_transfer(
    ctx: Context, transfer_id: int, approve: bool, quantities: dict[int, int] | None = None
) -> Transfer:
    return await transfers.decide(
        ctx.session, ctx.viewer, transfer_id=transfer_id, approve=approve, quantities=quantities
    )


async def ship_transfer(ctx: Context, transfer_id: int, quantities: dict[int, int] | None, key: str) -> Transfer:
    return await transfers.once(ctx.session, ctx.viewer, "shipTransfer", key, transfer_id, quantities, transfers.ship)


async def receive_transfer(
    ctx: Context, transfer_id: int, quantities: dict[int, int] | None, key: str, damaged: dict[int, int] | None = None
) -> Transfer:
    return await transfers.once(
        ctx.session, ctx.viewer, "receiveTransfer", key, transfer_id, quantities, transfers.receive, damaged
    )


async def replenishment_suggestions(
    ctx: Context, store_id: int, sku_ids: list[int] | None
) -> list[replenishment.Suggestion]:
    async with ctx.read() as session:
        return await replenishment.suggestions(session, ctx.viewer, store_id=store_id, sku_ids=sku_ids)


async def set_stock_bounds(
    ctx: Context, store_id: int, sku_id: int, min_level: int | None, max_level: int | None
) -> replenishment.Suggestion:
    return await replenishment.set_bounds(
        ctx.session, ctx.viewer, store_id=store_id, sku_id=sku_id, min_level=min_level, max_level=max_level
    )


async def request_replenishment(ctx: Context, request: replenishment.Request, key: str) -> Transfer:
    return await replenishment.request_once(ctx.session, ctx.viewer, request, key=key)


async def receive_purchase(
    ctx: Context, purchase: purchases.Purchase, key: str
) -> tuple[PurchaseReceipt, list[PurchaseReceiptLine]]:
    """The receipt and its lines (with each SKU's cost before and after)."""
    receipt = await purchases.receive_once(ctx.session, ctx.viewer, purchase, key=key)
    return receipt, await purchases.receipt_lines(ctx.session, receipt.id)


async def purchase_receipts(
    ctx: Context, warehouse_id: int, since: date | None, until: date | None, *, first: int | None, after: str | None
) -> Page[PurchaseReceipt]:
    async with ctx.read() as session:
        return await purchases.list_receipts(
            session, ctx.viewer, warehouse_id=warehouse_id, since=since, until=until, first=first, after=after
        )


async def receipt_lines(ctx: Context, receipt_id: int) -> list[PurchaseReceiptLine]:
    found: list[PurchaseReceiptLine] = await ctx.loaders.purchase_receipt_lines.load(receipt_id)
    return found


async def cancel_transfer(ctx: Context, transfer_id: int) -> Transfer:
    return await transfers.cancel(ctx.session, ctx.viewer, transfer_id=transfer_id)

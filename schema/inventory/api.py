"""Inventory root fields: stock levels, low stock, the movement ledger, stocktakes and transfers."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry

from models import AdjustmentReason, MovementKind, TransferPurpose, TransferStatus
from resolvers import Perm
from resolvers import inventory as inventory_resolvers
from resolvers.context import Context
from resolvers.inventory import (
    Line,
    LineQuantity,
    MovementFilter,
    Purchase,
    PurchaseLine,
    ReplenishmentRequest,
    TransferFilter,
)
from schema.core.common import Connection, decode_id, decode_optional_id
from schema.core.permissions import IsStaff, only, requires
from schema.core.transaction import MutationTransaction
from schema.inventory.types import (
    AdjustStockInput,
    DecideTransferInput,
    PurchaseReceipt,
    PurchaseReceiptPayload,
    ReceivePurchaseInput,
    ReceiveStockInput,
    ReplenishmentSuggestion,
    RequestReplenishmentInput,
    RequestTransferInput,
    SetLowStockThresholdInput,
    SetStockBoundsInput,
    StockBoundsPayload,
    StockDifference,
    StockLevel,
    StockLevelsPayload,
    StockLineInput,
    StockMovement,
    StocktakeInput,
    StocktakePayload,
    Transfer,
    TransferFilterInput,
    TransferIdInput,
    TransferPayload,
    TransferQuantitiesInput,
    TransferSuggestion,
)


def _lines(lines: list[StockLineInput], field: str = "lines") -> list[Line]:
    return [Line(decode_id(line.sku_id, "Sku", f"{field}[{i}].skuId"), line.quantity) for i, line in enumerate(lines)]


def _quantities(lines: list[StockLineInput] | None) -> dict[int, int] | None:
    return None if lines is None else {line.sku_id: line.quantity for line in _lines(lines)}


async def _levels(ctx: Context, store_id: int, sku_ids: list[int]) -> list[StockLevel]:
    return [StockLevel.from_view(v) for v in await inventory_resolvers.levels_after(ctx, store_id, sku_ids)]


@strawberry.type
class InventoryQuery:
    @strawberry.field(
        extensions=requires(Perm.STOCK_READ),
        description="Levels at or under their low-stock line; HQ may leave storeId out.",
    )
    async def low_stock(
        self,
        info: strawberry.Info[Context, None],
        store_id: strawberry.ID | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[StockLevel]:
        sid = decode_optional_id(store_id, "Store", "storeId")
        page = await inventory_resolvers.low_stock(info.context, sid, first=first, after=after)
        return Connection[StockLevel].of(page, StockLevel.from_view)

    @strawberry.field(extensions=requires(Perm.STOCK_READ), description="The ledger of one store, newest first.")
    async def stock_movements(
        self,
        info: strawberry.Info[Context, None],
        store_id: strawberry.ID,
        sku_id: strawberry.ID | None = None,
        kind: MovementKind | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[StockMovement]:
        flt = MovementFilter(
            store_id=decode_id(store_id, "Store", "storeId"),
            sku_id=decode_optional_id(sku_id, "Sku", "skuId"),
            kind=MovementKind(kind) if kind else None,
        )
        page = await inventory_resolvers.movements(info.context, flt, first=first, after=after)
        return Connection[StockMovement].of(page, StockMovement.from_model)

    @strawberry.field(extensions=requires(Perm.STOCK_READ), description="Transfers from or to the viewer's stores.")
    async def transfers(
        self,
        info: strawberry.Info[Context, None],
        filter: TransferFilterInput | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[Transfer]:
        f = filter or TransferFilterInput()
        flt = TransferFilter(
            store_id=decode_optional_id(f.store_id, "Store", "storeId"),
            status=TransferStatus(f.status) if f.status else None,
            purpose=TransferPurpose(f.purpose) if f.purpose else None,
        )
        page = await inventory_resolvers.transfer_list(info.context, flt, first=first, after=after)
        return Connection[Transfer].of(page, Transfer.from_model)

    @strawberry.field(
        extensions=requires(Perm.STOCK_READ),
        description="For SKUs low in a store: stores with surplus, same city first, then nearest.",
    )
    async def transfer_suggestions(
        self, info: strawberry.Info[Context, None], store_id: strawberry.ID
    ) -> list[TransferSuggestion]:
        rows = await inventory_resolvers.suggestions(info.context, decode_id(store_id, "Store", "storeId"))
        return [TransferSuggestion.of(s) for s in rows]

    @strawberry.field(
        extensions=requires(Perm.STOCK_READ),
        description="What a store should ask a warehouse for now: its SKUs with min/max (or those named), with the "
        "numbers behind each suggestion.",
    )
    async def replenishment_suggestions(
        self, info: strawberry.Info[Context, None], store_id: strawberry.ID, sku_ids: list[strawberry.ID] | None = None
    ) -> list[ReplenishmentSuggestion]:
        skus = None if sku_ids is None else [decode_id(s, "Sku", f"skuIds[{i}]") for i, s in enumerate(sku_ids)]
        rows = await inventory_resolvers.replenishment_suggestions(
            info.context, decode_id(store_id, "Store", "storeId"), skus
        )
        return [ReplenishmentSuggestion.of(s) for s in rows]

    @strawberry.field(
        extensions=requires(Perm.STOCK_READ),
        description="A warehouse's purchase receipts (进货单), newest first, with their lines and cost: HQ, and the "
        "warehouse's own staff. `from`/`to` are the warehouse's local days, both included.",
    )
    async def purchase_receipts(
        self,
        info: strawberry.Info[Context, None],
        warehouse_id: strawberry.ID,
        from_: Annotated[date | None, strawberry.argument(name="from")] = None,
        to: date | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[PurchaseReceipt]:
        page = await inventory_resolvers.purchase_receipts(
            info.context, decode_id(warehouse_id, "Store", "warehouseId"), from_, to, first=first, after=after
        )
        return Connection[PurchaseReceipt].of(page, PurchaseReceipt.of)


@strawberry.type
class InventoryMutation:
    @strawberry.mutation(extensions=[*requires(Perm.STOCK_ADJUST), MutationTransaction()])
    async def receive_stock(self, info: strawberry.Info[Context, None], input: ReceiveStockInput) -> StockLevelsPayload:
        store_id = decode_id(input.store_id, "Store", "storeId")
        skus = await inventory_resolvers.receive_stock(
            info.context, store_id, _lines(input.lines), input.note, input.idempotency_key
        )
        return StockLevelsPayload(levels=await _levels(info.context, store_id, skus))

    @strawberry.mutation(extensions=[*requires(Perm.STOCK_ADJUST), MutationTransaction()])
    async def adjust_stock(self, info: strawberry.Info[Context, None], input: AdjustStockInput) -> StockLevelsPayload:
        store_id = decode_id(input.store_id, "Store", "storeId")
        deltas: dict[int, int] = {}
        for i, line in enumerate(input.lines):
            sku = decode_id(line.sku_id, "Sku", f"lines[{i}].skuId")
            deltas[sku] = deltas.get(sku, 0) + line.delta
        skus = await inventory_resolvers.adjust_stock(
            info.context, store_id, deltas, AdjustmentReason(input.reason), input.note, input.idempotency_key
        )
        return StockLevelsPayload(levels=await _levels(info.context, store_id, skus))

    @strawberry.mutation(
        extensions=[*requires(Perm.STOCK_ADJUST), MutationTransaction()],
        description="Submit counted quantities; the differences are recorded as STOCKTAKE adjustments.",
    )
    async def submit_stocktake(self, info: strawberry.Info[Context, None], input: StocktakeInput) -> StocktakePayload:
        store_id = decode_id(input.store_id, "Store", "storeId")
        counted = {line.sku_id: line.quantity for line in _lines(input.counts, "counts")}
        differences = await inventory_resolvers.stocktake(info.context, store_id, counted, input.idempotency_key)
        levels = {lv.sku_id: lv for lv in await _levels(info.context, store_id, list(differences))}
        return StocktakePayload(
            differences=[StockDifference(quantity=d, level=levels.get(sku)) for sku, d in differences.items()]
        )

    @strawberry.mutation(extensions=[*requires(Perm.STOCK_ADJUST), MutationTransaction()])
    async def set_low_stock_threshold(
        self, info: strawberry.Info[Context, None], input: SetLowStockThresholdInput
    ) -> StockLevelsPayload:
        store_id = decode_id(input.store_id, "Store", "storeId")
        sku_id = decode_id(input.sku_id, "Sku", "skuId")
        await inventory_resolvers.set_threshold(info.context, store_id, sku_id, input.threshold)
        return StockLevelsPayload(levels=await _levels(info.context, store_id, [sku_id]))

    @strawberry.mutation(extensions=[*requires(Perm.TRANSFER_REQUEST), MutationTransaction()])
    async def request_transfer(
        self, info: strawberry.Info[Context, None], input: RequestTransferInput
    ) -> TransferPayload:
        transfer = await inventory_resolvers.request_transfer(
            info.context,
            decode_id(input.from_store_id, "Store", "fromStoreId"),
            decode_id(input.to_store_id, "Store", "toStoreId"),
            [LineQuantity(line.sku_id, line.quantity) for line in _lines(input.lines)],
            input.note,
            input.idempotency_key,
        )
        return TransferPayload(transfer=Transfer.from_model(transfer))

    @strawberry.mutation(extensions=[*requires(Perm.TRANSFER_APPROVE), MutationTransaction()])
    async def decide_transfer(
        self, info: strawberry.Info[Context, None], input: DecideTransferInput
    ) -> TransferPayload:
        transfer = await inventory_resolvers.decide_transfer(
            info.context, decode_id(input.id, "Transfer"), input.approve, _quantities(input.lines)
        )
        return TransferPayload(transfer=Transfer.from_model(transfer))

    @strawberry.mutation(extensions=[*requires(Perm.STOCK_ADJUST), MutationTransaction()])
    async def ship_transfer(
        self, info: strawberry.Info[Context, None], input: TransferQuantitiesInput
    ) -> TransferPayload:
        transfer = await inventory_resolvers.ship_transfer(
            info.context, decode_id(input.id, "Transfer"), _quantities(input.lines), input.idempotency_key
        )
        return TransferPayload(transfer=Transfer.from_model(transfer))

    @strawberry.mutation(extensions=[*requires(Perm.STOCK_ADJUST), MutationTransaction()])
    async def receive_transfer(
        self, info: strawberry.Info[Context, None], input: TransferQuantitiesInput
    ) -> TransferPayload:
        transfer = await inventory_resolvers.receive_transfer(
            info.context,
            decode_id(input.id, "Transfer"),
            _quantities(input.lines),
            input.idempotency_key,
            _quantities(input.damaged),
        )
        return TransferPayload(transfer=Transfer.from_model(transfer))

    @strawberry.mutation(extensions=[*only(IsStaff()), MutationTransaction()])
    async def cancel_transfer(self, info: strawberry.Info[Context, None], input: TransferIdInput) -> TransferPayload:
        transfer = await inventory_resolvers.cancel_transfer(info.context, decode_id(input.id, "Transfer"))
        return TransferPayload(transfer=Transfer.from_model(transfer))

    @strawberry.mutation(
        extensions=[*requires(Perm.STOCK_ADJUST), MutationTransaction()],
        description="A store's min/max for one SKU, which drive replenishment suggestions.",
    )
    async def set_stock_bounds(
        self, info: strawberry.Info[Context, None], input: SetStockBoundsInput
    ) -> StockBoundsPayload:
        suggestion = await inventory_resolvers.set_stock_bounds(
            info.context,
            decode_id(input.store_id, "Store", "storeId"),
            decode_id(input.sku_id, "Sku", "skuId"),
            input.min_level,
            input.max_level,
        )
        return StockBoundsPayload(suggestion=ReplenishmentSuggestion.of(suggestion))

    @strawberry.mutation(
        extensions=[*requires(Perm.TRANSFER_REQUEST), MutationTransaction()],
        description="A store asks a warehouse for stock (a transfer of purpose REPLENISHMENT); lines left out take "
        "the suggestion. HQ decides it with decideTransfer; it ships and is received as a transfer.",
    )
    async def request_replenishment(
        self, info: strawberry.Info[Context, None], input: RequestReplenishmentInput
    ) -> TransferPayload:
        lines = None if input.lines is None else [LineQuantity(x.sku_id, x.quantity) for x in _lines(input.lines)]
        request = ReplenishmentRequest(
            store_id=decode_id(input.store_id, "Store", "storeId"),
            warehouse_id=decode_id(input.warehouse_id, "Store", "warehouseId"),
            lines=lines,
            wanted_date=input.wanted_date,
            note=input.note,
        )
        transfer = await inventory_resolvers.request_replenishment(info.context, request, input.idempotency_key)
        return TransferPayload(transfer=Transfer.from_model(transfer))

    @strawberry.mutation(
        extensions=[*requires(Perm.PURCHASE_RECEIVE), MutationTransaction()],
        description="Goods from a supplier received at a warehouse: stock in, and each SKU's moving average cost.",
    )
    async def receive_purchase(
        self, info: strawberry.Info[Context, None], input: ReceivePurchaseInput
    ) -> PurchaseReceiptPayload:
        purchase = Purchase(
            warehouse_id=decode_id(input.warehouse_id, "Store", "warehouseId"),
            supplier_name=input.supplier_name,
            supplier_code=input.supplier_code,
            lines=[
                PurchaseLine(decode_id(x.sku_id, "Sku", f"lines[{i}].skuId"), x.quantity, x.unit_cost)
                for i, x in enumerate(input.lines)
            ],
            note=input.note,
        )
        receipt, lines = await inventory_resolvers.receive_purchase(info.context, purchase, input.idempotency_key)
        return PurchaseReceiptPayload(receipt=PurchaseReceipt.of(receipt, lines))

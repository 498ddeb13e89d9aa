"""Inventory types: stock levels, the movement ledger, transfers."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Self, cast

import strawberry
from strawberry import relay

from models import AdjustmentReason, MovementKind, SkuRow, TransferPurpose, TransferStatus
from models import PurchaseReceipt as PurchaseReceiptModel
from models import PurchaseReceiptLine as PurchaseReceiptLineModel
from models import StockMovement as StockMovementModel
from models import Transfer as TransferModel
from models import TransferLine as TransferLineModel
from resolvers import inventory as inventory_resolvers
from resolvers.context import Context
from resolvers.inventory import ReplenishmentSuggestion as ReplenishmentSuggestionView
from resolvers.inventory import Suggestion
from resolvers.loaders.inventory import LevelView
from schema.catalog.types import Sku
from schema.core.common import Long, UserError, global_id
from schema.core.node import Loaded
from schema.core.personal import not_personal
from schema.org.types import Staff, Store

# The Python enums as GraphQL enums (registered once, here); annotations name the Python enums themselves.
strawberry.enum(MovementKind, name="MovementKind")
strawberry.enum(AdjustmentReason, name="AdjustmentReason")
strawberry.enum(TransferStatus, name="TransferStatus")
strawberry.enum(TransferPurpose, name="TransferPurpose")


@strawberry.type
class StockLevel(Loaded, relay.Node):
    id: relay.NodeID[int]
    on_hand: int
    reserved: int
    low_threshold: int = strawberry.field(description="The effective line: this level's, the SKU's or the chain's")
    updated_at: datetime | None
    store_id: strawberry.Private[int]
    sku_id: strawberry.Private[int]
    # The SKU when the level's statement read it (a store's page of levels): `sku` needs no loader then.
    sku_row: strawberry.Private[SkuRow | None] = None
    sku_read: strawberry.Private[bool] = False

    @classmethod
    def from_view(cls, view: LevelView) -> Self:
        return cls(
            id=view.id,
            on_hand=view.on_hand,
            reserved=view.reserved,
            low_threshold=view.threshold,
            updated_at=view.updated_at,
            store_id=view.store_id,
            sku_id=view.sku_id,
            sku_row=view.sku,
            sku_read=view.sku_read,
        )

    @classmethod
    def from_event(cls, payload: dict[str, Any]) -> Self:
        return cls(
            id=payload["levelId"],
            on_hand=payload["onHand"],
            reserved=payload["reserved"],
            low_threshold=payload["threshold"],
            updated_at=None,
            store_id=payload["storeId"],
            sku_id=payload["skuId"],
        )

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        view = await ctx.loaders.stock_level_by_id.load(pk)
        return cls.from_view(view) if view else None

    @strawberry.field
    def available(self) -> int:
        return self.on_hand - self.reserved

    @strawberry.field
    def is_low(self) -> bool:
        return self.on_hand - self.reserved <= self.low_threshold

    @strawberry.field
    def sku(self, info: strawberry.Info[Context, None]) -> Sku | None:
        """Synchronous where the level's statement read the SKU (HQ's store list asks it of a hundred levels: no
        coroutine, no task each); otherwise the loader's coroutine, which graphql-core awaits as it would an async
        resolver's."""
        if self.sku_read:
            return Sku.from_model(self.sku_row) if self.sku_row is not None else None
        return cast("Sku | None", Sku.load(info.context, self.sku_id))

    @strawberry.field
    async def store(self, info: strawberry.Info[Context, None]) -> Store | None:
        return await Store.load(info.context, self.store_id)


@strawberry.type
class StockMovement(Loaded, relay.Node):
    id: relay.NodeID[int]
    kind: MovementKind
    quantity: int = strawberry.field(description="Change to on hand")
    reserved_delta: int
    reason: AdjustmentReason | None
    ref_type: str | None
    ref_id: int | None
    note: str | None
    created_at: datetime
    store_id: strawberry.Private[int]
    sku_id: strawberry.Private[int]
    staff_id: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, m: StockMovementModel) -> Self:
        return cls(
            id=m.id,
            kind=m.kind,
            quantity=m.quantity,
            reserved_delta=m.reserved_delta,
            reason=m.reason,
            ref_type=m.ref_type,
            ref_id=m.ref_id,
            note=m.note,
            created_at=m.created_at,
            store_id=m.store_id,
            sku_id=m.sku_id,
            staff_id=m.staff_id,
        )

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        m = await ctx.loaders.stock_movement_by_id.load(pk)
        return cls.from_model(m) if m else None

    @strawberry.field
    async def sku(self, info: strawberry.Info[Context, None]) -> Sku | None:
        return await Sku.load(info.context, self.sku_id)

    @strawberry.field
    async def staff(self, info: strawberry.Info[Context, None]) -> Staff | None:
        return await Staff.load(info.context, self.staff_id) if self.staff_id is not None else None


@strawberry.type
class TransferLine:
    quantity: int = strawberry.field(description="The quantity to ship (as approved)")
    suggested_quantity: int | None = strawberry.field(description="Replenishment: what the system suggested")
    requested_quantity: int | None = strawberry.field(
        description="What the store asked for (HQ may approve another quantity)"
    )
    shipped_quantity: int | None
    received_quantity: int | None
    damaged_quantity: int | None = strawberry.field(description="Replenishment: arrived damaged, written off")
    sku_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, m: TransferLineModel) -> Self:
        return cls(
            quantity=m.quantity,
            suggested_quantity=m.suggested_quantity,
            requested_quantity=m.requested_quantity if m.requested_quantity is not None else m.quantity,
            shipped_quantity=m.shipped_quantity,
            received_quantity=m.received_quantity,
            damaged_quantity=m.damaged_quantity,
            sku_id=m.sku_id,
        )

    @strawberry.field(description="Replenishment: shipped, neither received nor damaged (back to the warehouse).")
    def short_quantity(self) -> int | None:
        if self.damaged_quantity is None or self.shipped_quantity is None or self.received_quantity is None:
            return None
        return self.shipped_quantity - self.received_quantity - self.damaged_quantity

    @strawberry.field(description="Shipped minus received, once received.")
    def difference(self) -> int | None:
        if self.shipped_quantity is None or self.received_quantity is None:
            return None
        return self.shipped_quantity - self.received_quantity

    @strawberry.field
    async def sku(self, info: strawberry.Info[Context, None]) -> Sku | None:
        return await Sku.load(info.context, self.sku_id)


@strawberry.type
class Transfer(Loaded, relay.Node):
    id: relay.NodeID[int]
    status: TransferStatus
    purpose: TransferPurpose
    wanted_date: date | None
    note: str | None
    created_at: datetime
    decided_at: datetime | None
    shipped_at: datetime | None
    received_at: datetime | None
    from_store_id: strawberry.Private[int]
    to_store_id: strawberry.Private[int]
    requested_by: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, m: TransferModel) -> Self:
        return cls(
            id=m.id,
            status=m.status,
            purpose=m.purpose,
            wanted_date=m.wanted_date,
            note=m.note,
            created_at=m.created_at,
            decided_at=m.decided_at,
            shipped_at=m.shipped_at,
            received_at=m.received_at,
            from_store_id=m.from_store_id,
            to_store_id=m.to_store_id,
            requested_by=m.requested_by,
        )

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        m = await ctx.loaders.transfer_by_id.load(pk)
        return cls.from_model(m) if m else None

    @strawberry.field
    async def from_store(self, info: strawberry.Info[Context, None]) -> Store | None:
        return await Store.load(info.context, self.from_store_id)

    @strawberry.field
    async def to_store(self, info: strawberry.Info[Context, None]) -> Store | None:
        return await Store.load(info.context, self.to_store_id)

    @strawberry.field
    async def lines(self, info: strawberry.Info[Context, None]) -> list[TransferLine]:
        return [
            TransferLine.from_model(line)
            for line in await info.context.loaders.transfer_lines_by_transfer.load(self.id)
        ]


@strawberry.type
class TransferSuggestion:
    quantity: int
    available_there: int | None = strawberry.field(description="The giver's available count (HQ only)")
    short_by: int
    distance_km: float
    same_city: bool
    sku_id: strawberry.Private[int]
    from_store_model: strawberry.Private[Any]

    @classmethod
    def of(cls, s: Suggestion) -> Self:
        return cls(
            quantity=s.quantity,
            available_there=s.available_there,
            short_by=s.short_by,
            distance_km=round(s.distance_km, 3),
            same_city=s.same_city,
            sku_id=s.sku_id,
            from_store_model=s.from_store,
        )

    @strawberry.field
    def from_store(self) -> Store:
        return Store.from_model(self.from_store_model)

    @strawberry.field
    async def sku(self, info: strawberry.Info[Context, None]) -> Sku | None:
        return await Sku.load(info.context, self.sku_id)


@strawberry.input
class StockLineInput:
    sku_id: strawberry.ID
    quantity: int


@strawberry.input
class StockDeltaInput:
    sku_id: strawberry.ID
    delta: int = strawberry.field(description="Signed change to on hand")


@strawberry.input
class ReceiveStockInput:
    store_id: strawberry.ID
    lines: list[StockLineInput]
    note: str | None = not_personal(default=None)
    idempotency_key: str = strawberry.field(description="The same key again returns the first result; moves once")


@strawberry.input
class AdjustStockInput:
    store_id: strawberry.ID
    lines: list[StockDeltaInput]
    reason: AdjustmentReason = not_personal()
    idempotency_key: str = strawberry.field(description="The same key again returns the first result; moves once")
    note: str | None = not_personal(default=None)


@strawberry.input
class StocktakeInput:
    store_id: strawberry.ID
    counts: list[StockLineInput] = strawberry.field(description="Counted quantity per SKU")
    idempotency_key: str = strawberry.field(description="The same key again returns the first differences")


@strawberry.input
class SetLowStockThresholdInput:
    store_id: strawberry.ID
    sku_id: strawberry.ID
    threshold: int | None = strawberry.field(description="Null falls back to the SKU's or the chain's default")


@strawberry.input
class RequestTransferInput:
    from_store_id: strawberry.ID
    to_store_id: strawberry.ID
    lines: list[StockLineInput]
    idempotency_key: str = strawberry.field(description="The same key again returns the first transfer")
    note: str | None = not_personal(default=None)


@strawberry.input
class DecideTransferInput:
    id: strawberry.ID
    approve: bool
    lines: list[StockLineInput] | None = strawberry.field(
        default=None, description="Approved quantities per SKU, when HQ changes what was requested"
    )


@strawberry.input
class TransferQuantitiesInput:
    id: strawberry.ID
    idempotency_key: str = strawberry.field(description="The same key again returns the transfer; stock moves once")
    lines: list[StockLineInput] | None = strawberry.field(
        default=None, description="Per-SKU quantities when they differ from the document"
    )
    damaged: list[StockLineInput] | None = strawberry.field(
        default=None, description="Receiving a replenishment: units that arrived damaged (written off at the warehouse)"
    )


@strawberry.input
class TransferIdInput:
    id: strawberry.ID


@strawberry.input
class TransferFilterInput:
    store_id: strawberry.ID | None = None
    status: TransferStatus | None = None
    purpose: TransferPurpose | None = None


@strawberry.type
class StockLevelsPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    levels: list[StockLevel] = strawberry.field(default_factory=list)


@strawberry.type
class StockDifference:
    quantity: int = strawberry.field(description="Counted minus expected")
    level: StockLevel | None


@strawberry.type
class StocktakePayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    differences: list[StockDifference] = strawberry.field(default_factory=list)


@strawberry.type
class TransferPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    transfer: Transfer | None = None


@strawberry.type
class ReplenishmentSuggestion:
    available: int
    min_level: int | None
    max_level: int | None
    sold_last_14_days: int
    quantity: int = strawberry.field(description="Suggested: refill to max (or a week of sales) once at min")
    sku_id: strawberry.Private[int]

    @classmethod
    def of(cls, s: ReplenishmentSuggestionView) -> Self:
        return cls(
            available=s.available,
            min_level=s.min_level,
            max_level=s.max_level,
            sold_last_14_days=s.sold_last_14_days,
            quantity=s.quantity,
            sku_id=s.sku_id,
        )

    @strawberry.field
    async def sku(self, info: strawberry.Info[Context, None]) -> Sku | None:
        return await Sku.load(info.context, self.sku_id)


@strawberry.input
class SetStockBoundsInput:
    store_id: strawberry.ID
    sku_id: strawberry.ID
    min_level: int | None = strawberry.field(default=None, description="At or under this, replenish")
    max_level: int | None = strawberry.field(default=None, description="Replenish up to this")


@strawberry.type
class StockBoundsPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    suggestion: ReplenishmentSuggestion | None = None


@strawberry.input
class RequestReplenishmentInput:
    store_id: strawberry.ID
    warehouse_id: strawberry.ID
    idempotency_key: str = strawberry.field(description="The same key again returns the first request")
    lines: list[StockLineInput] | None = strawberry.field(
        default=None, description="Left out: every suggested line with its suggested quantity"
    )
    wanted_date: date | None = None
    note: str | None = not_personal(default=None)


@strawberry.input
class PurchaseLineInput:
    sku_id: strawberry.ID
    quantity: int
    unit_cost: int = strawberry.field(description="Fen per unit")


@strawberry.input
class ReceivePurchaseInput:
    warehouse_id: strawberry.ID
    supplier_name: str = not_personal()
    lines: list[PurchaseLineInput]
    idempotency_key: str = strawberry.field(description="The same key again returns the first receipt; moves once")
    supplier_code: str | None = not_personal(default=None)
    note: str | None = not_personal(default=None)


@strawberry.type
class PurchaseReceiptLine:
    quantity: int
    unit_cost: int
    on_hand_before: int = strawberry.field(description="The SKU's on hand in every location just before")
    cost_before: int
    cost_after: int = strawberry.field(description="The SKU's moving average cost after this receipt")
    sku_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, m: PurchaseReceiptLineModel) -> Self:
        return cls(
            quantity=m.quantity,
            unit_cost=m.unit_cost,
            on_hand_before=m.on_hand_before,
            cost_before=m.cost_before,
            cost_after=m.cost_after,
            sku_id=m.sku_id,
        )

    @strawberry.field
    async def sku(self, info: strawberry.Info[Context, None]) -> Sku | None:
        return await Sku.load(info.context, self.sku_id)


@strawberry.type(description="Goods bought from a supplier, received at a warehouse (进货单).")
class PurchaseReceipt:
    id: strawberry.ID
    supplier_name: str
    supplier_code: str | None
    note: str | None
    created_at: datetime
    warehouse_id: strawberry.Private[int]
    pk: strawberry.Private[int]
    given_lines: strawberry.Private[list[PurchaseReceiptLineModel] | None] = None

    @classmethod
    def of(cls, m: PurchaseReceiptModel, lines: list[PurchaseReceiptLineModel] | None = None) -> Self:
        return cls(
            id=strawberry.ID(str(global_id("PurchaseReceipt", m.id))),
            supplier_name=m.supplier_name,
            supplier_code=m.supplier_code,
            note=m.note,
            created_at=m.created_at,
            warehouse_id=m.warehouse_id,
            pk=m.id,
            given_lines=lines,
        )

    async def _lines(self, ctx: Context) -> list[PurchaseReceiptLineModel]:
        if self.given_lines is not None:
            return self.given_lines
        return await inventory_resolvers.receipt_lines(ctx, self.pk)

    @strawberry.field(description="In SKU order")
    async def lines(self, info: strawberry.Info[Context, None]) -> list[PurchaseReceiptLine]:
        return [PurchaseReceiptLine.from_model(line) for line in await self._lines(info.context)]

    @strawberry.field(description="What the receipt cost: the sum of quantity x unit cost, fen")
    async def total_cost(self, info: strawberry.Info[Context, None]) -> Long:
        return Long(sum(line.quantity * line.unit_cost for line in await self._lines(info.context)))

    @strawberry.field
    async def warehouse(self, info: strawberry.Info[Context, None]) -> Store | None:
        return await Store.load(info.context, self.warehouse_id)


@strawberry.type
class PurchaseReceiptPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    receipt: PurchaseReceipt | None = None

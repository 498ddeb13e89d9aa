"""Inventory: stock levels per store x SKU, the append-only movement ledger, transfers between stores."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Enum, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, BigId, Timestamp, intpk


class MovementKind(enum.StrEnum):
    RECEIPT = "RECEIPT"
    SALE = "SALE"
    RETURN = "RETURN"
    ADJUSTMENT = "ADJUSTMENT"
    TRANSFER_OUT = "TRANSFER_OUT"
    TRANSFER_IN = "TRANSFER_IN"
    RESERVE = "RESERVE"
    RELEASE = "RELEASE"


class AdjustmentReason(enum.StrEnum):
    STOCKTAKE = "STOCKTAKE"
    DAMAGE = "DAMAGE"
    EXPIRED = "EXPIRED"
    LOST = "LOST"
    CORRECTION = "CORRECTION"


class TransferStatus(enum.StrEnum):
    REQUESTED = "REQUESTED"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    SHIPPED = "SHIPPED"
    RECEIVED = "RECEIVED"
    CANCELLED = "CANCELLED"


class TransferPurpose(enum.StrEnum):
    """TRANSFER: between stores. REPLENISHMENT: from a warehouse to a store, with a suggestion and differences."""

    TRANSFER = "TRANSFER"
    REPLENISHMENT = "REPLENISHMENT"


class StockLevel(Base):
    """Kept equal to the sum of its movements in the same transaction; the CHECKs are the last line of defence."""

    __tablename__ = "stock_levels"
    __table_args__ = (
        UniqueConstraint("store_id", "sku_id"),
        Index("ix_stock_levels_sku_id", "sku_id"),
        Index("ix_stock_levels_store_id_id", "store_id", "id"),  # a store's levels, page by page
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("on_hand >= reserved", name="available_not_negative"),
        CheckConstraint("min_level IS NULL OR max_level IS NULL OR min_level <= max_level", name="bounds_ordered"),
    )

    id: Mapped[intpk]
    store_id: Mapped[int] = mapped_column(BigId, ForeignKey("stores.id"))
    sku_id: Mapped[int] = mapped_column(BigId, ForeignKey("skus.id"))
    on_hand: Mapped[int] = mapped_column(default=0)
    reserved: Mapped[int] = mapped_column(default=0)
    # Null: the SKU's default, else the chain's.
    low_threshold: Mapped[int | None]
    # Replenishment bounds: at or under min, a store asks for enough to reach max (services/inventory/replenishment).
    min_level: Mapped[int | None]
    max_level: Mapped[int | None]
    updated_at: Mapped[Timestamp]


class StockMovement(Base):
    """One change to a stock level. on_hand = sum(quantity); reserved = sum(reserved_delta)."""

    __tablename__ = "stock_movements"
    __table_args__ = (
        Index("ix_stock_movements_store_id_id", "store_id", "id"),
        Index("ix_stock_movements_store_sku", "store_id", "sku_id"),
        Index("ix_stock_movements_ref", "ref_type", "ref_id"),
    )

    id: Mapped[intpk]
    store_id: Mapped[int] = mapped_column(BigId, ForeignKey("stores.id"))
    sku_id: Mapped[int] = mapped_column(BigId, ForeignKey("skus.id"))
    kind: Mapped[MovementKind] = mapped_column(Enum(MovementKind, native_enum=False, length=16, validate_strings=True))
    quantity: Mapped[int] = mapped_column(default=0)
    reserved_delta: Mapped[int] = mapped_column(default=0)
    reason: Mapped[AdjustmentReason | None] = mapped_column(
        Enum(AdjustmentReason, native_enum=False, length=16, validate_strings=True)
    )
    ref_type: Mapped[str | None] = mapped_column(String(32))
    ref_id: Mapped[int | None] = mapped_column(BigId)
    note: Mapped[str | None] = mapped_column(String(255))
    staff_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[Timestamp]


class Transfer(Base):
    __tablename__ = "transfers"
    __table_args__ = (
        Index("ix_transfers_from_store_id", "from_store_id"),
        Index("ix_transfers_to_store_id", "to_store_id"),
        CheckConstraint("from_store_id <> to_store_id", name="different_stores"),
    )

    id: Mapped[intpk]
    from_store_id: Mapped[int] = mapped_column(BigId, ForeignKey("stores.id"))
    to_store_id: Mapped[int] = mapped_column(BigId, ForeignKey("stores.id"))
    status: Mapped[TransferStatus] = mapped_column(
        Enum(TransferStatus, native_enum=False, length=16, validate_strings=True), default=TransferStatus.REQUESTED
    )
    purpose: Mapped[TransferPurpose] = mapped_column(
        Enum(TransferPurpose, native_enum=False, length=16, validate_strings=True),
        default=TransferPurpose.TRANSFER,
        server_default=TransferPurpose.TRANSFER.value,
    )
    wanted_date: Mapped[date | None]
    note: Mapped[str | None] = mapped_column(String(255))
    requested_by: Mapped[int | None] = mapped_column(BigId)
    decided_by: Mapped[int | None] = mapped_column(BigId)
    shipped_by: Mapped[int | None] = mapped_column(BigId)
    received_by: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[Timestamp]
    decided_at: Mapped[datetime | None]
    shipped_at: Mapped[datetime | None]
    received_at: Mapped[datetime | None]

    lines: Mapped[list[TransferLine]] = relationship(back_populates="transfer", lazy="raise")


class TransferLine(Base):
    __tablename__ = "transfer_lines"
    __table_args__ = (
        UniqueConstraint("transfer_id", "sku_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[intpk]
    transfer_id: Mapped[int] = mapped_column(BigId, ForeignKey("transfers.id"))
    sku_id: Mapped[int] = mapped_column(BigId, ForeignKey("skus.id"))
    quantity: Mapped[int]
    # Replenishment: what the system suggested, and what the store asked for before HQ edited `quantity`.
    suggested_quantity: Mapped[int | None]
    requested_quantity: Mapped[int | None]
    shipped_quantity: Mapped[int | None]
    received_quantity: Mapped[int | None]
    # Replenishment: arrived damaged (written off at the warehouse); short = shipped - received - damaged.
    damaged_quantity: Mapped[int | None]

    transfer: Mapped[Transfer] = relationship(back_populates="lines", lazy="raise")


class PurchaseReceipt(Base):
    """Goods bought from a supplier, received at a warehouse (进货): stock in, moving average cost updated."""

    __tablename__ = "purchase_receipts"
    __table_args__ = (Index("ix_purchase_receipts_warehouse_id_id", "warehouse_id", "id"),)

    id: Mapped[intpk]
    warehouse_id: Mapped[int] = mapped_column(BigId, ForeignKey("stores.id"))
    supplier_name: Mapped[str] = mapped_column(String(128))
    supplier_code: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(String(255))
    received_by: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[Timestamp]

    lines: Mapped[list[PurchaseReceiptLine]] = relationship(back_populates="receipt", lazy="raise")


class PurchaseReceiptLine(Base):
    __tablename__ = "purchase_receipt_lines"
    __table_args__ = (
        UniqueConstraint("receipt_id", "sku_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_cost >= 0", name="unit_cost_not_negative"),
    )

    id: Mapped[intpk]
    receipt_id: Mapped[int] = mapped_column(BigId, ForeignKey("purchase_receipts.id"))
    sku_id: Mapped[int] = mapped_column(BigId, ForeignKey("skus.id"))
    quantity: Mapped[int]
    unit_cost: Mapped[int] = mapped_column(BigInteger())
    # The SKU's chain-wide on hand and moving average cost just before, and the cost after, this line.
    on_hand_before: Mapped[int]
    cost_before: Mapped[int] = mapped_column(BigInteger())
    cost_after: Mapped[int] = mapped_column(BigInteger())

    receipt: Mapped[PurchaseReceipt] = relationship(back_populates="lines", lazy="raise")

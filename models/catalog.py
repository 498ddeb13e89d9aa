"""Catalog: category tree, products (SPU) and their SKUs, store listings."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, CheckConstraint, Enum, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, BigId, Timestamp, intpk, str64, str128


class CatalogStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"


Money = BigInteger  # integer fen, never a float


class Category(Base):
    __tablename__ = "categories"
    __table_args__ = (Index("ix_categories_parent_id", "parent_id"),)

    id: Mapped[intpk]
    parent_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("categories.id"))
    name: Mapped[str64]
    sort: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[Timestamp]

    parent: Mapped[Category | None] = relationship(remote_side="Category.id", lazy="raise")


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (
        Index("ix_products_category_id", "category_id"),
        Index("ix_products_owner_store_id", "owner_store_id"),
    )

    id: Mapped[intpk]
    name: Mapped[str128]
    description: Mapped[str | None] = mapped_column(String(1000))
    category_id: Mapped[int] = mapped_column(BigId, ForeignKey("categories.id"))
    # Set for a store's own product (when HQ allows them): visible only in that store.
    owner_store_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("stores.id"))
    images: Mapped[list[str]] = mapped_column(JSON(), default=list)
    status: Mapped[CatalogStatus] = mapped_column(
        Enum(CatalogStatus, native_enum=False, length=16, validate_strings=True), default=CatalogStatus.ACTIVE
    )
    created_at: Mapped[Timestamp]
    updated_at: Mapped[datetime | None]

    category: Mapped[Category] = relationship(lazy="raise")
    skus: Mapped[list[Sku]] = relationship(back_populates="product", lazy="raise")


class Sku(Base):
    __tablename__ = "skus"
    __table_args__ = (
        UniqueConstraint("barcode"),
        Index("ix_skus_product_id", "product_id"),
        CheckConstraint("base_price >= 0", name="base_price_not_negative"),
        CheckConstraint("cost_price >= 0", name="cost_price_not_negative"),
    )

    id: Mapped[intpk]
    product_id: Mapped[int] = mapped_column(BigId, ForeignKey("products.id"))
    barcode: Mapped[str64]
    # Spec values, e.g. {"size": "L", "temperature": "hot"}.
    spec: Mapped[dict[str, Any]] = mapped_column(JSON(), default=dict)
    base_price: Mapped[int] = mapped_column(Money())
    cost_price: Mapped[int] = mapped_column(Money(), default=0)
    # A per-SKU band for store prices; when unset the chain's percentage band applies.
    min_price: Mapped[int | None] = mapped_column(Money())
    max_price: Mapped[int | None] = mapped_column(Money())
    low_stock_default: Mapped[int | None]
    status: Mapped[CatalogStatus] = mapped_column(
        Enum(CatalogStatus, native_enum=False, length=16, validate_strings=True), default=CatalogStatus.ACTIVE
    )
    created_at: Mapped[Timestamp]

    product: Mapped[Product] = relationship(back_populates="skus", lazy="raise")


@dataclass(frozen=True, slots=True)
class SkuRow:
    """A SKU's columns as plain values, its spec as the JSON text stored (decoded only when asked): what a list that
    shows SKUs reads of each (building ORM entities, and decoding a JSON nobody asked for, cost more than the list's
    SQL)."""

    id: int
    product_id: int
    barcode: str
    base_price: int
    cost_price: int
    min_price: int | None
    max_price: int | None
    low_stock_default: int | None
    status: CatalogStatus
    spec_json: str | None  # the last column read: `spec` as text

    FIELDS = (
        "id",
        "product_id",
        "barcode",
        "base_price",
        "cost_price",
        "min_price",
        "max_price",
        "low_stock_default",
        "status",
    )

    @property
    def spec(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.spec_json) if self.spec_json else {}
        return found


@dataclass(frozen=True, slots=True)
class CategoryRow:
    """A category's columns as plain values (a menu's categories, read with their item counts)."""

    id: int
    name: str
    sort: int
    parent_id: int | None


@dataclass(frozen=True, slots=True)
class ProductRow:
    """A product's columns as plain values (a menu page reads one with each item)."""

    id: int
    name: str
    description: str | None
    images: list[str]
    status: CatalogStatus
    category_id: int
    owner_store_id: int | None

    FIELDS = ("id", "name", "description", "images", "status", "category_id", "owner_store_id")


class StoreListing(Base):
    """A library SKU adopted by a store: its price there and whether it is on the shelf."""

    __tablename__ = "store_listings"
    __table_args__ = (
        UniqueConstraint("store_id", "sku_id"),
        Index("ix_store_listings_sku_id", "sku_id"),
        Index("ix_store_listings_store_id_id", "store_id", "id"),  # a store's menu and listings, page by page
        CheckConstraint("price >= 0", name="price_not_negative"),
    )

    id: Mapped[intpk]
    store_id: Mapped[int] = mapped_column(BigId, ForeignKey("stores.id"))
    sku_id: Mapped[int] = mapped_column(BigId, ForeignKey("skus.id"))
    price: Mapped[int] = mapped_column(Money())
    on_shelf: Mapped[bool] = mapped_column(Boolean(), default=True)
    created_at: Mapped[Timestamp]
    updated_at: Mapped[datetime | None]

    sku: Mapped[Sku] = relationship(lazy="raise")

"""Org: stores, roles, staff, and the chain-wide settings HQ controls."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Enum,
    Float,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, BigId, Timestamp, intpk, str32, str64, str128, str255


class StoreStatus(enum.StrEnum):
    PREPARING = "PREPARING"
    OPEN = "OPEN"
    CLOSED = "CLOSED"


class StoreKind(enum.StrEnum):
    """A STORE sells; a WAREHOUSE holds stock, ships replenishment and receives purchases, and sells nothing."""

    STORE = "STORE"
    WAREHOUSE = "WAREHOUSE"


class RoleScope(enum.StrEnum):
    HQ = "HQ"
    STORE = "STORE"


class Store(Base):
    __tablename__ = "stores"
    __table_args__ = (Index("ix_stores_lat_lng", "lat", "lng"), Index("ix_stores_city_status", "city", "status"))

    id: Mapped[intpk]
    code: Mapped[str32] = mapped_column(unique=True)
    name: Mapped[str128]
    city: Mapped[str64]
    address: Mapped[str255]
    phone: Mapped[str | None] = mapped_column(String(32))
    lat: Mapped[float] = mapped_column(Float())
    lng: Mapped[float] = mapped_column(Float())
    timezone: Mapped[str64] = mapped_column(default="Asia/Shanghai")
    # [{"weekday": 0..6 (Monday=0), "opens": "08:00", "closes": "22:00"}]
    hours: Mapped[list[dict[str, Any]]] = mapped_column(JSON(), default=list)
    status: Mapped[StoreStatus] = mapped_column(
        Enum(StoreStatus, native_enum=False, length=16, validate_strings=True), default=StoreStatus.PREPARING
    )
    kind: Mapped[StoreKind] = mapped_column(
        Enum(StoreKind, native_enum=False, length=16, validate_strings=True),
        default=StoreKind.STORE,
        server_default=StoreKind.STORE.value,
    )
    created_at: Mapped[Timestamp]
    updated_at: Mapped[Timestamp]

    staff: Mapped[list[Staff]] = relationship(back_populates="store", lazy="raise")


class Role(Base):
    __tablename__ = "roles"

    id: Mapped[intpk]
    code: Mapped[str64] = mapped_column(unique=True)
    name: Mapped[str128]
    scope: Mapped[RoleScope] = mapped_column(Enum(RoleScope, native_enum=False, length=8, validate_strings=True))
    builtin: Mapped[bool] = mapped_column(Boolean(), default=False)
    permissions: Mapped[list[str]] = mapped_column(JSON(), default=list)
    created_at: Mapped[Timestamp]

    staff: Mapped[list[Staff]] = relationship(back_populates="role", lazy="raise")


class Staff(Base):
    __tablename__ = "staff"
    __table_args__ = (UniqueConstraint("username"), Index("ix_staff_store_id", "store_id"))

    id: Mapped[intpk]
    username: Mapped[str64]
    display_name: Mapped[str128]
    password_hash: Mapped[str255]
    role_id: Mapped[int] = mapped_column(BigId, ForeignKey("roles.id"))
    store_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("stores.id"))
    active: Mapped[bool] = mapped_column(Boolean(), default=True)
    created_at: Mapped[Timestamp]
    disabled_at: Mapped[datetime | None]

    role: Mapped[Role] = relationship(back_populates="staff", lazy="raise")
    store: Mapped[Store | None] = relationship(back_populates="staff", lazy="raise")


class Setting(Base):
    """Chain-wide switches, one row per key."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON())
    updated_at: Mapped[Timestamp]

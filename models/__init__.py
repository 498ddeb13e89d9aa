"""SQLAlchemy models, one module per area; importing this package registers every table."""

from models.audit import AuditLog, AuditOutcome
from models.auth import AuthSession, RefreshToken
from models.base import Base, utcnow
from models.catalog import CatalogStatus, Category, Product, Setting, Sku, StoreListing
from models.inventory import (
    AdjustmentReason,
    IdempotencyKey,
    MovementKind,
    StockLevel,
    StockMovement,
    Transfer,
    TransferLine,
    TransferStatus,
)
from models.member import Member, MemberIdentity
from models.org import Role, RoleScope, Staff, Store, StoreStatus

__all__ = [
    "AdjustmentReason",
    "AuditLog",
    "AuditOutcome",
    "AuthSession",
    "Base",
    "CatalogStatus",
    "Category",
    "IdempotencyKey",
    "Member",
    "MemberIdentity",
    "MovementKind",
    "Product",
    "RefreshToken",
    "Role",
    "RoleScope",
    "Setting",
    "Sku",
    "Staff",
    "StockLevel",
    "StockMovement",
    "Store",
    "StoreListing",
    "StoreStatus",
    "Transfer",
    "TransferLine",
    "TransferStatus",
    "utcnow",
]

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
from models.loyalty import (
    BalanceEntry,
    BalanceKind,
    BalanceLot,
    Job,
    JobStatus,
    LevelPrice,
    MemberLevel,
    PointsEntry,
    PointsKind,
    TopUpPlan,
)
from models.member import Gender, Member, MemberIdentity, MemberStore, MemberTag, MemberTagLink
from models.org import Role, RoleScope, Staff, Store, StoreStatus

__all__ = [
    "AdjustmentReason",
    "AuditLog",
    "AuditOutcome",
    "AuthSession",
    "BalanceEntry",
    "BalanceKind",
    "BalanceLot",
    "Base",
    "CatalogStatus",
    "Category",
    "Gender",
    "IdempotencyKey",
    "Job",
    "JobStatus",
    "LevelPrice",
    "Member",
    "MemberIdentity",
    "MemberLevel",
    "MemberStore",
    "MemberTag",
    "MemberTagLink",
    "MovementKind",
    "PointsEntry",
    "PointsKind",
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
    "TopUpPlan",
    "Transfer",
    "TransferLine",
    "TransferStatus",
    "utcnow",
]

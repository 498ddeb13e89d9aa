"""SQLAlchemy models, one module per area; importing this package registers every table."""

from models.audit import AuditLog, AuditOutcome
from models.auth import AuthSession, RefreshToken
from models.base import Base, utcnow
from models.member import Member, MemberIdentity
from models.org import Role, RoleScope, Staff, Store, StoreStatus

__all__ = [
    "AuditLog",
    "AuditOutcome",
    "AuthSession",
    "Base",
    "Member",
    "MemberIdentity",
    "RefreshToken",
    "Role",
    "RoleScope",
    "Staff",
    "Store",
    "StoreStatus",
    "utcnow",
]

"""The permission catalogue and the built-in roles."""

from __future__ import annotations

from dataclasses import dataclass

from models import RoleScope

# Every permission the product knows, with what it lets a role do.
PERMISSIONS: dict[str, str] = {
    "store.manage": "Create, edit, open and close stores",
    "staff.read": "See staff accounts (own store for store roles)",
    "staff.manage": "Create, edit and disable staff (store managers: their own store's clerks)",
    "role.manage": "Create and edit custom roles",
    "settings.manage": "Change chain-wide settings",
    "audit.view": "Read the audit log (own store for store roles)",
    "catalog.manage": "Edit the product library",
    "catalog.view_cost": "See cost prices",
    "listing.manage": "Adopt products into a store and set store prices within policy",
    "stock.read": "See stock levels and movements",
    "stock.adjust": "Record receipts, adjustments and stocktakes",
    "transfer.request": "Request stock transfers between stores",
    "transfer.approve": "Approve or reject transfers",
    "order.read": "See orders",
    "order.checkout": "Sell at the POS",
    "order.pickup": "Prepare and verify pickup orders",
    "order.refund": "Refund orders",
    "member.lookup": "Find a member by member code or exact phone number",
    "member.read": "Browse and search members",
    "member.read_pii": "See members' unmasked personal data (each reveal is audited)",
    "member.manage": "Change member levels, tags and rules",
    "marketing.manage": "Run coupons and promotions (store roles: their own store's, of the kinds HQ allows)",
    "report.view": "See reports (own store for store roles)",
    "settlement.view": "See daily settlements",
}


@dataclass(frozen=True)
class BuiltinRole:
    code: str
    name: str
    scope: RoleScope
    permissions: frozenset[str]


_HQ_OPERATOR = {
    "staff.read", "catalog.manage", "catalog.view_cost", "listing.manage", "stock.read", "order.read",
    "member.lookup", "member.read", "member.manage", "marketing.manage", "report.view",
}  # fmt: skip
_HQ_ANALYST = {
    "staff.read", "catalog.view_cost", "stock.read", "order.read", "member.read", "report.view", "settlement.view",
}  # fmt: skip
_STORE_MANAGER = {
    "staff.read", "staff.manage", "audit.view", "listing.manage", "stock.read", "stock.adjust",
    "transfer.request", "order.read", "order.checkout", "order.pickup", "order.refund", "member.lookup",
    "member.read", "member.read_pii", "marketing.manage", "report.view", "settlement.view",
}  # fmt: skip
_CLERK = {"stock.read", "order.read", "order.checkout", "order.pickup", "member.lookup"}

BUILTIN_ROLES: tuple[BuiltinRole, ...] = (
    BuiltinRole("HQ_ADMIN", "HQ admin", RoleScope.HQ, frozenset(PERMISSIONS)),
    BuiltinRole("HQ_OPERATOR", "HQ operator", RoleScope.HQ, frozenset(_HQ_OPERATOR)),
    BuiltinRole("HQ_ANALYST", "HQ analyst", RoleScope.HQ, frozenset(_HQ_ANALYST)),
    BuiltinRole("STORE_MANAGER", "Store manager", RoleScope.STORE, frozenset(_STORE_MANAGER)),
    BuiltinRole("CLERK", "Clerk", RoleScope.STORE, frozenset(_CLERK)),
)

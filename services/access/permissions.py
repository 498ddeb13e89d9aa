"""The permission catalogue and the built-in roles."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from models import RoleScope


class Perm(StrEnum):
    """Every permission the product knows. The values are stored in role rows, so they never change."""

    STORE_MANAGE = "store.manage"
    STAFF_READ = "staff.read"
    STAFF_MANAGE = "staff.manage"
    ROLE_MANAGE = "role.manage"
    SETTINGS_MANAGE = "settings.manage"
    AUDIT_VIEW = "audit.view"
    CATALOG_MANAGE = "catalog.manage"
    CATALOG_VIEW_COST = "catalog.view_cost"
    LISTING_MANAGE = "listing.manage"
    STOCK_READ = "stock.read"
    STOCK_ADJUST = "stock.adjust"
    TRANSFER_REQUEST = "transfer.request"
    TRANSFER_APPROVE = "transfer.approve"
    PURCHASE_RECEIVE = "purchase.receive"
    ORDER_READ = "order.read"
    ORDER_CHECKOUT = "order.checkout"
    ORDER_PICKUP = "order.pickup"
    ORDER_REFUND = "order.refund"
    MEMBER_LOOKUP = "member.lookup"
    MEMBER_READ = "member.read"
    MEMBER_READ_PII = "member.read_pii"
    MEMBER_MANAGE = "member.manage"
    MEMBER_ATTRIBUTES_EDIT = "member.attributes.edit"
    MARKETING_MANAGE = "marketing.manage"
    REPORT_VIEW = "report.view"
    SETTLEMENT_VIEW = "settlement.view"
    MESSAGE_MANAGE = "message.manage"
    CARE_FOLLOW_UP = "care.follow_up"
    CARE_MANAGE = "care.manage"
    CARE_TICKET = "care.ticket"
    BRAND_MANAGE = "brand.manage"
    PAGE_EDIT = "page.edit"
    CARD_MANAGE = "card.manage"


# What each permission lets a role do.
PERMISSIONS: dict[Perm, str] = {
    Perm.STORE_MANAGE: "Create, edit, open and close stores",
    Perm.STAFF_READ: "See staff accounts (own store for store roles)",
    Perm.STAFF_MANAGE: "Create, edit and disable staff (store managers: their own store's clerks)",
    Perm.ROLE_MANAGE: "Create and edit custom roles",
    Perm.SETTINGS_MANAGE: "Change chain-wide settings",
    Perm.AUDIT_VIEW: "Read the audit log (own store for store roles)",
    Perm.CATALOG_MANAGE: "Edit the product library",
    Perm.CATALOG_VIEW_COST: "See cost prices",
    Perm.LISTING_MANAGE: "Adopt products into a store and set store prices within policy",
    Perm.STOCK_READ: "See stock levels and movements",
    Perm.STOCK_ADJUST: "Record receipts, adjustments and stocktakes",
    Perm.TRANSFER_REQUEST: "Request stock transfers between stores",
    Perm.TRANSFER_APPROVE: "Approve or reject transfers and replenishment requests (editing quantities)",
    Perm.PURCHASE_RECEIVE: "Receive purchases from suppliers at a warehouse (moves stock in, sets moving average cost)",
    Perm.ORDER_READ: "See orders",
    Perm.ORDER_CHECKOUT: "Sell at the POS",
    Perm.ORDER_PICKUP: "Prepare and verify pickup orders",
    Perm.ORDER_REFUND: "Refund orders",
    Perm.MEMBER_LOOKUP: "Find a member by member code or exact phone number",
    Perm.MEMBER_READ: "Browse and search members",
    Perm.MEMBER_READ_PII: "See members' unmasked personal data (each reveal is audited)",
    Perm.MEMBER_MANAGE: "Change member levels, tags and rules",
    Perm.MEMBER_ATTRIBUTES_EDIT: "Fill in the attributes HQ declares for members in scope (sensitive ones stay masked)",
    Perm.MARKETING_MANAGE: "Run coupons and promotions (store roles: their own store's, of the kinds HQ allows)",
    Perm.REPORT_VIEW: "See reports (own store for store roles)",
    Perm.SETTLEMENT_VIEW: "See daily settlements",
    Perm.MESSAGE_MANAGE: "Write message templates, send messages to members who agreed, read the message log (HQ)",
    Perm.CARE_FOLLOW_UP: "Work follow-up calls (回访): see the store's tasks, reveal the member's phone for the call "
    "(audited), record the outcome",
    Perm.CARE_MANAGE: "Create follow-up tasks and event rules (store roles: their own store's); see completion "
    "by store",
    Perm.CARE_TICKET: "Handle complaints: reply, start, escalate and resolve (a refund also needs order.refund)",
    Perm.BRAND_MANAGE: "Design the mini-program's page templates (draft, publish, roll back) and approve stores' pages",
    Perm.PAGE_EDIT: "Fill the store's page in the slots HQ's template opens (photos, notice, featured items)",
    Perm.CARD_MANAGE: "Define card products (次卡, 月卡/季卡, 礼品卡): price, validity, stores, limits",
}


@dataclass(frozen=True)
class BuiltinRole:
    code: str
    name: str
    scope: RoleScope
    permissions: frozenset[Perm]


_HQ_OPERATOR = {
    Perm.CARE_MANAGE,
    Perm.CARE_TICKET,
    Perm.STAFF_READ,
    Perm.CATALOG_MANAGE,
    Perm.CATALOG_VIEW_COST,
    Perm.LISTING_MANAGE,
    Perm.STOCK_READ,
    Perm.ORDER_READ,
    Perm.MEMBER_LOOKUP,
    Perm.MEMBER_READ,
    Perm.MEMBER_MANAGE,
    Perm.MEMBER_ATTRIBUTES_EDIT,
    Perm.MARKETING_MANAGE,
    Perm.REPORT_VIEW,
    Perm.MESSAGE_MANAGE,
    Perm.BRAND_MANAGE,
    Perm.CARD_MANAGE,
}
_HQ_ANALYST = {
    Perm.STAFF_READ,
    Perm.CATALOG_VIEW_COST,
    Perm.STOCK_READ,
    Perm.ORDER_READ,
    Perm.MEMBER_READ,
    Perm.REPORT_VIEW,
    Perm.SETTLEMENT_VIEW,
}
_STORE_MANAGER = {
    Perm.CARE_FOLLOW_UP,
    Perm.CARE_MANAGE,
    Perm.CARE_TICKET,
    Perm.STAFF_READ,
    Perm.STAFF_MANAGE,
    Perm.AUDIT_VIEW,
    Perm.LISTING_MANAGE,
    Perm.STOCK_READ,
    Perm.STOCK_ADJUST,
    Perm.TRANSFER_REQUEST,
    Perm.ORDER_READ,
    Perm.ORDER_CHECKOUT,
    Perm.ORDER_PICKUP,
    Perm.ORDER_REFUND,
    Perm.MEMBER_LOOKUP,
    Perm.MEMBER_READ,
    Perm.MEMBER_READ_PII,
    Perm.MEMBER_ATTRIBUTES_EDIT,
    Perm.MARKETING_MANAGE,
    Perm.REPORT_VIEW,
    Perm.SETTLEMENT_VIEW,
    Perm.PAGE_EDIT,
}
_CLERK = {
    Perm.STOCK_READ,
    Perm.ORDER_READ,
    Perm.ORDER_CHECKOUT,
    Perm.ORDER_PICKUP,
    Perm.MEMBER_LOOKUP,
    Perm.CARE_FOLLOW_UP,
    Perm.CARE_TICKET,
}
# Posted at a warehouse: receives purchases, ships the replenishment HQ approved, counts stock; sells nothing.
_WAREHOUSE_KEEPER = {Perm.STOCK_READ, Perm.STOCK_ADJUST, Perm.PURCHASE_RECEIVE}

BUILTIN_ROLES: tuple[BuiltinRole, ...] = (
    BuiltinRole("HQ_ADMIN", "HQ admin", RoleScope.HQ, frozenset(Perm)),
    BuiltinRole("HQ_OPERATOR", "HQ operator", RoleScope.HQ, frozenset(_HQ_OPERATOR)),
    BuiltinRole("HQ_ANALYST", "HQ analyst", RoleScope.HQ, frozenset(_HQ_ANALYST)),
    BuiltinRole("STORE_MANAGER", "Store manager", RoleScope.STORE, frozenset(_STORE_MANAGER)),
    BuiltinRole("CLERK", "Clerk", RoleScope.STORE, frozenset(_CLERK)),
    BuiltinRole("WAREHOUSE_KEEPER", "Warehouse keeper", RoleScope.STORE, frozenset(_WAREHOUSE_KEEPER)),
)

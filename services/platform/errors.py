"""Domain errors: a rule said no (errors-as-data) or the viewer may not do this (GraphQL error)."""

from __future__ import annotations

import enum
from typing import Any


class ErrorCode(enum.StrEnum):
    INVALID_INPUT = "INVALID_INPUT"
    INVALID_ID = "INVALID_ID"
    NOT_FOUND = "NOT_FOUND"
    DUPLICATE = "DUPLICATE"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    ACCOUNT_DISABLED = "ACCOUNT_DISABLED"
    TOKEN_INVALID = "TOKEN_INVALID"
    TOKEN_EXPIRED = "TOKEN_EXPIRED"
    TOKEN_REUSED = "TOKEN_REUSED"
    IDENTITY_REJECTED = "IDENTITY_REJECTED"
    ROLE_NOT_ASSIGNABLE = "ROLE_NOT_ASSIGNABLE"
    ROLE_SCOPE_MISMATCH = "ROLE_SCOPE_MISMATCH"
    UNKNOWN_PERMISSION = "UNKNOWN_PERMISSION"
    BUILTIN_ROLE = "BUILTIN_ROLE"
    CANNOT_DISABLE_SELF = "CANNOT_DISABLE_SELF"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    OUT_OF_DELIVERY_RANGE = "OUT_OF_DELIVERY_RANGE"
    PRICE_OUT_OF_BAND = "PRICE_OUT_OF_BAND"
    ALREADY_LISTED = "ALREADY_LISTED"
    NOT_ALLOWED_BY_POLICY = "NOT_ALLOWED_BY_POLICY"
    CSV_INVALID = "CSV_INVALID"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    STORE_NOT_OPEN = "STORE_NOT_OPEN"
    INSUFFICIENT_POINTS = "INSUFFICIENT_POINTS"
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
    MEMBER_CODE_INVALID = "MEMBER_CODE_INVALID"
    MEMBER_CODE_EXPIRED = "MEMBER_CODE_EXPIRED"
    MEMBER_EXISTS = "MEMBER_EXISTS"
    MEMBER_DELETED = "MEMBER_DELETED"
    PAYMENT_SIGNATURE_INVALID = "PAYMENT_SIGNATURE_INVALID"
    PAYMENT_AMOUNT_MISMATCH = "PAYMENT_AMOUNT_MISMATCH"
    PAYMENT_REFUND_REFUSED = "PAYMENT_REFUND_REFUSED"
    PAYMENT_PROVIDER_UNAVAILABLE = "PAYMENT_PROVIDER_UNAVAILABLE"
    ORDER_NOT_PAYABLE = "ORDER_NOT_PAYABLE"
    PICKUP_CODE_INVALID = "PICKUP_CODE_INVALID"
    CAMPAIGN_NOT_ACTIVE = "CAMPAIGN_NOT_ACTIVE"
    CAMPAIGN_NOT_ALLOWED = "CAMPAIGN_NOT_ALLOWED"
    FLASH_SALE_SOLD_OUT = "FLASH_SALE_SOLD_OUT"
    FLASH_SALE_LIMIT_REACHED = "FLASH_SALE_LIMIT_REACHED"
    COUPON_USED = "COUPON_USED"
    COUPON_EXPIRED = "COUPON_EXPIRED"
    COUPON_NOT_APPLICABLE = "COUPON_NOT_APPLICABLE"
    COUPON_LIMIT_REACHED = "COUPON_LIMIT_REACHED"
    COUPONS_EXHAUSTED = "COUPONS_EXHAUSTED"
    GROUP_FULL = "GROUP_FULL"
    GROUP_CLOSED = "GROUP_CLOSED"
    ALREADY_IN_GROUP = "ALREADY_IN_GROUP"
    REFERRAL_NOT_ALLOWED = "REFERRAL_NOT_ALLOWED"
    MALL_ITEM_EXHAUSTED = "MALL_ITEM_EXHAUSTED"
    PASSWORD_TOO_WEAK = "PASSWORD_TOO_WEAK"
    STORE_CLOSED = "STORE_CLOSED"
    PICKUP_TIME_INVALID = "PICKUP_TIME_INVALID"
    WAREHOUSE_CANNOT_SELL = "WAREHOUSE_CANNOT_SELL"
    NOT_A_WAREHOUSE = "NOT_A_WAREHOUSE"
    ATTRIBUTE_VALUE_INVALID = "ATTRIBUTE_VALUE_INVALID"
    ATTRIBUTE_NOT_EDITABLE = "ATTRIBUTE_NOT_EDITABLE"
    CARD_NOT_USABLE = "CARD_NOT_USABLE"
    CARD_LIMIT_REACHED = "CARD_LIMIT_REACHED"
    GIFT_CODE_INVALID = "GIFT_CODE_INVALID"


class DomainError(Exception):
    """A business rule refused the operation; shown to the client as a UserError."""

    def __init__(
        self, code: ErrorCode, message: str, field: str | None = None, *, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        # Extra payload fields a refusal carries to the client (e.g. every bad row of a CSV file).
        self.details = details or {}


class AccessDenied(Exception):
    """The viewer may not do this; shown as a GraphQL error with extensions.code."""

    def __init__(self, message: str = "You are not allowed to do this.", code: str = "FORBIDDEN") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Unauthenticated(AccessDenied):
    def __init__(self, message: str = "Sign in first.", reason: str | None = None) -> None:
        super().__init__(message, code="UNAUTHENTICATED")
        self.reason = reason

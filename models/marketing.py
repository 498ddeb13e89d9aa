"""Marketing: campaigns (promotions the price engine applies), coupons, group buys, referrals, the points mall.

Counters that a crowd races for (a flash sale's quota, a coupon's total, a member's limit, a group's slots)
are columns changed only by conditional UPDATEs whose row count says whether the claim held.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, Timestamp, intpk, str64, str_enum


class CampaignKind(enum.StrEnum):
    LIMITED_DISCOUNT = "LIMITED_DISCOUNT"  # 限时折扣: a price or percentage per SKU in a window
    FULL_REDUCTION = "FULL_REDUCTION"  # 满减: tiers over the eligible subtotal
    FLASH_SALE = "FLASH_SALE"  # 秒杀: a price per SKU with a quota and a per-member limit
    GROUP_BUY = "GROUP_BUY"  # 拼团: a price for a group of N that fills in time
    REFERRAL = "REFERRAL"  # 全民推广: the referrer's reward for a referred member's first paid order


class CampaignStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    ENDED = "ENDED"


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (
        Index("ix_campaigns_kind_status", "kind", "status"),
        Index("ix_campaigns_owner_store_id", "owner_store_id"),
    )

    id: Mapped[intpk]
    kind: Mapped[CampaignKind] = mapped_column(str_enum(CampaignKind))
    name: Mapped[str64]
    # None: an HQ campaign; a store id: that store's own local campaign.
    owner_store_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("stores.id"))
    # The stores it runs in; None means every store.
    store_ids: Mapped[list[int] | None] = mapped_column(JSON())
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    status: Mapped[CampaignStatus] = mapped_column(str_enum(CampaignStatus), default=CampaignStatus.ACTIVE)
    # Kind-specific terms: tiers and scope for full reduction, group size and minutes for a group buy, rewards...
    rules: Mapped[dict[str, Any]] = mapped_column(JSON(), default=dict)
    created_by: Mapped[int | None] = mapped_column(BigId)
    ended_by: Mapped[int | None] = mapped_column(BigId)
    ended_at: Mapped[datetime | None]
    created_at: Mapped[Timestamp]


class CampaignItem(Base):
    """A SKU's terms in a campaign: its price or percentage, and (flash sales) the quota and what is sold."""

    __tablename__ = "campaign_items"
    __table_args__ = (
        UniqueConstraint("campaign_id", "sku_id"),
        Index("ix_campaign_items_sku_id", "sku_id"),
        CheckConstraint("quota IS NULL OR sold <= quota", name="within_quota"),
    )

    id: Mapped[intpk]
    campaign_id: Mapped[int] = mapped_column(BigId, ForeignKey("campaigns.id"))
    sku_id: Mapped[int] = mapped_column(BigId, ForeignKey("skus.id"))
    price: Mapped[int | None] = mapped_column(BigInteger())
    percent: Mapped[int | None]
    quota: Mapped[int | None]
    sold: Mapped[int] = mapped_column(default=0)
    per_member_limit: Mapped[int | None]


class CampaignBuyer(Base):
    """How many units of a limited item one member has taken (the per-member limit's counter)."""

    __tablename__ = "campaign_buyers"
    __table_args__ = (UniqueConstraint("item_id", "member_id"),)

    id: Mapped[intpk]
    item_id: Mapped[int] = mapped_column(BigId, ForeignKey("campaign_items.id"))
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    bought: Mapped[int] = mapped_column(default=0)


class CouponKind(enum.StrEnum):
    THRESHOLD_OFF = "THRESHOLD_OFF"  # 满减券: spend `threshold`, get `amount_off`
    PERCENT_OFF = "PERCENT_OFF"  # 折扣券: pay `percent`%, at most `cap` off
    AMOUNT_OFF = "AMOUNT_OFF"  # 无门槛券
    FREE_ITEM = "FREE_ITEM"  # 兑换券: one unit of `free_sku_id` free


class CouponTrigger(enum.StrEnum):
    NONE = "NONE"
    NEW_MEMBER = "NEW_MEMBER"  # 新人礼包
    BIRTHDAY = "BIRTHDAY"  # 生日礼
    NEW_VISITOR = "NEW_VISITOR"  # 进店有礼: first time the member is known at a store


class CouponTemplate(Base):
    __tablename__ = "coupon_templates"
    __table_args__ = (
        Index("ix_coupon_templates_trigger_status", "trigger", "status"),
        CheckConstraint("total_quantity IS NULL OR issued <= total_quantity", name="within_total"),
    )

    id: Mapped[intpk]
    name: Mapped[str64]
    kind: Mapped[CouponKind] = mapped_column(str_enum(CouponKind))
    threshold: Mapped[int] = mapped_column(BigInteger(), default=0)
    amount_off: Mapped[int] = mapped_column(BigInteger(), default=0)
    percent: Mapped[int] = mapped_column(default=100)
    cap: Mapped[int | None] = mapped_column(BigInteger())
    free_sku_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("skus.id"))
    # Scope: None means no restriction on that axis.
    store_ids: Mapped[list[int] | None] = mapped_column(JSON())
    category_ids: Mapped[list[int] | None] = mapped_column(JSON())
    sku_ids: Mapped[list[int] | None] = mapped_column(JSON())
    # Validity: fixed dates, or `valid_days` from claiming (then valid_until bounds the claiming).
    valid_from: Mapped[datetime]
    valid_until: Mapped[datetime]
    valid_days: Mapped[int | None]
    total_quantity: Mapped[int | None]
    issued: Mapped[int] = mapped_column(default=0)
    per_member_limit: Mapped[int] = mapped_column(default=1)
    stackable: Mapped[bool] = mapped_column(Boolean(), default=True)
    claimable: Mapped[bool] = mapped_column(Boolean(), default=True)
    trigger: Mapped[CouponTrigger] = mapped_column(str_enum(CouponTrigger), default=CouponTrigger.NONE)
    owner_store_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("stores.id"))
    status: Mapped[CampaignStatus] = mapped_column(str_enum(CampaignStatus), default=CampaignStatus.ACTIVE)
    created_at: Mapped[Timestamp]


class CouponSource(enum.StrEnum):
    CLAIM = "CLAIM"
    ISSUE = "ISSUE"
    AUTO = "AUTO"
    REFERRAL = "REFERRAL"
    MALL = "MALL"


class MemberCouponStatus(enum.StrEnum):
    AVAILABLE = "AVAILABLE"
    USED = "USED"


class MemberCoupon(Base):
    """One coupon in one member's wallet; `seq` counts a member's coupons of a template (the limit's key)."""

    __tablename__ = "member_coupons"
    __table_args__ = (
        UniqueConstraint("template_id", "member_id", "seq"),
        Index("ix_member_coupons_member_id_status", "member_id", "status"),
        Index("ix_member_coupons_used_order_id", "used_order_id"),
    )

    id: Mapped[intpk]
    template_id: Mapped[int] = mapped_column(BigId, ForeignKey("coupon_templates.id"))
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    seq: Mapped[int] = mapped_column(default=1)
    status: Mapped[MemberCouponStatus] = mapped_column(
        str_enum(MemberCouponStatus), default=MemberCouponStatus.AVAILABLE
    )
    source: Mapped[CouponSource] = mapped_column(str_enum(CouponSource))
    valid_from: Mapped[datetime]
    valid_until: Mapped[datetime]
    used_order_id: Mapped[int | None] = mapped_column(BigId)
    used_at: Mapped[datetime | None]
    created_at: Mapped[Timestamp]


class OrderPromotion(Base):
    """What a campaign or coupon gave on an order: the source of campaign effect figures."""

    __tablename__ = "order_promotions"
    __table_args__ = (
        Index("ix_order_promotions_campaign_id", "campaign_id"),
        Index("ix_order_promotions_coupon_template_id", "coupon_template_id"),
        Index("ix_order_promotions_order_id", "order_id"),
    )

    id: Mapped[intpk]
    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id"))
    store_id: Mapped[int] = mapped_column(BigId)
    member_id: Mapped[int | None] = mapped_column(BigId)
    campaign_id: Mapped[int | None] = mapped_column(BigId)
    coupon_template_id: Mapped[int | None] = mapped_column(BigId)
    member_coupon_id: Mapped[int | None] = mapped_column(BigId)
    discount: Mapped[int] = mapped_column(BigInteger())
    created_at: Mapped[Timestamp]


class GroupBuyStatus(enum.StrEnum):
    OPEN = "OPEN"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class GroupBuy(Base):
    """One group (团) of a group-buy campaign: opened by a member, joined through its share code."""

    __tablename__ = "group_buys"
    __table_args__ = (
        UniqueConstraint("share_code"),
        Index("ix_group_buys_status_expires_at", "status", "expires_at"),
        CheckConstraint("joined <= size AND paid <= size", name="within_size"),
    )

    id: Mapped[intpk]
    campaign_id: Mapped[int] = mapped_column(BigId, ForeignKey("campaigns.id"))
    store_id: Mapped[int] = mapped_column(BigId, ForeignKey("stores.id"))
    sku_id: Mapped[int] = mapped_column(BigId, ForeignKey("skus.id"))
    leader_member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    share_code: Mapped[str] = mapped_column(String(16))
    size: Mapped[int]
    joined: Mapped[int] = mapped_column(default=0)
    paid: Mapped[int] = mapped_column(default=0)
    status: Mapped[GroupBuyStatus] = mapped_column(str_enum(GroupBuyStatus), default=GroupBuyStatus.OPEN)
    expires_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    created_at: Mapped[Timestamp]


class Referral(Base):
    """A member brought by another; the referrer is rewarded once, on the referred member's first paid order."""

    __tablename__ = "referrals"
    __table_args__ = (UniqueConstraint("referred_id"), Index("ix_referrals_referrer_id", "referrer_id"))

    id: Mapped[intpk]
    referrer_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    referred_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    campaign_id: Mapped[int | None] = mapped_column(BigId)
    rewarded_order_id: Mapped[int | None] = mapped_column(BigId)
    rewarded_at: Mapped[datetime | None]
    created_at: Mapped[Timestamp]


class PointsMallItem(Base):
    """积分商城: points for a coupon or for an item picked up in a store, while stock lasts."""

    __tablename__ = "points_mall_items"
    __table_args__ = (CheckConstraint("redeemed <= stock", name="within_stock"),)

    id: Mapped[intpk]
    name: Mapped[str64]
    points_cost: Mapped[int] = mapped_column(BigInteger())
    sku_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("skus.id"))
    coupon_template_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("coupon_templates.id"))
    stock: Mapped[int]
    redeemed: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(Boolean(), default=True)
    created_at: Mapped[Timestamp]

"""Loaders for campaigns, coupons and the points mall."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from models import (
    Campaign,
    CampaignItem,
    CampaignKind,
    CampaignStatus,
    CouponTemplate,
    Member,
    MemberCoupon,
    PointsMallItem,
)
from resolvers.loaders.base import ScopedLoader, by_key, grouped
from services.access.permissions import Perm
from services.access.visible import template_condition
from services.marketing.promotions import visible_campaigns
from services.members.accounts import visible_members

# What the mini-program shows of campaigns (runningCampaigns); referral rewards are HQ's business.
PUBLIC_CAMPAIGN_KINDS = (
    CampaignKind.LIMITED_DISCOUNT,
    CampaignKind.FULL_REDUCTION,
    CampaignKind.FLASH_SALE,
    CampaignKind.GROUP_BUY,
)


class CampaignItemsByCampaignLoader(ScopedLoader):
    """The SKU terms of campaigns already loaded through a scoped path."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[list[CampaignItem]]:
        rows = await self._rows(
            select(CampaignItem).where(CampaignItem.campaign_id.in_(keys)).order_by(CampaignItem.id)
        )
        return grouped(keys, rows, lambda item: item.campaign_id)


class CouponTemplateByIdLoader(ScopedLoader):
    """Coupon templates are public terms (members see them in their wallet and to claim); staff see the chain's
    and their own store's, as everywhere (`services.access.visible`)."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[CouponTemplate | None]:
        stmt = select(CouponTemplate).where(CouponTemplate.id.in_(keys), template_condition(self.viewer))
        return by_key(keys, await self._rows(stmt), lambda t: t.id)


class CampaignNodeLoader(ScopedLoader):
    """node(id) for campaigns: marketing staff see HQ's and their store's; everyone the running public ones."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[Campaign | None]:
        public = (Campaign.status == CampaignStatus.ACTIVE) & Campaign.kind.in_(PUBLIC_CAMPAIGN_KINDS)
        shown = visible_campaigns(self.viewer) if self.viewer.can(Perm.MARKETING_MANAGE) else public
        return by_key(keys, await self._rows(select(Campaign).where(Campaign.id.in_(keys), shown)), lambda c: c.id)


class CouponTemplateNodeLoader(ScopedLoader):
    """node(id) for coupon templates: staff see the chain's and their store's; members and visitors the terms
    (claimable or held: the wallet shows any store's), as the wallet and the claim list do."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[CouponTemplate | None]:
        stmt = select(CouponTemplate).where(CouponTemplate.id.in_(keys))
        if self.viewer.is_staff and not self.viewer.is_hq:
            stmt = stmt.where(
                CouponTemplate.owner_store_id.is_(None) | (CouponTemplate.owner_store_id == self.viewer.store_id)
            )
        return by_key(keys, await self._rows(stmt), lambda t: t.id)


class MemberCouponNodeLoader(ScopedLoader):
    """A member's coupons: the member's own; staff with member.read those of members in their scope."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[MemberCoupon | None]:
        members = select(Member.id).where(visible_members(self.viewer, Perm.MEMBER_READ))
        stmt = select(MemberCoupon).where(MemberCoupon.id.in_(keys), MemberCoupon.member_id.in_(members))
        return by_key(keys, await self._rows(stmt), lambda c: c.id)


class PointsMallItemNodeLoader(ScopedLoader):
    """Points-mall items are public while on sale; marketing staff also see retired ones."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[PointsMallItem | None]:
        stmt = select(PointsMallItem).where(PointsMallItem.id.in_(keys))
        if not self.viewer.can(Perm.MARKETING_MANAGE):
            stmt = stmt.where(PointsMallItem.active.is_(True))
        return by_key(keys, await self._rows(stmt), lambda i: i.id)

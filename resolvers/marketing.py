"""Marketing: the viewer and arguments in, service calls out; the lists each front end reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from models import (
    Campaign,
    CampaignKind,
    CampaignStatus,
    CouponTemplate,
    CouponTrigger,
    GroupBuy,
    MemberCoupon,
    MemberCouponStatus,
    PointsMallItem,
    utcnow,
)
from resolvers.context import Context
from services.access.permissions import Perm
from services.access.scope import require
from services.access.visible import require_visible, template_condition
from services.marketing import promotions
from services.platform.errors import DomainError, ErrorCode
from services.platform.pagination import Page, keyset_page

PUBLIC_KINDS = (CampaignKind.LIMITED_DISCOUNT, CampaignKind.FULL_REDUCTION, CampaignKind.FLASH_SALE,
                CampaignKind.GROUP_BUY)  # fmt: skip


def _runs_in(store_ids: list[int] | None, store_id: int | None) -> bool:
    return store_id is None or store_ids is None or store_id in store_ids


async def campaigns(
    ctx: Context, *, status: CampaignStatus | None, kind: CampaignKind | None, first: int | None, after: str | None
) -> Page[Campaign]:
    require(ctx.viewer, Perm.MARKETING_MANAGE)
    stmt = select(Campaign).where(promotions.visible_campaigns(ctx.viewer))
    if status is not None:
        stmt = stmt.where(Campaign.status == status)
    if kind is not None:
        stmt = stmt.where(Campaign.kind == kind)
    async with ctx.read() as session:
        return await keyset_page(session, stmt, Campaign.id, first=first, after=after, descending=True)


async def running_campaigns(ctx: Context, store_id: int, at: datetime | None = None) -> list[Campaign]:
    """What the mini-program shows in a store now (public)."""
    at = at or utcnow()
    async with ctx.read() as session:
        rows = (
            await session.scalars(
                select(Campaign)
                .where(Campaign.status == CampaignStatus.ACTIVE, Campaign.starts_at <= at, Campaign.ends_at > at,
                       Campaign.kind.in_(PUBLIC_KINDS))
                .order_by(Campaign.ends_at, Campaign.id)
            )
        ).all()  # fmt: skip
    return [c for c in rows if _runs_in(c.store_ids, store_id)]


async def coupon_templates(ctx: Context, *, first: int | None, after: str | None) -> Page[CouponTemplate]:
    require(ctx.viewer, Perm.MARKETING_MANAGE)
    stmt = select(CouponTemplate).where(template_condition(ctx.viewer))
    async with ctx.read() as session:
        return await keyset_page(session, stmt, CouponTemplate.id, first=first, after=after, descending=True)


async def claimable_coupons(ctx: Context, store_id: int | None, at: datetime | None = None) -> list[CouponTemplate]:
    at = at or utcnow()
    async with ctx.read() as session:
        rows = (
            await session.scalars(
                select(CouponTemplate)
                .where(CouponTemplate.status == CampaignStatus.ACTIVE, CouponTemplate.claimable.is_(True),
                       CouponTemplate.trigger == CouponTrigger.NONE, CouponTemplate.valid_from <= at,
                       CouponTemplate.valid_until > at)
                .order_by(CouponTemplate.id)
            )
        ).all()  # fmt: skip
    return [t for t in rows if _runs_in(t.store_ids, store_id)]


async def my_coupons(ctx: Context, *, usable_only: bool, first: int | None, after: str | None) -> Page[MemberCoupon]:
    stmt = select(MemberCoupon).where(MemberCoupon.member_id == ctx.viewer.member_id)
    if usable_only:
        stmt = stmt.where(MemberCoupon.status == MemberCouponStatus.AVAILABLE, MemberCoupon.valid_until > utcnow())
    async with ctx.read() as session:
        return await keyset_page(session, stmt, MemberCoupon.id, first=first, after=after, descending=True)


async def group_buy(ctx: Context, share_code: str) -> GroupBuy | None:
    async with ctx.read() as session:
        return await session.scalar(select(GroupBuy).where(GroupBuy.share_code == share_code.strip().upper()))


async def points_mall(ctx: Context) -> list[PointsMallItem]:
    async with ctx.read() as session:
        rows = await session.scalars(
            select(PointsMallItem).where(PointsMallItem.active.is_(True)).order_by(PointsMallItem.id)
        )
        return list(rows.all())


async def effect(ctx: Context, *, campaign_id: int | None, coupon_template_id: int | None) -> list[dict[str, Any]]:
    if (campaign_id is None) == (coupon_template_id is None):
        raise DomainError(ErrorCode.INVALID_INPUT, "Name a campaign or a coupon.", "campaignId")
    async with ctx.read() as session:
        if campaign_id is not None:
            campaign = await session.scalar(
                select(Campaign).where(Campaign.id == campaign_id, promotions.visible_campaigns(ctx.viewer))
            )
            if campaign is None:
                raise DomainError(ErrorCode.NOT_FOUND, "No such campaign.", "campaignId")
        else:
            await require_visible(session, ctx.viewer, CouponTemplate, [coupon_template_id or 0], "couponTemplateId")
        return await promotions.effect(
            session, ctx.viewer, campaign_id=campaign_id, coupon_template_id=coupon_template_id
        )

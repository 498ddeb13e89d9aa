"""Marketing: the viewer and arguments in, service calls out; the lists each front end reads. The specs a new
campaign or coupon is made of are re-exported (`X as X`) for schema/."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from models import (
    Campaign,
    CampaignKind,
    CampaignStatus,
    CouponTemplate,
    GroupBuy,
    MemberCoupon,
    PointsMallItem,
    utcnow,
)
from resolvers.context import Context
from resolvers.orders import provider
from services.marketing import coupons, group_buys, promotions, referrals
from services.marketing import points_mall as mall
from services.marketing.coupons import Audience as Audience
from services.marketing.coupons import NewTemplate as NewTemplate
from services.marketing.group_buys import Joined
from services.marketing.promotions import ItemSpec as ItemSpec
from services.marketing.promotions import NewCampaign as NewCampaign
from services.platform.db import write_transaction
from services.platform.pagination import Page


async def campaigns(
    ctx: Context, *, status: CampaignStatus | None, kind: CampaignKind | None, first: int | None, after: str | None
) -> Page[Campaign]:
    async with ctx.read() as session:
        return await promotions.list_campaigns(session, ctx.viewer, status=status, kind=kind, first=first, after=after)


async def running_campaigns(ctx: Context, store_id: int, at: datetime | None = None) -> list[Campaign]:
    """What the mini-program shows in a store now (public)."""
    async with ctx.read() as session:
        return await promotions.running(session, store_id, at or utcnow())


async def coupon_templates(ctx: Context, *, first: int | None, after: str | None) -> Page[CouponTemplate]:
    async with ctx.read() as session:
        return await coupons.list_templates(session, ctx.viewer, first=first, after=after)


async def claimable_coupons(ctx: Context, store_id: int | None, at: datetime | None = None) -> list[CouponTemplate]:
    async with ctx.read() as session:
        return await coupons.claimable(session, store_id, at or utcnow())


async def my_coupons(ctx: Context, *, usable_only: bool, first: int | None, after: str | None) -> Page[MemberCoupon]:
    async with ctx.read() as session:
        return await coupons.member_coupons(session, ctx.viewer, usable_only=usable_only, first=first, after=after)


async def group_buy(ctx: Context, share_code: str) -> GroupBuy | None:
    async with ctx.read() as session:
        return await group_buys.by_share_code(session, share_code)


async def points_mall(ctx: Context) -> list[PointsMallItem]:
    async with ctx.read() as session:
        return await mall.active_items(session)


async def effect(ctx: Context, *, campaign_id: int | None, coupon_template_id: int | None) -> list[dict[str, Any]]:
    async with ctx.read() as session:
        return await promotions.effect_of(
            session, ctx.viewer, campaign_id=campaign_id, coupon_template_id=coupon_template_id
        )


async def my_share_code(ctx: Context) -> str:
    """Made on first asking, so a query that writes: in a short write transaction of its own."""
    async with write_transaction(ctx.app.sessionmaker) as session:
        return await referrals.share_code(session, ctx.viewer)


# Mutations: all run in ctx.session, the mutation's one transaction.


async def create_campaign(ctx: Context, spec: NewCampaign) -> Campaign:
    return await promotions.create(ctx.session, ctx.viewer, spec)


async def end_campaign(ctx: Context, campaign_id: int) -> Campaign:
    return await promotions.end(ctx.session, ctx.viewer, campaign_id)


async def create_coupon_template(ctx: Context, spec: NewTemplate) -> CouponTemplate:
    return await coupons.create_template(ctx.session, ctx.viewer, spec)


async def end_coupon_template(ctx: Context, template_id: int) -> CouponTemplate:
    return await coupons.end_template(ctx.session, ctx.viewer, template_id)


async def claim_coupon(ctx: Context, template_id: int, key: str) -> MemberCoupon:
    return await coupons.claim_once(ctx.session, ctx.viewer, template_id, key=key)


async def issue_coupons(ctx: Context, template_id: int, audience: Audience, key: str) -> int:
    return await coupons.issue_once(ctx.session, ctx.viewer, template_id, audience, key=key, cipher=ctx.app.cipher)


async def open_group_buy(ctx: Context, *, campaign_id: int, store_id: int, sku_id: int, key: str) -> Joined:
    return await group_buys.open_group(
        ctx.session,
        ctx.viewer,
        provider(ctx),
        campaign_id=campaign_id,
        store_id=store_id,
        sku_id=sku_id,
        idempotency_key=key,
    )


async def join_group_buy(ctx: Context, *, share_code: str, key: str) -> Joined:
    return await group_buys.join_group(
        ctx.session, ctx.viewer, provider(ctx), share_code=share_code, idempotency_key=key
    )


async def accept_referral(ctx: Context, code: str) -> None:
    await referrals.accept(ctx.session, ctx.viewer, code)


async def create_points_mall_item(
    ctx: Context, *, name: str, points_cost: int, stock_count: int, sku_id: int | None, coupon_template_id: int | None
) -> PointsMallItem:
    return await mall.create_item(
        ctx.session,
        ctx.viewer,
        name=name,
        points_cost=points_cost,
        stock_count=stock_count,
        sku_id=sku_id,
        coupon_template_id=coupon_template_id,
    )


async def exchange_points(ctx: Context, *, item_id: int, store_id: int | None, key: str) -> mall.Exchanged:
    return await mall.exchange(ctx.session, ctx.viewer, item_id=item_id, store_id=store_id, idempotency_key=key)

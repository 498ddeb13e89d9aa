"""Referral (全民推广): a member shares their code; the referred member's first paid order rewards the referrer once."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Campaign,
    CampaignKind,
    CampaignStatus,
    CouponSource,
    CouponTemplate,
    Member,
    Order,
    Referral,
    utcnow,
)
from services.access.scope import Viewer
from services.marketing import coupons
from services.members import points
from services.platform.errors import AccessDenied, DomainError, ErrorCode

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


async def share_code(session: AsyncSession, viewer: Viewer) -> str:
    """The member's own share code, made on first asking (in a write transaction: two first askings racing get
    the same code, the one whose guarded UPDATE landed)."""
    if not viewer.is_member or viewer.member_id is None:
        raise AccessDenied("Only members have share codes.")
    code = await session.scalar(select(Member.share_code).where(Member.id == viewer.member_id))
    if code is None:
        await session.execute(
            update(Member)
            .where(Member.id == viewer.member_id, Member.share_code.is_(None))
            .values(share_code="".join(secrets.choice(ALPHABET) for _ in range(8)))
        )
        code = await session.scalar(select(Member.share_code).where(Member.id == viewer.member_id))
    assert code is not None
    return code


async def _running(session: AsyncSession, at: datetime) -> Campaign | None:
    return await session.scalar(
        select(Campaign)
        .where(
            Campaign.kind == CampaignKind.REFERRAL,
            Campaign.status == CampaignStatus.ACTIVE,
            Campaign.starts_at <= at,
            Campaign.ends_at > at,
        )
        .order_by(Campaign.id.desc())
        .limit(1)
    )


async def accept(session: AsyncSession, viewer: Viewer, code: str, now: datetime | None = None) -> Referral:
    """A new member says who brought them: only before their first order, once, and not themselves."""
    if not viewer.is_member or viewer.member_id is None:
        raise AccessDenied("Only members accept referrals.")
    now = now or utcnow()
    campaign = await _running(session, now)
    if campaign is None:
        raise DomainError(ErrorCode.CAMPAIGN_NOT_ACTIVE, "No referral programme is running.", "code")
    referrer = await session.scalar(select(Member).where(Member.share_code == code.strip().upper()))
    if referrer is None or referrer.deleted_at is not None:
        raise DomainError(ErrorCode.NOT_FOUND, "No member with this share code.", "code")
    me = viewer.member_id
    ordered = await session.scalar(select(exists().where(Order.member_id == me, Order.paid_at.isnot(None))))
    already = await session.scalar(select(exists().where(Referral.referred_id == me)))
    if referrer.id == me or ordered or already:
        raise DomainError(ErrorCode.REFERRAL_NOT_ALLOWED, "Referrals are for new members, once.", "code")
    referral = Referral(referrer_id=referrer.id, referred_id=me, campaign_id=campaign.id)
    session.add(referral)
    await session.flush()
    return referral


async def reward(session: AsyncSession, member_id: int, order_id: int, at: datetime) -> bool:
    """Called when a member's order is paid: the first one rewards their referrer, exactly once."""
    referral = await session.scalar(
        select(Referral).where(Referral.referred_id == member_id, Referral.rewarded_at.is_(None))
    )
    if referral is None:
        return False
    took = await session.execute(
        update(Referral)
        .where(Referral.id == referral.id, Referral.rewarded_at.is_(None))
        .values(rewarded_at=at, rewarded_order_id=order_id)
        .execution_options(synchronize_session=False)
    )
    if took.rowcount != 1:  # type: ignore[attr-defined]
        return False
    campaign = await session.get(Campaign, referral.campaign_id) if referral.campaign_id else None
    rules = campaign.rules if campaign is not None else {}
    if rules.get("reward_points"):
        await points.adjust(
            session, referral.referrer_id, int(rules["reward_points"]), note=f"推荐奖励 #{member_id}", staff_id=None
        )
    if rules.get("reward_coupon_template_id"):
        template = await session.get(CouponTemplate, int(rules["reward_coupon_template_id"]))
        if template is not None:
            try:
                await coupons.grant(session, template, Member.id == referral.referrer_id, CouponSource.REFERRAL, at)
            except DomainError as exc:
                if exc.code not in (ErrorCode.COUPONS_EXHAUSTED, ErrorCode.CAMPAIGN_NOT_ACTIVE):
                    raise
    return True

"""Group buys (拼团): a member opens a group, others join with its share code, each pays their own order.

A group holds `size` places; taking one is a conditional UPDATE, so a crowd never overfills it. It completes
when `size` members have paid. If time runs out first, a job fails it (once: a conditional UPDATE from OPEN),
cancels the unpaid orders (their stock comes back) in the same transaction, and leaves each paid order's money
to a refund job of its own: a provider that does not answer delays only that refund, retried and visible.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Campaign,
    CampaignItem,
    CampaignKind,
    CampaignStatus,
    GroupBuy,
    GroupBuyStatus,
    Order,
    OrderStatus,
    utcnow,
)
from services.access.scope import Viewer, acted_in
from services.orders import lifecycle as orders
from services.orders import refunds
from services.platform import jobs
from services.platform.db import rowcount
from services.platform.errors import AccessDenied, DomainError, ErrorCode
from services.platform.payments import PaymentProvider
from services.pricing.engine import CartLine

SHARE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


@dataclass(frozen=True)
class Joined:
    group: GroupBuy
    placed: orders.Placed


async def _running(session: AsyncSession, campaign_id: int, store_id: int, now: datetime) -> Campaign:
    campaign = await session.get(Campaign, campaign_id)
    if (
        campaign is None
        or campaign.kind is not CampaignKind.GROUP_BUY
        or campaign.status is not CampaignStatus.ACTIVE
        or not campaign.starts_at <= now < campaign.ends_at
        or (campaign.store_ids is not None and store_id not in campaign.store_ids)
    ):
        raise DomainError(ErrorCode.CAMPAIGN_NOT_ACTIVE, "This group buy is not running here now.", "campaignId")
    return campaign


async def _earlier(session: AsyncSession, viewer: Viewer, key: str) -> Joined | None:
    """Members only; the same idempotency key again gives the group and order it made the first time."""
    if not viewer.is_member or viewer.member_id is None:
        raise AccessDenied("Only members join group buys.")
    order = await session.scalar(select(Order).where(Order.client_order_id == f"m{viewer.member_id}:{key}"))
    if order is None or order.group_buy_id is None:
        return None
    group = await session.get(GroupBuy, order.group_buy_id)
    assert group is not None
    return Joined(group, orders.Placed(order, None))


async def by_share_code(session: AsyncSession, share_code: str) -> GroupBuy | None:
    """The group a share code names (as members type it: spaces and case do not matter)."""
    return await session.scalar(select(GroupBuy).where(GroupBuy.share_code == share_code.strip().upper()))


async def open_group(
    session: AsyncSession,
    viewer: Viewer,
    provider: PaymentProvider,
    *,
    campaign_id: int,
    store_id: int,
    sku_id: int,
    idempotency_key: str,
    now: datetime | None = None,
) -> Joined:
    """开团: the leader's order is the group's first place."""
    acted_in(store_id)
    if (earlier := await _earlier(session, viewer, idempotency_key)) is not None:
        return earlier
    now = now or utcnow()
    campaign = await _running(session, campaign_id, store_id, now)
    item = await session.scalar(
        select(CampaignItem).where(CampaignItem.campaign_id == campaign.id, CampaignItem.sku_id == sku_id)
    )
    if item is None:
        raise DomainError(ErrorCode.NOT_FOUND, "This item is not in the group buy.", "skuId")
    minutes = int(campaign.rules["group_minutes"])
    assert viewer.member_id is not None
    group = GroupBuy(
        campaign_id=campaign.id,
        store_id=store_id,
        sku_id=sku_id,
        leader_member_id=viewer.member_id,
        share_code="".join(secrets.choice(SHARE_ALPHABET) for _ in range(10)),
        size=int(campaign.rules["group_size"]),
        joined=0,
        paid=0,
        status=GroupBuyStatus.OPEN,
        expires_at=min(now + timedelta(minutes=minutes), campaign.ends_at),
    )
    session.add(group)
    await session.flush()
    await jobs.enqueue(
        session,
        kind="groups.expire",
        dedupe_key=f"groups.expire:{group.id}",
        due_at=group.expires_at,
        payload={"group_id": group.id},
    )
    return await _take_place(session, viewer, provider, group, idempotency_key, now)


async def join_group(
    session: AsyncSession,
    viewer: Viewer,
    provider: PaymentProvider,
    *,
    share_code: str,
    idempotency_key: str,
    now: datetime | None = None,
) -> Joined:
    """参团: through the share code, while the group is open and has a place."""
    if (earlier := await _earlier(session, viewer, idempotency_key)) is not None:
        acted_in(earlier.group.store_id)
        return earlier
    now = now or utcnow()
    group = await session.scalar(select(GroupBuy).where(GroupBuy.share_code == share_code.strip().upper()))
    if group is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No group with this code.", "shareCode")
    mine = await session.scalar(
        select(Order.id).where(
            Order.group_buy_id == group.id, Order.member_id == viewer.member_id, Order.status != OrderStatus.CANCELLED
        )
    )
    if mine is not None:
        raise DomainError(ErrorCode.ALREADY_IN_GROUP, "You are in this group already.", "shareCode")
    await _running(session, group.campaign_id, group.store_id, now)
    joined = await _take_place(session, viewer, provider, group, idempotency_key, now)
    acted_in(group.store_id)
    return joined


async def _take_place(
    session: AsyncSession, viewer: Viewer, provider: PaymentProvider, group: GroupBuy, key: str, now: datetime
) -> Joined:
    took = await session.execute(
        update(GroupBuy)
        .where(
            GroupBuy.id == group.id,
            GroupBuy.status == GroupBuyStatus.OPEN,
            GroupBuy.joined < GroupBuy.size,
            GroupBuy.expires_at > now,
        )
        .values(joined=GroupBuy.joined + 1)
        .execution_options(synchronize_session=False)
    )
    if rowcount(took) != 1:
        await session.refresh(group)
        if group.status is not GroupBuyStatus.OPEN or group.expires_at <= now:
            raise DomainError(ErrorCode.GROUP_CLOSED, "This group has closed.", "shareCode")
        raise DomainError(ErrorCode.GROUP_FULL, "This group is full.", "shareCode")
    request = orders.PlaceOrder(
        store_id=group.store_id,
        lines=[CartLine(group.sku_id, 1)],
        idempotency_key=key,
        group_campaign_id=group.campaign_id,
        group_buy_id=group.id,
    )
    placed = await orders.place_order(session, viewer, provider, request, now=now)
    await session.refresh(group)
    return Joined(group, placed)


async def expire(session: AsyncSession, group_id: int, now: datetime, providers: Mapping[str, PaymentProvider]) -> bool:
    """The group's time is up: if it has not filled, fail it once and give every member their money back."""
    # Lock the group's orders before the group, in the order an order's own expiry or payment takes them (order,
    # then group): the other way round, a concurrent order expiry and this job deadlock on PostgreSQL.
    await session.execute(select(Order.id).where(Order.group_buy_id == group_id).order_by(Order.id).with_for_update())
    failed = await session.execute(
        update(GroupBuy)
        .where(GroupBuy.id == group_id, GroupBuy.status == GroupBuyStatus.OPEN, GroupBuy.expires_at <= now)
        .values(status=GroupBuyStatus.FAILED)
        .execution_options(synchronize_session=False)
    )
    if rowcount(failed) != 1:
        return False
    members = (await session.scalars(select(Order).where(Order.group_buy_id == group_id).order_by(Order.id))).all()
    for order in members:
        if order.status is OrderStatus.CREATED:
            await orders.release(session, order.id)
        elif order.status in refunds.REFUNDABLE:
            await refunds.schedule_refund(session, order.id, reason="拼团未成团", due_at=now)
    return True


@jobs.job("groups.expire")
async def _expire_job(session: AsyncSession, payload: dict[str, Any], env: jobs.JobEnv) -> None:
    await expire(session, int(payload["group_id"]), env.now, env.providers)

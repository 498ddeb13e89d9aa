"""Campaigns: HQ designs them once and chooses their stores; stores run local ones within HQ's limits.

The price engine (services/pricing/engine.py) applies running campaigns; this module creates and ends them,
claims what an order takes from limited ones (a flash sale's quota and the member's limit, a coupon) in the
order's transaction, gives it back when an unpaid order is cancelled, and reports each campaign's effect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Campaign,
    CampaignBuyer,
    CampaignItem,
    CampaignKind,
    CampaignStatus,
    CouponSource,
    CouponTemplate,
    MemberCoupon,
    MemberCouponStatus,
    Order,
    OrderLine,
    OrderPromotion,
    OrderStatus,
    Sku,
    Store,
    StoreListing,
    utcnow,
)
from services.access.permissions import Perm
from services.access.scope import Viewer, acted_in, require, require_store
from services.access.visible import owned_condition, require_visible
from services.org.settings import get_settings
from services.platform.db import insert_new, rowcount
from services.platform.errors import AccessDenied, DomainError, ErrorCode
from services.platform.pagination import Page, keyset_page
from services.platform.validation import text
from services.pricing.engine import Quote

HQ_ONLY_KINDS = frozenset({CampaignKind.REFERRAL})


@dataclass(frozen=True)
class ItemSpec:
    sku_id: int
    price: int | None = None
    percent: int | None = None
    quota: int | None = None
    per_member_limit: int | None = None


@dataclass(frozen=True)
class NewCampaign:
    kind: CampaignKind
    name: str
    starts_at: datetime
    ends_at: datetime
    store_ids: list[int] | None = None
    items: list[ItemSpec] = field(default_factory=list)
    tiers: list[tuple[int, int]] = field(default_factory=list)  # (threshold, off), fen
    sku_ids: list[int] | None = None
    category_ids: list[int] | None = None
    group_size: int | None = None
    group_minutes: int | None = None
    reward_points: int | None = None
    reward_coupon_template_id: int | None = None


def _invalid(message: str, field_name: str) -> DomainError:
    return DomainError(ErrorCode.INVALID_INPUT, message, field_name)


def _check_terms(spec: NewCampaign) -> dict[str, Any]:
    """The kind's own terms are complete and sane; returns the rules kept on the campaign."""
    if spec.ends_at <= spec.starts_at:
        raise _invalid("A campaign ends after it starts.", "endsAt")
    needs_items = spec.kind in {CampaignKind.LIMITED_DISCOUNT, CampaignKind.FLASH_SALE, CampaignKind.GROUP_BUY}
    if needs_items and not spec.items:
        raise _invalid("Name the SKUs and their terms.", "items")
    if len({i.sku_id for i in spec.items}) != len(spec.items):
        raise _invalid("Each SKU once.", "items")
    for n, item in enumerate(spec.items):
        where = f"items[{n}]"
        if spec.kind is CampaignKind.LIMITED_DISCOUNT:
            if (item.price is None) == (item.percent is None):
                raise _invalid("Give a price or a percentage.", f"{where}.price")
            if item.percent is not None and not 1 <= item.percent <= 99:
                raise _invalid("A percentage is 1-99.", f"{where}.percent")
        elif item.price is None or item.percent is not None:
            raise _invalid("Give the campaign price.", f"{where}.price")
        if item.price is not None and item.price <= 0:
            raise _invalid("Prices are positive.", f"{where}.price")
        if spec.kind is CampaignKind.FLASH_SALE and (
            not item.quota or item.quota < 1 or not item.per_member_limit or item.per_member_limit < 1
        ):
            raise _invalid("A flash sale needs a quota and a per-member limit.", f"{where}.quota")
    rules: dict[str, Any] = {}
    if spec.kind is CampaignKind.FULL_REDUCTION:
        if not spec.tiers or any(not 0 < off < threshold for threshold, off in spec.tiers):
            raise _invalid("Tiers take less off than their threshold.", "tiers")
        rules = {
            "tiers": [{"threshold": t, "off": o} for t, o in sorted(spec.tiers)],
            "sku_ids": spec.sku_ids,
            "category_ids": spec.category_ids,
        }
    elif spec.kind is CampaignKind.GROUP_BUY:
        if not spec.group_size or not 2 <= spec.group_size <= 50:
            raise _invalid("A group is 2-50 members.", "groupSize")
        if not spec.group_minutes or not 5 <= spec.group_minutes <= 7 * 24 * 60:
            raise _invalid("A group has 5 minutes to 7 days to fill.", "groupMinutes")
        rules = {"group_size": spec.group_size, "group_minutes": spec.group_minutes}
    elif spec.kind is CampaignKind.REFERRAL:
        if not spec.reward_points and not spec.reward_coupon_template_id:
            raise _invalid("Reward the referrer with points or a coupon.", "rewardPoints")
        if spec.reward_points is not None and not 0 < spec.reward_points <= 100_000:
            raise _invalid("Reward points are 1-100000.", "rewardPoints")
        rules = {"reward_points": spec.reward_points, "reward_coupon_template_id": spec.reward_coupon_template_id}
    return rules


async def _check_store_policy(session: AsyncSession, viewer: Viewer, spec: NewCampaign) -> None:
    """A store's own campaign: a kind HQ allows, only its store, and no deeper discount than HQ allows."""
    settings = await get_settings(session)
    if spec.kind.value not in settings.store_campaign_kinds or spec.kind in HQ_ONLY_KINDS:
        raise DomainError(
            ErrorCode.CAMPAIGN_NOT_ALLOWED, f"HQ does not let stores run {spec.kind.value} campaigns.", "kind"
        )
    cap = settings.store_campaign_max_discount_pct
    for threshold, off in spec.tiers:
        if off * 100 > threshold * cap:
            raise DomainError(ErrorCode.CAMPAIGN_NOT_ALLOWED, f"Stores may take at most {cap}% off.", "tiers")
    prices = dict(
        (
            await session.execute(
                select(StoreListing.sku_id, StoreListing.price).where(
                    StoreListing.store_id == viewer.store_id, StoreListing.sku_id.in_([i.sku_id for i in spec.items])
                )
            )
        ).all()
    )
    for n, item in enumerate(spec.items):
        listed = prices.get(item.sku_id)
        if listed is None:
            raise DomainError(ErrorCode.NOT_FOUND, "This store does not sell this SKU.", f"items[{n}].skuId")
        price = item.price if item.price is not None else listed * (item.percent or 100) // 100
        if (listed - price) * 100 > listed * cap:
            raise DomainError(ErrorCode.CAMPAIGN_NOT_ALLOWED, f"Stores may take at most {cap}% off.", f"items[{n}]")


async def create(session: AsyncSession, viewer: Viewer, spec: NewCampaign) -> Campaign:
    require(viewer, Perm.MARKETING_MANAGE)
    rules = _check_terms(spec)
    store_ids = spec.store_ids
    owner = None
    if not viewer.is_hq:
        await _check_store_policy(session, viewer, spec)
        if store_ids not in (None, [viewer.store_id]):
            raise AccessDenied("A store runs campaigns in its own store only.")
        owner, store_ids = viewer.store_id, [viewer.store_id] if viewer.store_id is not None else None
    elif store_ids is not None:
        store_ids = sorted(set(store_ids))
        found = set((await session.scalars(select(Store.id).where(Store.id.in_(store_ids)))).all())
        if not store_ids or found != set(store_ids):
            raise DomainError(ErrorCode.NOT_FOUND, "No such store.", "storeIds")
    await require_visible(session, viewer, Sku, [i.sku_id for i in spec.items], lambda n: f"items[{n}].skuId")
    await require_visible(session, viewer, Sku, spec.sku_ids or [], lambda n: f"skuIds[{n}]")
    if spec.reward_coupon_template_id is not None:
        await require_visible(
            session, viewer, CouponTemplate, [spec.reward_coupon_template_id], "rewardCouponTemplateId"
        )
    campaign = Campaign(
        kind=spec.kind,
        name=text(spec.name, "name", max_len=64),
        owner_store_id=owner,
        store_ids=store_ids,
        starts_at=spec.starts_at,
        ends_at=spec.ends_at,
        rules=rules,
        status=CampaignStatus.ACTIVE,
        created_by=viewer.staff_id,
    )
    session.add(campaign)
    await session.flush()
    session.add_all(
        CampaignItem(
            campaign_id=campaign.id,
            sku_id=i.sku_id,
            price=i.price,
            percent=i.percent,
            quota=i.quota,
            per_member_limit=i.per_member_limit,
            sold=0,
        )
        for i in spec.items
    )
    await session.flush()
    return campaign


async def end(session: AsyncSession, viewer: Viewer, campaign_id: int, now: datetime | None = None) -> Campaign:
    """HQ ends any campaign; a store ends only its own."""
    await require_visible(session, viewer, Campaign, [campaign_id], "id")  # another store's: as if there were none
    campaign = await session.get(Campaign, campaign_id, with_for_update=True)
    if campaign is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such campaign.", "id")
    if viewer.is_hq:
        require(viewer, Perm.MARKETING_MANAGE)
    else:
        require_store(viewer, campaign.owner_store_id, Perm.MARKETING_MANAGE)
    acted_in(campaign.owner_store_id)  # HQ ending a store's campaign acts in that store
    if campaign.status is CampaignStatus.ACTIVE:
        campaign.status, campaign.ended_at, campaign.ended_by = CampaignStatus.ENDED, now or utcnow(), viewer.staff_id
        await session.flush()
    return campaign


PUBLIC_KINDS = (
    CampaignKind.LIMITED_DISCOUNT,
    CampaignKind.FULL_REDUCTION,
    CampaignKind.FLASH_SALE,
    CampaignKind.GROUP_BUY,
)


def runs_in(store_ids: list[int] | None, store_id: int | None) -> bool:
    """A campaign or coupon for `store_ids` (None: every store) applies in `store_id` (None: anywhere)."""
    return store_id is None or store_ids is None or store_id in store_ids


async def next_change(session: AsyncSession, at: datetime) -> datetime | None:
    """The next moment after `at` a campaign starts or ends (what is running changes by the clock, not by a write):
    a remembered menu or page is good until then at most."""
    active = Campaign.status == CampaignStatus.ACTIVE
    starts = select(func.min(Campaign.starts_at)).where(active, Campaign.starts_at > at).scalar_subquery()
    ends = select(func.min(Campaign.ends_at)).where(active, Campaign.ends_at > at).scalar_subquery()
    first, then = (await session.execute(select(starts, ends))).one()
    found: list[datetime] = [t for t in (first, then) if t is not None]
    return min(found) if found else None


async def running(session: AsyncSession, store_id: int, at: datetime) -> list[Campaign]:
    """What the mini-program shows in a store at `at` (public): the active campaigns of the public kinds there."""
    rows = (
        await session.scalars(
            select(Campaign)
            .where(
                Campaign.status == CampaignStatus.ACTIVE,
                Campaign.starts_at <= at,
                Campaign.ends_at > at,
                Campaign.kind.in_(PUBLIC_KINDS),
            )
            .order_by(Campaign.ends_at, Campaign.id)
        )
    ).all()
    return [c for c in rows if runs_in(c.store_ids, store_id)]


async def list_campaigns(
    session: AsyncSession,
    viewer: Viewer,
    *,
    status: CampaignStatus | None,
    kind: CampaignKind | None,
    first: int | None,
    after: str | None,
) -> Page[Campaign]:
    """The campaigns the viewer manages (HQ: all; a store: the chain's and its own), newest first."""
    require(viewer, Perm.MARKETING_MANAGE)
    stmt = select(Campaign).where(visible_campaigns(viewer))
    if status is not None:
        stmt = stmt.where(Campaign.status == status)
    if kind is not None:
        stmt = stmt.where(Campaign.kind == kind)
    return await keyset_page(session, stmt, Campaign.id, first=first, after=after, descending=True)


def visible_campaigns(viewer: Viewer) -> Any:
    """HQ sees every campaign; a store sees HQ's campaigns and its own, never another store's local ones."""
    return owned_condition(viewer, Campaign.owner_store_id)


async def require_flash(session: AsyncSession, campaign_id: int, member_id: int, priced: Quote) -> None:
    """A buyer on a flash-sale page gets the flash price or a clear no, never an ordinary-price order."""
    items = {
        i.sku_id: i
        for i in (await session.scalars(select(CampaignItem).where(CampaignItem.campaign_id == campaign_id))).all()
    }
    chosen = [line for line in priced.lines if line.sku_id in items]
    if not chosen:
        raise DomainError(ErrorCode.CAMPAIGN_NOT_ACTIVE, "Nothing in this cart is in that flash sale.", "flashSaleId")
    for line in chosen:
        if line.flash_item_id == items[line.sku_id].id:
            continue
        item = items[line.sku_id]
        bought = await session.scalar(
            select(CampaignBuyer.bought).where(CampaignBuyer.item_id == item.id, CampaignBuyer.member_id == member_id)
        )
        if item.per_member_limit is not None and (bought or 0) + line.quantity > item.per_member_limit:
            raise DomainError(
                ErrorCode.FLASH_SALE_LIMIT_REACHED, f"At most {item.per_member_limit} per member.", "lines"
            )
        raise DomainError(ErrorCode.FLASH_SALE_SOLD_OUT, "The flash sale has sold out.", "lines")


async def claim(session: AsyncSession, order: Order, priced: Quote, at: datetime) -> None:
    """Take what the order uses from limited campaigns and coupons, once; record what each source gave."""
    for line in priced.lines:
        if line.flash_item_id is None or order.member_id is None:
            continue
        item = await session.get(CampaignItem, line.flash_item_id)
        assert item is not None and item.quota is not None
        took = await session.execute(
            update(CampaignItem)
            .where(CampaignItem.id == item.id, CampaignItem.sold + line.quantity <= item.quota)
            .values(sold=CampaignItem.sold + line.quantity)
            .execution_options(synchronize_session=False)
        )
        if rowcount(took) != 1:
            raise DomainError(ErrorCode.FLASH_SALE_SOLD_OUT, "The flash sale has sold out.", "lines")
        row = {"item_id": item.id, "member_id": order.member_id, "bought": 0}
        await session.execute(insert_new(session, CampaignBuyer, row, unique=["item_id", "member_id"]))
        limit = item.per_member_limit or line.quantity
        mine = await session.execute(
            update(CampaignBuyer)
            .where(
                CampaignBuyer.item_id == item.id,
                CampaignBuyer.member_id == order.member_id,
                CampaignBuyer.bought + line.quantity <= limit,
            )
            .values(bought=CampaignBuyer.bought + line.quantity)
            .execution_options(synchronize_session=False)
        )
        if rowcount(mine) != 1:
            raise DomainError(ErrorCode.FLASH_SALE_LIMIT_REACHED, f"At most {limit} per member.", "lines")
    if priced.coupon is not None:
        used = await session.execute(
            update(MemberCoupon)
            .where(
                MemberCoupon.id == priced.coupon.member_coupon_id,
                MemberCoupon.member_id == order.member_id,
                MemberCoupon.status == MemberCouponStatus.AVAILABLE,
            )
            .values(status=MemberCouponStatus.USED, used_order_id=order.id, used_at=at)
            .execution_options(synchronize_session=False)
        )
        if rowcount(used) != 1:
            raise DomainError(ErrorCode.COUPON_USED, "This coupon has been used.", "couponId")
    rows = [
        OrderPromotion(
            order_id=order.id,
            store_id=order.store_id,
            member_id=order.member_id,
            campaign_id=source if rule != "COUPON" else None,
            coupon_template_id=source if rule == "COUPON" else None,
            member_coupon_id=priced.coupon.member_coupon_id if rule == "COUPON" and priced.coupon else None,
            discount=amount,
        )
        for (rule, source), amount in priced.discounts_by_source().items()
    ]
    session.add_all(rows)
    await session.flush()


async def release(session: AsyncSession, order: Order) -> None:
    """An unpaid order is cancelled: its flash-sale units and its coupon go back."""
    lines = (await session.scalars(select(OrderLine).where(OrderLine.order_id == order.id))).all()
    for line in lines:
        for a in line.adjustments:
            if a.get("rule") != "FLASH_SALE" or a.get("source_id") is None or order.member_id is None:
                continue
            item = await session.scalar(
                select(CampaignItem).where(
                    CampaignItem.campaign_id == a["source_id"], CampaignItem.sku_id == line.sku_id
                )
            )
            if item is None:
                continue
            await session.execute(
                update(CampaignItem).where(CampaignItem.id == item.id).values(sold=CampaignItem.sold - line.quantity)
            )
            await session.execute(
                update(CampaignBuyer)
                .where(CampaignBuyer.item_id == item.id, CampaignBuyer.member_id == order.member_id)
                .values(bought=CampaignBuyer.bought - line.quantity)
            )
    await give_back_coupon(session, order, when_valid_at=None)


async def give_back_coupon(session: AsyncSession, order: Order, *, when_valid_at: datetime | None) -> bool:
    """The order's coupon returns to the wallet (on a refund: only if still valid at `when_valid_at`)."""
    stmt = update(MemberCoupon).where(
        MemberCoupon.used_order_id == order.id, MemberCoupon.status == MemberCouponStatus.USED
    )
    if when_valid_at is not None:
        stmt = stmt.where(MemberCoupon.valid_until > when_valid_at)
    result: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
        stmt.values(status=MemberCouponStatus.AVAILABLE, used_order_id=None, used_at=None).execution_options(
            synchronize_session=False
        )
    )
    return result.rowcount > 0


COUNTED = [s for s in OrderStatus if s not in (OrderStatus.CREATED, OrderStatus.CANCELLED)]


async def effect_of(
    session: AsyncSession, viewer: Viewer, *, campaign_id: int | None, coupon_template_id: int | None
) -> list[dict[str, Any]]:
    """The effect of one campaign or one coupon the viewer can see (`effect`)."""
    if (campaign_id is None) == (coupon_template_id is None):
        raise DomainError(ErrorCode.INVALID_INPUT, "Name a campaign or a coupon.", "campaignId")
    if campaign_id is not None:
        campaign = await session.scalar(select(Campaign).where(Campaign.id == campaign_id, visible_campaigns(viewer)))
        if campaign is None:
            raise DomainError(ErrorCode.NOT_FOUND, "No such campaign.", "campaignId")
    else:
        await require_visible(session, viewer, CouponTemplate, [coupon_template_id or 0], "couponTemplateId")
    return await effect(session, viewer, campaign_id=campaign_id, coupon_template_id=coupon_template_id)


async def effect(
    session: AsyncSession, viewer: Viewer, *, campaign_id: int | None = None, coupon_template_id: int | None = None
) -> list[dict[str, Any]]:
    """Overall (store None) then per store: orders, sales, discount cost, members reached; coupons add
    issued, claimed and redeemed. A store sees its own row only."""
    if not (viewer.can(Perm.MARKETING_MANAGE) or viewer.can(Perm.REPORT_VIEW)):
        raise AccessDenied()
    source = (
        OrderPromotion.campaign_id == campaign_id
        if campaign_id is not None
        else OrderPromotion.coupon_template_id == coupon_template_id
    )
    where = [source, Order.status.in_(COUNTED)]
    if not viewer.is_hq:
        where.append(OrderPromotion.store_id == viewer.store_id)
    per_order = (
        select(
            OrderPromotion.order_id,
            OrderPromotion.store_id,
            OrderPromotion.member_id,
            func.sum(OrderPromotion.discount).label("discount"),
            func.max(Order.subtotal - Order.discount_total).label("sales"),
        )
        .join(Order, Order.id == OrderPromotion.order_id)
        .where(*where)
        .group_by(OrderPromotion.order_id, OrderPromotion.store_id, OrderPromotion.member_id)
        .subquery()
    )
    figures = (
        func.count(),
        func.coalesce(func.sum(per_order.c.sales), 0),
        func.coalesce(func.sum(per_order.c.discount), 0),
        func.count(func.distinct(per_order.c.member_id)),
    )
    by_store = select(per_order.c.store_id, *figures).group_by(per_order.c.store_id).order_by(per_order.c.store_id)

    def row(store_id: int | None, r: Any) -> dict[str, Any]:
        return {
            "store_id": store_id,
            "orders": int(r[0]),
            "sales": int(r[1]),
            "discount": int(r[2]),
            "members": int(r[3]),
        }

    rows = [row(r[0], r[1:]) for r in (await session.execute(by_store)).all()]
    overall = row(None, (await session.execute(select(*figures))).one())
    if coupon_template_id is not None:
        wallet = select(
            func.count(),
            func.count().filter(MemberCoupon.source == CouponSource.CLAIM),
            func.count().filter(MemberCoupon.status == MemberCouponStatus.USED),
        ).where(MemberCoupon.template_id == coupon_template_id)
        issued, claimed, redeemed = (await session.execute(wallet)).one()
        if viewer.is_hq:
            overall |= {"issued": int(issued), "claimed": int(claimed), "redeemed": int(redeemed)}
        for r in (overall, *rows) if not viewer.is_hq else rows:
            r["redeemed"] = r["orders"]
    return [overall, *rows]

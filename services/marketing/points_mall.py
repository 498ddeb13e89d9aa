"""Points mall (积分商城): points for a coupon, or for an item picked up in a store, while the mall's stock lasts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Channel,
    CouponSource,
    CouponTemplate,
    Fulfilment,
    Member,
    MemberCoupon,
    Order,
    OrderStatus,
    PointsMallItem,
    Sku,
    Store,
    StoreListing,
    StoreStatus,
    utcnow,
)
from services.access.permissions import Perm
from services.access.scope import Viewer, require
from services.inventory import stock
from services.marketing import coupons
from services.members import points
from services.orders.lifecycle import mark_paid  # an exchanged item is an order, paid in points
from services.orders.lines import add_lines
from services.platform import idempotency
from services.platform.errors import AccessDenied, DomainError, ErrorCode
from services.platform.validation import text


async def create_item(
    session: AsyncSession,
    viewer: Viewer,
    *,
    name: str,
    points_cost: int,
    stock_count: int,
    sku_id: int | None,
    coupon_template_id: int | None,
) -> PointsMallItem:
    require(viewer, Perm.MARKETING_MANAGE)
    if not viewer.is_hq:
        raise AccessDenied("HQ runs the points mall.")
    if (sku_id is None) == (coupon_template_id is None):
        raise DomainError(ErrorCode.INVALID_INPUT, "Exchange for an item or for a coupon.", "skuId")
    if not 0 < points_cost <= 10_000_000 or not 0 < stock_count <= 1_000_000:
        raise DomainError(ErrorCode.INVALID_INPUT, "Points and stock are positive.", "pointsCost")
    if sku_id is not None and await session.get(Sku, sku_id) is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such SKU.", "skuId")
    if coupon_template_id is not None and await session.get(CouponTemplate, coupon_template_id) is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such coupon.", "couponTemplateId")
    item = PointsMallItem(
        name=text(name, "name", max_len=64),
        points_cost=points_cost,
        sku_id=sku_id,
        coupon_template_id=coupon_template_id,
        stock=stock_count,
        redeemed=0,
        active=True,
    )
    session.add(item)
    await session.flush()
    return item


@dataclass(frozen=True)
class Exchanged:
    coupon: MemberCoupon | None
    order: Order | None


async def active_items(session: AsyncSession) -> list[PointsMallItem]:
    """What the points mall offers now (public)."""
    rows = await session.scalars(
        select(PointsMallItem).where(PointsMallItem.active.is_(True)).order_by(PointsMallItem.id)
    )
    return list(rows.all())


async def exchange(
    session: AsyncSession,
    viewer: Viewer,
    *,
    item_id: int,
    store_id: int | None,
    idempotency_key: str,
    now: datetime | None = None,
) -> Exchanged:
    """Spend points on a mall item; an item comes as a paid pickup order at the chosen store."""
    if not viewer.is_member or viewer.member_id is None:
        raise AccessDenied("Only members exchange points.")
    member_id, now = viewer.member_id, now or utcnow()
    scope = f"mall:member:{member_id}"

    async def load(stored: dict[str, Any]) -> Exchanged:
        coupon = await session.get(MemberCoupon, stored["coupon_id"]) if stored.get("coupon_id") else None
        order = await session.get(Order, stored["order_id"]) if stored.get("order_id") else None
        return Exchanged(coupon, order)

    def save(done: Exchanged) -> dict[str, Any]:
        return {"coupon_id": done.coupon.id if done.coupon else None, "order_id": done.order.id if done.order else None}

    return await idempotency.once(
        session,
        scope=scope,
        key=idempotency_key,
        request={"item": item_id, "store": store_id},
        save=save,
        load=load,
        run=lambda: _exchange(session, member_id, item_id, store_id, idempotency_key, now),
    )


async def _exchange(
    session: AsyncSession, member_id: int, item_id: int, store_id: int | None, idempotency_key: str, now: datetime
) -> Exchanged:
    item = await session.get(PointsMallItem, item_id)
    if item is None or not item.active:
        raise DomainError(ErrorCode.NOT_FOUND, "No such item in the points mall.", "itemId")
    took = await session.execute(
        update(PointsMallItem)
        .where(PointsMallItem.id == item.id, PointsMallItem.redeemed < PointsMallItem.stock)
        .values(redeemed=PointsMallItem.redeemed + 1)
        .execution_options(synchronize_session=False)
    )
    if took.rowcount != 1:  # type: ignore[attr-defined]
        raise DomainError(ErrorCode.MALL_ITEM_EXHAUSTED, "This item has all been exchanged.", "itemId")
    await points.redeem(session, member_id, item.points_cost, store_id=store_id, ref_type="mall", ref_id=item.id)
    result = Exchanged(None, None)
    if item.coupon_template_id is not None:
        template = await session.get(CouponTemplate, item.coupon_template_id)
        assert template is not None
        if not await coupons.grant(session, template, Member.id == member_id, CouponSource.MALL, now):
            raise DomainError(ErrorCode.COUPON_LIMIT_REACHED, "You already hold as many as allowed.", "itemId")
        coupon = await session.scalar(
            select(MemberCoupon)
            .where(MemberCoupon.template_id == template.id, MemberCoupon.member_id == member_id)
            .order_by(MemberCoupon.seq.desc())
            .limit(1)
        )
        result = Exchanged(coupon, None)
    else:
        assert item.sku_id is not None
        result = Exchanged(None, await _item_order(session, member_id, item, store_id, idempotency_key, now))
    return result


async def _item_order(
    session: AsyncSession, member_id: int, item: PointsMallItem, store_id: int | None, key: str, now: datetime
) -> Order:
    assert item.sku_id is not None
    store = await session.get(Store, store_id) if store_id is not None else None
    if store is None or store.status is not StoreStatus.OPEN:
        raise DomainError(ErrorCode.STORE_NOT_OPEN, "Choose an open store to pick the item up.", "storeId")
    price = await session.scalar(
        select(StoreListing.price).where(
            StoreListing.store_id == store.id, StoreListing.sku_id == item.sku_id, StoreListing.on_shelf.is_(True)
        )
    )
    if price is None:
        raise DomainError(ErrorCode.NOT_FOUND, "This store does not carry this item.", "storeId")
    order = Order(
        store_id=store.id,
        member_id=member_id,
        channel=Channel.MINI_PROGRAM,
        fulfilment=Fulfilment.PICKUP,
        status=OrderStatus.CREATED,
        client_order_id=f"mall{member_id}:{key}",
        subtotal=price,
        discount_total=price,
        payable=0,
    )
    session.add(order)
    await session.flush()
    exchanged = {"rule": "POINTS_MALL", "amount": -price, "reason": f"积分兑换 {item.points_cost}", "source_id": None}
    line = {"sku_id": item.sku_id, "quantity": 1, "list_price": price, "unit_price": 0, "line_total": 0}
    await add_lines(session, order.id, [line | {"adjustments": [exchanged]}])
    await stock.reserve(session, store.id, [stock.Line(item.sku_id, 1)], stock.Ref("order", order.id))
    await session.flush()
    return await mark_paid(session, order.id, now)

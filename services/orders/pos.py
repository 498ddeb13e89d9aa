"""POS checkout (收银): a counter sale that completes at once. A retried tablet request creates nothing twice."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Channel,
    Fulfilment,
    Order,
    OrderStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Store,
    utcnow,
)
from services.access.permissions import Perm
from services.access.scope import Viewer, require_store
from services.cards import cards as member_cards
from services.marketing import promotions
from services.members import points, stored_value
from services.members.accounts import may_see
from services.orders.lifecycle import mark_paid
from services.orders.lines import add_lines, priced_rows
from services.orders.states import actor, move
from services.org.settings import get_settings
from services.org.stores import require_selling
from services.platform import idempotency
from services.platform.errors import DomainError, ErrorCode
from services.pricing.engine import CartLine, quote

COUNTER_METHODS = {PaymentMethod.CASH, PaymentMethod.CARD, PaymentMethod.WECHAT_PAY, PaymentMethod.ALIPAY}


@dataclass(frozen=True)
class Tender:
    method: PaymentMethod
    amount: int
    reference: str | None = None  # the card slip or the scanned payment code's transaction id


@dataclass(frozen=True)
class Checkout:
    store_id: int
    client_order_id: str
    lines: Sequence[CartLine]
    tenders: Sequence[Tender]
    member_id: int | None = None
    use_points: int = 0
    coupon_id: int | None = None
    card_ids: Sequence[int] = ()  # the member's cards (卡项) to pay eligible lines, in the order handed over


async def checkout(session: AsyncSession, viewer: Viewer, request: Checkout, *, now: datetime | None = None) -> Order:
    """Price, take payment by any mix of methods, move stock and points, and complete the sale."""
    require_store(viewer, request.store_id, Perm.ORDER_CHECKOUT)
    now = now or utcnow()
    scope = f"pos:{request.store_id}"
    fingerprint: dict[str, Any] = {
        "lines": sorted((x.sku_id, x.quantity) for x in request.lines),
        "member": request.member_id,
        "tenders": sorted((t.method.value, t.amount) for t in request.tenders),
        "points": request.use_points,
        "coupon": request.coupon_id,
    }
    if request.card_ids:
        fingerprint["cards"] = list(request.card_ids)

    async def load(stored: dict[str, Any]) -> Order:
        existing = await session.get(Order, int(stored["order_id"]))
        assert existing is not None
        return existing

    return await idempotency.once(
        session,
        scope=scope,
        key=request.client_order_id,
        request=fingerprint,
        run=lambda: _sell(session, viewer, request, now),
        save=lambda o: {"order_id": o.id},
        load=load,
    )


def _check_tenders(request: Checkout, total: int, points_value: int) -> tuple[int, int]:
    """The tenders are positive, add up to the total (with the points), and stored value has a member.

    Returns the counter amount (cash, cards, wallets) and the stored value amount.
    """
    counter = sum(t.amount for t in request.tenders if t.method in COUNTER_METHODS)
    sv = sum(t.amount for t in request.tenders if t.method is PaymentMethod.STORED_VALUE)
    if any(t.amount <= 0 or t.method is PaymentMethod.POINTS for t in request.tenders):
        raise DomainError(ErrorCode.INVALID_INPUT, "Tenders are positive amounts; points go in usePoints.", "tenders")
    if counter + sv + points_value != total:
        raise DomainError(ErrorCode.INVALID_INPUT, f"The tenders must add up to {total - points_value} fen.", "tenders")
    if sv and request.member_id is None:
        raise DomainError(ErrorCode.INVALID_INPUT, "Stored value needs a member.", "tenders")
    return counter, sv


async def _take_payments(
    session: AsyncSession, order: Order, request: Checkout, points_value: int, sv: int, now: datetime
) -> None:
    """Redeem the points, spend the stored value, and record a succeeded payment for each."""
    member_id = request.member_id
    if request.use_points and member_id is not None:
        await points.redeem(
            session, member_id, request.use_points, store_id=order.store_id, ref_type="order", ref_id=order.id
        )
        session.add(
            Payment(
                order_id=order.id,
                method=PaymentMethod.POINTS,
                amount=points_value,
                status=PaymentStatus.SUCCEEDED,
                store_id=order.store_id,
                paid_at=now,
            )
        )
    if sv and member_id is not None:
        await stored_value.spend(
            session, member_id, sv, store_id=order.store_id, ref_type="order", ref_id=order.id, at=now
        )
    add_tender_payments(session, order, request.tenders, now)


def add_tender_payments(session: AsyncSession, order: Order, tenders: Sequence[Tender], now: datetime) -> None:
    """A succeeded payment on the order for each counter tender (cash, card, ...), at the order's store."""
    for tender in tenders:
        session.add(
            Payment(
                order_id=order.id,
                method=tender.method,
                amount=tender.amount,
                store_id=order.store_id,
                status=PaymentStatus.SUCCEEDED,
                provider_txn=tender.reference,
                paid_at=now,
            )
        )


async def _sell(session: AsyncSession, viewer: Viewer, request: Checkout, now: datetime) -> Order:
    store = await session.get(Store, request.store_id)
    if store is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such store.", "storeId")
    require_selling(store)
    member_id = request.member_id
    if member_id is not None and not await may_see(session, viewer, member_id, Perm.MEMBER_LOOKUP):
        raise DomainError(ErrorCode.NOT_FOUND, "Identify the member at this store first.", "memberId")
    priced = await quote(
        session,
        store_id=request.store_id,
        lines=request.lines,
        member_id=member_id,
        at=now,
        coupon_id=request.coupon_id,
        suggest_coupon=False,
        card_ids=request.card_ids,
    )
    if request.use_points and (member_id is None or request.use_points > priced.points_usable):
        raise DomainError(ErrorCode.INVALID_INPUT, f"At most {priced.points_usable} points may be used.", "usePoints")
    points_value = request.use_points * (await get_settings(session)).point_value_fen
    # Cards pay their lines first (a tender, not a discount); the tenders and points pay the rest.
    counter, sv = _check_tenders(request, priced.total - priced.card_paid, points_value)
    order = Order(
        store_id=request.store_id,
        member_id=member_id,
        staff_id=viewer.staff_id,
        channel=Channel.POS,
        fulfilment=Fulfilment.IN_STORE,
        status=OrderStatus.CREATED,
        client_order_id=f"pos:{request.client_order_id}",
        subtotal=priced.subtotal,
        discount_total=priced.discount_total,
        points_used=request.use_points,
        points_value=points_value,
        stored_value_used=sv,
        payable=counter,
    )
    session.add(order)
    await session.flush()
    await add_lines(session, order.id, priced_rows(priced.lines, handed_over=True))
    await promotions.claim(session, order, priced, now)
    await _take_payments(session, order, request, points_value, sv, now)
    await member_cards.use_for_order(session, priced.card_uses, store_id=order.store_id, order_id=order.id, at=now)
    await session.flush()
    await mark_paid(session, order.id, now, reserved=False)
    return await move(session, order.id, OrderStatus.COMPLETED, by=actor(viewer), completed_at=now)

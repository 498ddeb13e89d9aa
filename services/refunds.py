"""Refunds: full or by line, undoing exactly what the sale did, in one transaction.

Money goes back by method in this order: what was paid at the counter or through the provider, then
stored value (to the same lots), then points. Points the sale earned are taken back in proportion to
the money refunded (never below zero: points already spent stay spent). Goods that came back return
to stock. A line is never refunded beyond what was sold.
"""

from __future__ import annotations

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    FactEventKind,
    Member,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    PointsEntry,
    PointsKind,
    Refund,
    utcnow,
)
from services import facts, points, promotions, stock, stored_value
from services.errors import DomainError, ErrorCode
from services.order_states import move
from services.payments import PaymentProvider
from services.scope import Viewer, require_store
from services.settings import get_settings
from services.validation import optional_text

REFUNDABLE = {
    OrderStatus.PAID,
    OrderStatus.PREPARING,
    OrderStatus.READY,
    OrderStatus.DELIVERING,
    OrderStatus.COMPLETED,
    OrderStatus.PARTIALLY_REFUNDED,
}
EXTERNAL = (PaymentMethod.WECHAT_PAY, PaymentMethod.ALIPAY, PaymentMethod.CARD, PaymentMethod.CASH)


async def refund_order(
    session: AsyncSession, viewer: Viewer, providers: dict[str, PaymentProvider], *, order_id: int,
    quantities: dict[int, int] | None, restock: bool, reason: str | None,
) -> Refund:  # fmt: skip
    order = await session.get(Order, order_id, with_for_update=True)
    if order is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such order.", "id")
    require_store(viewer, order.store_id, "order.refund")
    if order.status not in REFUNDABLE:
        raise DomainError(ErrorCode.INVALID_TRANSITION, f"A {order.status.value} order cannot be refunded.", "id")
    lines = list(
        (await session.scalars(select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.id))).all()
    )
    taking: list[tuple[OrderLine, int]] = []
    for line in lines:
        left = line.quantity - line.refunded
        qty = left if quantities is None else quantities.get(line.sku_id, 0)
        if not 0 <= qty <= left:
            raise DomainError(ErrorCode.INVALID_INPUT, f"At most {left} of this line can be refunded.", "lines")
        if qty:
            taking.append((line, qty))
    if not taking:
        raise DomainError(ErrorCode.INVALID_INPUT, "Nothing to refund.", "lines")
    goods = sum(_paid_for(line, qty) for line, qty in taking)
    # The delivery fee goes back with the last of the goods.
    taken = {line.id: qty for line, qty in taking}
    last = all(line.refunded + taken.get(line.id, 0) == line.quantity for line in lines)
    amount = goods + (order.delivery_fee if last else 0)

    succeeded = select(Payment).where(Payment.order_id == order.id, Payment.status == PaymentStatus.SUCCEEDED)
    payments = list((await session.scalars(succeeded)).all())
    earlier = list((await session.scalars(select(Refund).where(Refund.order_id == order.id))).all())
    refunded = {m: sum(r.by_method.get(m.value, 0) for r in earlier) for m in PaymentMethod}
    by_method: dict[str, int] = {}
    remaining = amount
    for method in (*EXTERNAL, PaymentMethod.STORED_VALUE, PaymentMethod.POINTS):
        paid = sum(p.amount for p in payments if p.method is method)
        take = min(paid - refunded[method], remaining)
        if take > 0:
            by_method[method.value] = take
            remaining -= take
    if remaining > 0:
        raise DomainError(ErrorCode.INVALID_INPUT, "More than was paid would be refunded.", "lines")

    refunded_lines = [{"skuId": x.sku_id, "quantity": q, "amount": _paid_for(x, q)} for x, q in taking]
    refund = Refund(order_id=order.id, store_id=order.store_id, staff_id=viewer.staff_id, amount=amount,
                    by_method=by_method, lines=refunded_lines, restocked=restock,
                    reason=optional_text(reason, "reason", max_len=255))  # fmt: skip
    session.add(refund)
    await session.flush()
    if by_method.get("STORED_VALUE"):
        await stored_value.refund(session, ref_type="order", ref_id=order.id, amount=by_method["STORED_VALUE"],
                                  store_id=order.store_id)  # fmt: skip
    if order.member_id is not None:
        refund.points_taken_back = await _settle_points(session, order, by_method)
        # Lifetime spend counted the goods (points value included, delivery fee not); the refunded goods leave it.
        spend_left = case((Member.total_spend > goods, Member.total_spend - goods), else_=0)
        await session.execute(update(Member).where(Member.id == order.member_id).values(total_spend=spend_left))
    for line, qty in taking:
        line.refunded += qty
    if restock:
        await stock.return_to_stock(session, order.store_id, [stock.Line(x.sku_id, q) for x, q in taking],
                                    stock.Ref("refund", refund.id, viewer.staff_id))  # fmt: skip
    await session.flush()
    done = all(line.refunded == line.quantity for line in lines)
    facts.record(session, FactEventKind.REFUND, order.id, refund.id)
    order = await move(session, order.id, OrderStatus.REFUNDED if done else OrderStatus.PARTIALLY_REFUNDED)
    # The provider is asked last, once every write above has succeeded; the refund id makes a retry harmless.
    if done:  # the whole order came back: its coupon returns to the wallet if it is still valid
        await promotions.give_back_coupon(session, order, when_valid_at=utcnow())
    for method in EXTERNAL:
        take = by_method.get(method.value, 0)
        provider_payment = next((p for p in payments if p.method is method and p.provider), None)
        if take and provider_payment is not None:
            provider = providers.get(provider_payment.provider or "")
            if provider is None:  # never record money as returned that was not
                raise DomainError(ErrorCode.PAYMENT_REFUND_REFUSED, "The payment provider is not available.")
            # The refund's id at the provider is the order's n-th refund, not our row id: a retry after a lost
            # answer (our transaction rolled back) asks for the same refund again, and the provider does it once.
            refund_ref = f"R{order.id}-{len(earlier) + 1}"
            provider.refund(provider_ref=provider_payment.provider_ref or "", refund_ref=refund_ref, amount=take)
    return refund


def _paid_for(line: OrderLine, qty: int) -> int:
    """What `qty` more units of a line cost the member: its total (order discounts included) shared by unit,
    counted cumulatively so the last unit takes the rounding and the whole line refunds to the fen."""
    return line.line_total * (line.refunded + qty) // line.quantity - line.line_total * line.refunded // line.quantity


async def _settle_points(session: AsyncSession, order: Order, by_method: dict[str, int]) -> int:
    """Give back redeemed points refunded as POINTS; take back earned points in proportion to money refunded."""
    assert order.member_id is not None
    settings = await get_settings(session)
    back = by_method.get("POINTS", 0) // settings.point_value_fen
    if back:
        await points.give_back(session, order.member_id, back, ref_type="order", ref_id=order.id)
    earned = int(await session.scalar(
        select(func.coalesce(func.sum(PointsEntry.points), 0))
        .where(PointsEntry.ref_type == "order", PointsEntry.ref_id == order.id, PointsEntry.kind == PointsKind.EARN)
    ) or 0)  # fmt: skip
    base = order.payable + order.stored_value_used - order.delivery_fee
    money_back = sum(by_method.get(m.value, 0) for m in (*EXTERNAL, PaymentMethod.STORED_VALUE))
    take = min(earned * money_back // base, earned) if base else 0
    return await points.take_back(session, order.member_id, take, ref_type="order", ref_id=order.id) if take else 0

"""Refunds: full or by line, undoing exactly what the sale did, in one transaction, once per idempotency key.

The amount: what the refunded units cost the member (order discounts included, shared by unit so the last
unit takes the rounding); the delivery fee goes back with the last of the goods.

The rule a cashier can explain (退款按原支付方式比例退回): each tender of the sale (cash, card, WeChat Pay,
Alipay, stored value, points) gets back its share of the refund in proportion to what it paid and has not yet
had back (on a first refund: in proportion to what it paid). Shares are rounded down to the fen and the fen
left over go one each to the tenders with the largest remainders (ties: cash, card, WeChat Pay, Alipay, stored
value, points), the same largest-remainder split that shares an order discount across lines. Points go back
in whole points: fen that would be a fraction of a point go to the other tenders. The cashier may instead say
which tenders get what (they must add up to the refund, each within what that tender has left). Example: a
sale paid 2,800 cash + 3,000 stored value; a 1,757 refund returns 848 cash and 909 stored value.

Stored value goes back to the lots it came from; points redeemed come back; points the sale earned are taken
back in proportion to the money refunded (never below zero: points already spent stay spent). Goods that came
back return to stock. A line is never refunded beyond what was sold, no tender beyond what it paid. When the
whole order has come back, its coupon returns to the wallet if still valid.

`preview` and `refund_order` share `plan`, so what the cashier is shown is what is done.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    FactEventKind,
    Member,
    MemberCoupon,
    MemberCouponStatus,
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
from services.access.permissions import Perm
from services.access.scope import SYSTEM, Viewer, require_store
from services.analytics import facts
from services.cards import cards as member_cards
from services.inventory import stock
from services.marketing import promotions
from services.members import points, stored_value
from services.orders.states import actor, move
from services.org.settings import get_settings
from services.platform import idempotency, jobs
from services.platform.errors import DomainError, ErrorCode
from services.platform.payments import PaymentProvider
from services.platform.validation import optional_text
from services.pricing.engine import allocate

REFUNDABLE = {
    OrderStatus.PAID,
    OrderStatus.PREPARING,
    OrderStatus.READY,
    OrderStatus.DELIVERING,
    OrderStatus.COMPLETED,
    OrderStatus.PARTIALLY_REFUNDED,
}
EXTERNAL = (PaymentMethod.CASH, PaymentMethod.CARD, PaymentMethod.WECHAT_PAY, PaymentMethod.ALIPAY)
# The tenders in the order ties are broken and results listed.
TENDERS = (*EXTERNAL, PaymentMethod.STORED_VALUE, PaymentMethod.POINTS)


@dataclass(frozen=True)
class RefundRequest:
    order_id: int
    quantities: Mapping[int, int] | None = None  # sku id -> units; None: everything left
    restock: bool = True
    reason: str | None = None
    tenders: Mapping[PaymentMethod, int] | None = None  # the cashier's choice; None: the proportional rule

    def fingerprint(self) -> dict[str, object]:
        return {
            "order": self.order_id,
            "restock": self.restock,
            "reason": self.reason,
            "lines": None if self.quantities is None else sorted(self.quantities.items()),
            "tenders": None if self.tenders is None else sorted((m.value, a) for m, a in self.tenders.items()),
        }


@dataclass
class RefundPlan:
    """What a refund will give back: computed once, shown by the preview, done by refund_order."""

    order: Order
    lines: list[OrderLine]
    taking: list[tuple[OrderLine, int]]
    goods: int
    amount: int
    by_method: dict[str, int]
    points_given_back: int
    points_taken_back: int
    coupon_returned: bool
    completes: bool
    payments: list[Payment] = field(default_factory=list)
    earlier_refunds: int = 0
    to_cards: dict[int, int] = field(default_factory=dict)  # sku id -> fen of goods going back to the cards

    @property
    def refunded_lines(self) -> list[dict[str, int]]:
        return [{"skuId": x.sku_id, "quantity": q, "amount": paid_for(x, q), "lineId": x.id} for x, q in self.taking]


def split(amount: int, left: Mapping[PaymentMethod, int], point_value: int = 1) -> dict[PaymentMethod, int]:
    """The rule: `amount` over the tenders in proportion to what each has `left`, largest remainder.

    No tender gets more than it has left; the shares add up to `amount` when the tenders hold that much.
    Points get whole points: their fraction goes to the other tenders (largest remainder again), or when
    those have no room left, the points' share grows to the next whole point and theirs shrinks.
    """
    methods = [m for m in TENDERS if left.get(m, 0) > 0]
    shares = dict(zip(methods, allocate(amount, [left[m] for m in methods]), strict=True))
    odd = shares.get(PaymentMethod.POINTS, 0) % point_value
    others = [m for m in methods if m is not PaymentMethod.POINTS]
    room = [left[m] - shares[m] for m in others]
    if odd and sum(room) >= odd:  # the fraction of a point goes to the other tenders
        shares[PaymentMethod.POINTS] -= odd
        for m, extra in zip(others, allocate(odd, room), strict=True):
            shares[m] += extra
    elif (
        odd
        and sum(shares[m] for m in others)
        >= point_value - odd
        <= left[PaymentMethod.POINTS] - shares[PaymentMethod.POINTS]
    ):  # or, when they have no room, a whole point more comes from them
        up = point_value - odd
        shares[PaymentMethod.POINTS] += up
        for m, less in zip(others, allocate(up, [shares[m] for m in others]), strict=True):
            shares[m] -= less
    return {m: s for m, s in shares.items() if s}


async def plan(session: AsyncSession, viewer: Viewer, request: RefundRequest, *, lock: bool) -> RefundPlan:
    """Check the request and work out what goes back where; writes nothing."""
    order = await session.get(Order, request.order_id, with_for_update=lock, populate_existing=lock)
    if order is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such order.", "id")
    require_store(viewer, order.store_id, Perm.ORDER_REFUND)
    if order.status not in REFUNDABLE:
        raise DomainError(ErrorCode.INVALID_TRANSITION, f"A {order.status.value} order cannot be refunded.", "id")
    lines = list(
        (await session.scalars(select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.id))).all()
    )
    taking = _taking(lines, request.quantities)
    goods = sum(paid_for(line, qty) for line, qty in taking)
    taken = {line.id: qty for line, qty in taking}
    completes = all(line.refunded + taken.get(line.id, 0) == line.quantity for line in lines)
    to_cards = await _to_cards(session, order.id, taking)
    amount = goods - sum(to_cards.values()) + (order.delivery_fee if completes else 0)

    payments, earlier, held = await held_tenders(session, order.id)
    if amount > sum(max(v, 0) for v in held.values()):
        raise DomainError(ErrorCode.INVALID_INPUT, "More than was paid would be refunded.", "lines")
    settings = await get_settings(session)
    if request.tenders is None:
        shares = split(amount, held, settings.point_value_fen)
    else:
        shares = _chosen(request, held, amount)
    by_method = {m.value: shares[m] for m in TENDERS if shares.get(m)}
    given_back = by_method.get(PaymentMethod.POINTS.value, 0) // settings.point_value_fen
    taken_back = await points_to_take_back(session, order, by_method, given_back) if order.member_id else 0
    coupon = completes and await _coupon_comes_back(session, order, utcnow())
    return RefundPlan(
        order=order,
        lines=lines,
        taking=taking,
        goods=goods,
        amount=amount,
        by_method=by_method,
        points_given_back=given_back,
        points_taken_back=taken_back,
        coupon_returned=coupon,
        completes=completes,
        payments=payments,
        earlier_refunds=earlier,
        to_cards=to_cards,
    )


def _taking(lines: list[OrderLine], quantities: Mapping[int, int] | None) -> list[tuple[OrderLine, int]]:
    """The units each line gives back: everything left, or the SKUs' quantities asked for, oldest line first (an
    exchange may have sold a SKU the order already had, on a line of its own)."""
    if quantities is not None and set(quantities) - {x.sku_id for x in lines}:
        raise DomainError(ErrorCode.INVALID_INPUT, "That item is not on this order.", "lines")
    wanted = dict(quantities or {})
    taking: list[tuple[OrderLine, int]] = []
    for line in lines:
        left = line.quantity - line.refunded
        qty = left if quantities is None else min(max(wanted.get(line.sku_id, 0), 0), left)
        wanted[line.sku_id] = wanted.get(line.sku_id, 0) - qty
        if qty:
            taking.append((line, qty))
    over = next((k for k in quantities or {} if wanted[k] != 0), None)
    if over is not None:
        most = sum(x.quantity - x.refunded for x in lines if x.sku_id == over)
        raise DomainError(ErrorCode.INVALID_INPUT, f"At most {most} of this line can be refunded.", "lines")
    if not taking:
        raise DomainError(ErrorCode.INVALID_INPUT, "Nothing to refund.", "lines")
    return taking


async def held_tenders(session: AsyncSession, order_id: int) -> tuple[list[Payment], int, dict[PaymentMethod, int]]:
    """The order's succeeded payments, how many refunds it had, and what each tender still holds (paid less given
    back): what the refund rule shares a refund over."""
    succeeded = select(Payment).where(Payment.order_id == order_id, Payment.status == PaymentStatus.SUCCEEDED)
    payments = list((await session.scalars(succeeded.order_by(Payment.id))).all())
    earlier = list((await session.scalars(select(Refund.by_method).where(Refund.order_id == order_id))).all())
    held = {
        m: sum(x.amount for x in payments if x.method is m) - sum(r.get(m.value, 0) for r in earlier) for m in TENDERS
    }
    return payments, len(earlier), held


def _chosen(request: RefundRequest, left: Mapping[PaymentMethod, int], amount: int) -> dict[PaymentMethod, int]:
    """The cashier's own split: every tender within what it has left, adding up to the refund."""
    assert request.tenders is not None
    for method, value in request.tenders.items():
        if value <= 0 or value > left.get(method, 0):
            raise DomainError(
                ErrorCode.INVALID_INPUT,
                f"{method.value} can give back at most {max(left.get(method, 0), 0)} fen.",
                "tenders",
            )
    if sum(request.tenders.values()) != amount:
        raise DomainError(ErrorCode.INVALID_INPUT, f"The tenders must add up to the refund, {amount} fen.", "tenders")
    return dict(request.tenders)


async def preview(session: AsyncSession, viewer: Viewer, request: RefundRequest) -> RefundPlan:
    """What refund_order would give back for this request now, to show the cashier before it is made."""
    return await plan(session, viewer, request, lock=False)


async def refund_order(
    session: AsyncSession,
    viewer: Viewer,
    providers: dict[str, PaymentProvider],
    *,
    order_id: int,
    quantities: Mapping[int, int] | None,
    restock: bool,
    reason: str | None,
) -> Refund:
    """A refund the system makes (a failed group buy, an account deletion), each guarded by its own state change;
    a person's refund goes through `refund_order_once` with their idempotency key."""
    request = RefundRequest(order_id=order_id, quantities=quantities, restock=restock, reason=reason)
    return await _make(session, viewer, providers, request)


async def schedule_refund(
    session: AsyncSession, order_id: int, *, reason: str, due_at: datetime, restock: bool = True
) -> None:
    """A refund of the whole order as a job of its own (once per order and reason)."""
    await jobs.enqueue(
        session,
        kind="orders.refund",
        dedupe_key=f"orders.refund:{order_id}:{reason}"[:128],
        due_at=due_at,
        payload={"order_id": order_id, "reason": reason, "restock": restock},
    )


@jobs.job("orders.refund")
async def _refund_job(session: AsyncSession, payload: dict[str, Any], env: jobs.JobEnv) -> None:
    """Give a whole order's money back (through its provider): run apart from the expiry that asked for it, so a
    provider that does not answer delays only the money, retried with backoff and listed when it gives up."""
    order = await session.get(Order, int(payload["order_id"]), with_for_update=True)
    if order is None or order.status not in REFUNDABLE:
        return  # refunded (or never paid) already: nothing to give back twice
    await refund_order(
        session,
        SYSTEM,
        dict(env.providers),
        order_id=order.id,
        quantities=None,
        restock=bool(payload.get("restock", True)),
        reason=payload.get("reason"),
    )


async def refund_order_once(
    session: AsyncSession,
    viewer: Viewer,
    providers: dict[str, PaymentProvider],
    request: RefundRequest,
    *,
    idempotency_key: str,
) -> Refund:
    """Make the refund once per key: a replay returns the first refund and moves nothing; the same key with
    another request is IDEMPOTENCY_KEY_REUSED."""
    order = await session.get(Order, request.order_id)
    if order is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such order.", "id")
    require_store(viewer, order.store_id, Perm.ORDER_REFUND)

    async def load(stored: dict[str, object]) -> Refund:
        refund = await session.get(Refund, int(str(stored["refund_id"])))
        assert refund is not None
        return refund

    return await idempotency.once(
        session,
        scope=f"refundOrder:{order.store_id}",
        key=idempotency_key,
        request=request.fingerprint(),
        run=lambda: _make(session, viewer, providers, request),
        save=lambda r: {"refund_id": r.id},
        load=load,
    )


async def _make(
    session: AsyncSession, viewer: Viewer, providers: dict[str, PaymentProvider], request: RefundRequest
) -> Refund:
    p = await plan(session, viewer, request, lock=True)
    order, by_method = p.order, p.by_method
    refund = Refund(
        order_id=order.id,
        store_id=order.store_id,
        staff_id=viewer.staff_id,
        amount=p.amount,
        by_method=by_method,
        lines=p.refunded_lines,
        restocked=request.restock,
        points_given_back=p.points_given_back,
        reason=optional_text(request.reason, "reason", max_len=255),
    )
    session.add(refund)
    await session.flush()
    if p.to_cards:
        await member_cards.return_to_cards(session, order.id, p.to_cards, order.store_id)
    if by_method.get("STORED_VALUE"):
        await stored_value.refund(
            session, ref_type="order", ref_id=order.id, amount=by_method["STORED_VALUE"], store_id=order.store_id
        )
    if order.member_id is not None:
        if p.points_given_back:
            await points.give_back(session, order.member_id, p.points_given_back, ref_type="order", ref_id=order.id)
        if p.points_taken_back:
            refund.points_taken_back = await points.take_back(
                session, order.member_id, p.points_taken_back, ref_type="order", ref_id=order.id
            )
        # Lifetime spend counted the goods (points value included, delivery fee not); the refunded goods leave it.
        money_goods = p.goods - sum(p.to_cards.values())  # spend counted money, not what cards paid
        spend_left = case((Member.total_spend > money_goods, Member.total_spend - money_goods), else_=0)
        await session.execute(update(Member).where(Member.id == order.member_id).values(total_spend=spend_left))
    for line, qty in p.taking:
        line.refunded += qty
    if request.restock:
        await stock.return_to_stock(
            session,
            order.store_id,
            [stock.Line(x.sku_id, q) for x, q in p.taking],
            stock.Ref("refund", refund.id, viewer.staff_id),
        )
    await session.flush()
    facts.record(session, FactEventKind.REFUND, order.id, refund.id)
    target = OrderStatus.REFUNDED if p.completes else OrderStatus.PARTIALLY_REFUNDED
    order = await move(session, order.id, target, by=actor(viewer))
    if p.completes:  # the whole order came back: its coupon returns to the wallet if it is still valid
        refund.coupon_returned = await promotions.give_back_coupon(session, order, when_valid_at=utcnow())
    await session.flush()
    # The provider is asked last, once every write above has succeeded.
    _ask_providers(providers, p)
    return refund


def _ask_providers(providers: dict[str, PaymentProvider], p: RefundPlan) -> None:
    ask_providers(providers, p.order.id, p.payments, p.by_method, p.earlier_refunds + 1)


def ask_providers(
    providers: dict[str, PaymentProvider],
    order_id: int,
    payments: list[Payment],
    by_method: Mapping[str, int],
    nth: int,
) -> None:
    """Ask each provider that took money for the order to give its share of the order's `nth` refund back."""
    for method in EXTERNAL:
        take = by_method.get(method.value, 0)
        provider_payment = next((x for x in payments if x.method is method and x.provider), None)
        if take and provider_payment is not None:
            provider = providers.get(provider_payment.provider or "")
            if provider is None:  # never record money as returned that was not
                raise DomainError(ErrorCode.PAYMENT_REFUND_REFUSED, "The payment provider is not available.")
            # The refund's id at the provider is the order's n-th refund, not our row id: a retry after a lost
            # answer (our transaction rolled back) asks for the same refund again, and the provider does it once.
            refund_ref = f"R{order_id}-{nth}"
            provider.refund(provider_ref=provider_payment.provider_ref or "", refund_ref=refund_ref, amount=take)


def paid_for(line: OrderLine, qty: int) -> int:
    """What `qty` more units of a line cost the member: its total (order discounts included) shared by unit,
    counted cumulatively so the last unit takes the rounding and the whole line refunds to the fen."""
    return line.line_total * (line.refunded + qty) // line.quantity - line.line_total * line.refunded // line.quantity


def refundable_quantity(line: OrderLine, order_status: OrderStatus) -> int:
    """Units of a line that can still be refunded: none unless the order is in a refundable state."""
    return line.quantity - line.refunded if order_status in REFUNDABLE else 0


async def points_to_take_back(
    session: AsyncSession, order: Order, by_method: Mapping[str, int], given_back: int
) -> int:
    """Earned points in proportion to the money refunded, at most what the member will hold."""
    assert order.member_id is not None
    earned = int(
        await session.scalar(
            select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
                PointsEntry.ref_type == "order", PointsEntry.ref_id == order.id, PointsEntry.kind == PointsKind.EARN
            )
        )
        or 0
    )
    base = order.payable + order.stored_value_used - order.delivery_fee
    money_back = sum(by_method.get(m.value, 0) for m in (*EXTERNAL, PaymentMethod.STORED_VALUE))
    take = min(earned * money_back // base, earned) if base > 0 else 0
    if take <= 0:
        return 0
    balance = int(await session.scalar(select(Member.points_balance).where(Member.id == order.member_id)) or 0)
    return min(take, balance + given_back)


async def _coupon_comes_back(session: AsyncSession, order: Order, at: datetime) -> bool:
    used = await session.scalar(
        select(func.count())
        .select_from(MemberCoupon)
        .where(
            MemberCoupon.used_order_id == order.id,
            MemberCoupon.status == MemberCouponStatus.USED,
            MemberCoupon.valid_until > at,
        )
    )
    return bool(used)


async def _to_cards(session: AsyncSession, order_id: int, taking: list[tuple[OrderLine, int]]) -> dict[int, int]:
    """What of the returned units' price goes back to the cards (卡项) that paid for them: cards first, then money."""
    card_paid = await member_cards.paid_for_order(session, order_id)
    back = {line.sku_id: min(paid_for(line, qty), card_paid.get(line.sku_id, 0)) for line, qty in taking}
    return {sku: fen for sku, fen in back.items() if fen > 0}

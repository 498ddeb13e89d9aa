"""Exchanges at the counter (换货): some lines of an order come back, new lines are sold, in one transaction, once
per idempotency key.

How it is kept, so that every ledger stays the sum of its rows:

- The new lines are sold on the SAME order (`order_lines.exchange_id` names the exchange), priced by the price engine
  now (the member's prices and running campaigns; no coupon: the order's coupon stays used, its discount is inside
  the returned lines' value). What comes back is worth what those units cost the member (`refunds.paid_for`: order
  discounts included, the last unit takes the rounding), and its lines count them as refunded.
- The difference (sold less returned) is settled at once: above zero the member pays it with counter tenders or
  stored value (their member code shown), recorded as payments on the order, so the settlement counts it as
  taking; below zero it goes back by the refund rule (`refunds.split` over what each tender still holds), recorded
  as a refund row without lines (`reason` "exchange"), so the settlement counts it as a refund. The order's
  tenders then still hold exactly what its remaining lines are worth: a later refund gives back the new lines too.
- Stock: the returned units come back to the shelf and the new units leave it, each once, through the stock ledger
  (ref "exchange"). Points: a paid difference earns points as a sale does; a refunded one takes earned points back
  in proportion, and gives back redeemed points that the rule returns. The member's lifetime spend moves by the
  difference.
- The order's status does not change (the member keeps goods of it); its timeline shows an EXCHANGE step (with the
  difference), next to the PAYMENT or REFUND of the difference.
- The sales report folds one EXCHANGE event: the returned units as refunds (with the cost their line kept), the new
  lines as sales (quantity, list-price GMV, net, cost), in the order's channel, on the exchange's day; it is not a
  new order. The settlement lists the day's exchanges (count, returned, sold, paid, refunded) beside the takings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Exchange,
    FactEventKind,
    Member,
    Order,
    OrderLine,
    OrderStatus,
    PaymentMethod,
    Product,
    Refund,
    Sku,
    Store,
    utcnow,
)
from services.access.permissions import Perm
from services.access.scope import Viewer, acted_in, require
from services.analytics import facts
from services.inventory import stock
from services.marketing import promotions
from services.members import points, stored_value
from services.members.code import MemberCodes
from services.orders import refunds
from services.orders.lines import add_lines, priced_rows
from services.orders.listing import order_no
from services.orders.pos import COUNTER_METHODS, Tender, add_tender_payments
from services.org.settings import get_settings
from services.platform import idempotency
from services.platform.errors import DomainError, ErrorCode
from services.platform.payments import PaymentProvider
from services.pricing.engine import CartLine, Quote, quote

# An exchange needs goods the member has: an order handed over (or partly refunded after that).
EXCHANGEABLE = {OrderStatus.COMPLETED, OrderStatus.PARTIALLY_REFUNDED}


@dataclass(frozen=True)
class ExchangeRequest:
    order_id: int
    returns: Mapping[int, int]  # order line id -> units coming back
    new_lines: Sequence[CartLine]
    tenders: Sequence[Tender] = ()
    member_code: str | None = None  # the rotating code the member showed at the counter, if they did

    def fingerprint(self) -> dict[str, object]:
        return {
            "order": self.order_id,
            "returns": sorted(self.returns.items()),
            "new": sorted((x.sku_id, x.quantity) for x in self.new_lines),
            "tenders": sorted((t.method.value, t.amount) for t in self.tenders),
            "member": self.member_code,
        }


@dataclass
class Exchanged:
    """An exchange as made: its record, the order after it, the lines it sold, and the refund of a difference."""

    exchange: Exchange
    order: Order
    sold: list[OrderLine]
    refund: Refund | None = None


@dataclass(frozen=True)
class ReceiptLine:
    sku_id: int
    name: str
    quantity: int  # negative: came back
    amount: int  # fen; negative: credited


@dataclass(frozen=True)
class Receipt:
    """The one slip the member takes away: what came back, what went out, and how the difference was settled."""

    number: str
    at: datetime
    lines: list[ReceiptLine]
    difference: int
    settled: list[tuple[str, int]] = field(default_factory=list)  # method, fen (negative: given back)

    @property
    def text(self) -> str:
        rows = [f"换货 EXCHANGE {self.number}", self.at.isoformat(timespec="seconds")]
        rows += [f"{x.name} x{x.quantity} {x.amount / 100:.2f}" for x in self.lines]
        rows.append(f"差额 DIFFERENCE {self.difference / 100:.2f}")
        rows += [f"{method} {amount / 100:.2f}" for method, amount in self.settled]
        return "\n".join(rows)


async def exchange_at_counter(
    session: AsyncSession,
    viewer: Viewer,
    providers: dict[str, PaymentProvider],
    codes: MemberCodes,
    request: ExchangeRequest,
    *,
    idempotency_key: str,
) -> Exchanged:
    """Make the exchange once per key: a replay returns the first exchange and moves nothing; the same key with
    another request is IDEMPOTENCY_KEY_REUSED. Staff who sell and refund, in the order's own store only: another
    store's order is NOT_FOUND, as an id that does not exist."""
    require(viewer, Perm.ORDER_CHECKOUT)
    require(viewer, Perm.ORDER_REFUND)
    order = await session.get(Order, request.order_id)
    if order is None or not all(viewer.sees_store(order.store_id, p) for p in (Perm.ORDER_CHECKOUT, Perm.ORDER_REFUND)):
        raise DomainError(ErrorCode.NOT_FOUND, "No such order.", "orderId")
    acted_in(order.store_id)

    async def load(stored: dict[str, object]) -> Exchanged:
        return await _done(session, int(str(stored["exchange_id"])))

    return await idempotency.once(
        session,
        scope=f"exchange:{order.store_id}",
        key=idempotency_key,
        request=request.fingerprint(),
        run=lambda: _exchange(session, viewer, providers, request, _shown_member(codes, request.member_code)),
        save=lambda d: {"exchange_id": d.exchange.id},
        load=load,
    )


def _shown_member(codes: MemberCodes, code: str | None) -> int | None:
    """The member whose code was shown (checked once, when the exchange is made: a replay needs no fresh code)."""
    if not code:
        return None
    try:
        return codes.verify(code)
    except DomainError as refused:
        raise DomainError(refused.code, refused.message, "memberCode") from refused


async def _done(session: AsyncSession, exchange_id: int) -> Exchanged:
    exchange = await session.get(Exchange, exchange_id)
    assert exchange is not None
    order = await session.get(Order, exchange.order_id)
    assert order is not None
    sold = (await session.scalars(select(OrderLine).where(OrderLine.exchange_id == exchange_id))).all()
    refund = await session.get(Refund, exchange.refund_id) if exchange.refund_id is not None else None
    return Exchanged(exchange, order, list(sold), refund)


def _returning(lines: Sequence[OrderLine], returns: Mapping[int, int]) -> list[tuple[OrderLine, int]]:
    """The order's lines coming back and how many units of each: on the order, within what is left of them."""
    by_id = {x.id: x for x in lines}
    if not returns:
        raise DomainError(ErrorCode.INVALID_INPUT, "Say which lines come back.", "returnLines")
    taking = []
    for line_id, qty in returns.items():
        line = by_id.get(line_id)
        if line is None:
            raise DomainError(ErrorCode.INVALID_INPUT, "That line is not on this order.", "returnLines")
        left = line.quantity - line.refunded
        if not 0 < qty <= left:
            raise DomainError(ErrorCode.INVALID_INPUT, f"At most {left} of this line can come back.", "returnLines")
        taking.append((line, qty))
    return taking


async def _priced(session: AsyncSession, order: Order, request: ExchangeRequest, now: datetime) -> Quote:
    """The new lines as the store sells them now to this member: listed, in stock, at today's prices."""
    if not request.new_lines or any(x.quantity <= 0 for x in request.new_lines):
        raise DomainError(ErrorCode.INVALID_INPUT, "Say what goes out, in positive quantities.", "newLines")
    try:
        priced = await quote(
            session,
            store_id=order.store_id,
            lines=request.new_lines,
            member_id=order.member_id,
            at=now,
            suggest_coupon=False,
        )
    except DomainError as refused:
        if (refused.field or "").startswith("lines"):
            raise DomainError(refused.code, refused.message, "newLines") from refused
        raise
    if not all(x.available for x in priced.lines):
        raise DomainError(ErrorCode.OUT_OF_STOCK, "Not enough stock for the new items.", "newLines")
    return priced


def _check_tenders(request: ExchangeRequest, order: Order, shown: int | None, difference: int) -> tuple[int, int]:
    """The member pays a positive difference exactly, by counter tenders or their stored value (code shown);
    nothing is tendered when the difference goes back. Returns the counter part and the stored value part."""
    if any(t.amount <= 0 or t.method not in (*COUNTER_METHODS, PaymentMethod.STORED_VALUE) for t in request.tenders):
        raise DomainError(
            ErrorCode.INVALID_INPUT, "Tenders are positive cash, card, wallet or stored value.", "tenders"
        )
    if difference <= 0:
        if request.tenders:
            raise DomainError(ErrorCode.INVALID_INPUT, "Nothing to pay: the difference goes back.", "tenders")
        return 0, 0
    counter = sum(t.amount for t in request.tenders if t.method in COUNTER_METHODS)
    sv = sum(t.amount for t in request.tenders if t.method is PaymentMethod.STORED_VALUE)
    if counter + sv != difference:
        raise DomainError(ErrorCode.INVALID_INPUT, f"The tenders must add up to {difference} fen.", "tenders")
    if sv and (order.member_id is None or shown != order.member_id):
        raise DomainError(ErrorCode.INVALID_INPUT, "Stored value needs the order's member's code.", "memberCode")
    return counter, sv


async def _exchange(
    session: AsyncSession,
    viewer: Viewer,
    providers: dict[str, PaymentProvider],
    request: ExchangeRequest,
    shown: int | None,
) -> Exchanged:
    now = utcnow()
    order = await session.get(Order, request.order_id, with_for_update=True, populate_existing=True)
    assert order is not None  # checked by exchange_at_counter, in this transaction
    if order.status not in EXCHANGEABLE:
        raise DomainError(ErrorCode.INVALID_TRANSITION, f"A {order.status.value} order cannot be exchanged.", "orderId")
    if shown is not None and shown != order.member_id:
        raise DomainError(ErrorCode.INVALID_INPUT, "This member code is not the order's member.", "memberCode")
    lines = (await session.scalars(select(OrderLine).where(OrderLine.order_id == order.id))).all()
    taking = _returning(lines, request.returns)
    priced = await _priced(session, order, request, now)
    returned_value = sum(refunds.paid_for(line, qty) for line, qty in taking)
    difference = priced.goods_total - returned_value
    counter, sv = _check_tenders(request, order, shown, difference)
    exchange = Exchange(
        order_id=order.id,
        store_id=order.store_id,
        staff_id=viewer.staff_id,
        returned=[
            {
                "lineId": x.id,
                "skuId": x.sku_id,
                "quantity": q,
                "amount": refunds.paid_for(x, q),
                "unitCost": x.unit_cost,
            }
            for x, q in taking
        ],
        returned_value=returned_value,
        sold_value=priced.goods_total,
        difference=difference,
        paid_by_method={},
        created_at=now,
    )
    session.add(exchange)
    await session.flush()
    sold = await _move_goods(session, viewer, order, exchange, taking, priced, now)
    refund = None
    if difference > 0:
        await _take_difference(session, order, exchange, request.tenders, (counter, sv), now)
    elif difference < 0:
        refund = await _give_back(session, viewer, providers, order, exchange)
    await _member_spend(session, order, difference)
    facts.record(session, FactEventKind.EXCHANGE, order.id, exchange_id=exchange.id)
    await session.flush()
    return Exchanged(exchange, order, sold, refund)


async def _move_goods(
    session: AsyncSession,
    viewer: Viewer,
    order: Order,
    exchange: Exchange,
    taking: list[tuple[OrderLine, int]],
    priced: Quote,
    now: datetime,
) -> list[OrderLine]:
    """The new units leave the shelf and the returned ones come back, each once; the new lines join the order."""
    ref = stock.Ref("exchange", exchange.id, viewer.staff_id)
    await stock.sell(session, order.store_id, [stock.Line(x.sku_id, x.quantity) for x in priced.lines], ref)
    await stock.return_to_stock(session, order.store_id, [stock.Line(x.sku_id, q) for x, q in taking], ref)
    for line, qty in taking:
        line.refunded += qty
    rows = [row | {"exchange_id": exchange.id} for row in priced_rows(priced.lines, handed_over=True)]
    sold = await add_lines(session, order.id, rows)
    await promotions.claim(session, order, priced, now)
    return sold


async def _take_difference(
    session: AsyncSession,
    order: Order,
    exchange: Exchange,
    tenders: Sequence[Tender],
    parts: tuple[int, int],
    now: datetime,
) -> None:
    """The member pays the difference: payments on the order (the day's takings), stored value from their lots,
    and the points a sale of that much earns."""
    counter, sv = parts
    if sv and order.member_id is not None:
        await stored_value.spend(
            session, order.member_id, sv, store_id=order.store_id, ref_type="order", ref_id=order.id, at=now
        )
    paid: dict[str, int] = {}
    for tender in tenders:
        paid[tender.method.value] = paid.get(tender.method.value, 0) + tender.amount
    add_tender_payments(session, order, tenders, now)
    exchange.paid_by_method = paid
    order.payable += counter
    order.stored_value_used += sv
    if order.member_id is not None:
        exchange.points_earned = await points.earn(
            session, order.member_id, counter + sv, store_id=order.store_id, ref_type="order", ref_id=order.id, at=now
        )


async def _give_back(
    session: AsyncSession, viewer: Viewer, providers: dict[str, PaymentProvider], order: Order, exchange: Exchange
) -> Refund:
    """The difference goes back by the refund rule, as a refund of the order without lines (the goods were
    exchanged): tenders in proportion to what each still holds, points settled, providers asked last."""
    amount = -exchange.difference
    payments, earlier, held = await refunds.held_tenders(session, order.id)
    settings = await get_settings(session)
    shares = refunds.split(amount, held, settings.point_value_fen)
    by_method = {m.value: shares[m] for m in refunds.TENDERS if shares.get(m)}
    given_back = by_method.get(PaymentMethod.POINTS.value, 0) // settings.point_value_fen
    taken_back = await refunds.points_to_take_back(session, order, by_method, given_back) if order.member_id else 0
    refund = Refund(
        order_id=order.id,
        store_id=order.store_id,
        staff_id=viewer.staff_id,
        amount=amount,
        by_method=by_method,
        lines=[],
        restocked=False,
        points_given_back=given_back,
        reason="exchange",
        created_at=exchange.created_at,
    )
    session.add(refund)
    await session.flush()
    if by_method.get(PaymentMethod.STORED_VALUE.value):
        await stored_value.refund(
            session, ref_type="order", ref_id=order.id, amount=by_method["STORED_VALUE"], store_id=order.store_id
        )
    if order.member_id is not None and given_back:
        await points.give_back(session, order.member_id, given_back, ref_type="order", ref_id=order.id)
    if order.member_id is not None and taken_back:
        refund.points_taken_back = await points.take_back(
            session, order.member_id, taken_back, ref_type="order", ref_id=order.id
        )
    exchange.refund_id = refund.id
    exchange.points_taken_back = refund.points_taken_back
    await session.flush()
    refunds.ask_providers(providers, order.id, payments, by_method, earlier + 1)
    return refund


async def _member_spend(session: AsyncSession, order: Order, difference: int) -> None:
    """The member's lifetime spend moves by the difference (never below zero)."""
    if order.member_id is None or not difference:
        return
    spend = case((Member.total_spend + difference > 0, Member.total_spend + difference), else_=0)
    await session.execute(update(Member).where(Member.id == order.member_id).values(total_spend=spend))


async def receipt(session: AsyncSession, done: Exchanged) -> Receipt:
    """The exchange's receipt: returned lines (negative), new lines, the difference and how it was settled."""
    ex = done.exchange
    sku_ids = {int(x["skuId"]) for x in ex.returned} | {x.sku_id for x in done.sold}
    names = {
        int(k): " ".join([p, *(str(v) for v in (spec or {}).values())])
        for k, p, spec in (
            await session.execute(
                select(Sku.id, Product.name, Sku.spec)
                .join(Product, Product.id == Sku.product_id)
                .where(Sku.id.in_(sku_ids))
            )
        ).all()
    }
    lines = [
        ReceiptLine(int(x["skuId"]), names.get(int(x["skuId"]), ""), -int(x["quantity"]), -int(x["amount"]))
        for x in ex.returned
    ] + [ReceiptLine(x.sku_id, names.get(x.sku_id, ""), x.quantity, x.line_total) for x in done.sold]
    if done.refund is not None:
        settled = [(m, -a) for m, a in done.refund.by_method.items()]
    else:
        settled = sorted(ex.paid_by_method.items())
    count = await session.scalar(
        select(func.count()).select_from(Exchange).where(Exchange.order_id == ex.order_id, Exchange.id <= ex.id)
    )
    zone = await session.scalar(select(Store.timezone).where(Store.id == ex.store_id))
    at = ex.created_at.astimezone(ZoneInfo(zone)) if zone else ex.created_at  # the store's local time, as printed
    return Receipt(f"{order_no(ex.order_id)}-X{count}", at, lines, ex.difference, settled)

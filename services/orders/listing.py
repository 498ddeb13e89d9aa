"""统一订单管理: the one order list. HQ sees every store's orders, filtered; a store's staff the same list, their
store's only; the same filtered list as CSV for HQ; and each order's timeline (who moved it, paid, refunded, when).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Channel,
    Exchange,
    Fulfilment,
    Member,
    Order,
    OrderLine,
    OrderStatus,
    OrderStatusChange,
    Payment,
    PaymentStatus,
    Refund,
    Store,
)
from services.access.permissions import Perm
from services.access.pii import mask_phone
from services.access.scope import Viewer, require, require_store, restrict
from services.orders.states import PICKUP
from services.platform.config import CHAIN_TZ
from services.platform.errors import AccessDenied, DomainError, ErrorCode
from services.platform.pagination import AnySelect, Page, keyset_page
from services.platform.validation import business_day

CSV_MAX_ROWS = 5000
CSV_COLUMNS = (
    "order_no",
    "store_code",
    "city",
    "created_at_local",
    "channel",
    "fulfilment",
    "status",
    "member_phone",
    "items",
    "total_fen",
    "paid_fen",
    "refunded_fen",
)
PAID_STATES = (PaymentStatus.SUCCEEDED,)


@dataclass(frozen=True)
class OrderFilter:
    """What HQ (or a store) narrows its order list by; every part is optional and they all apply together.
    Days are whole days in the chain's time zone, both ends included; totals are in fen, both ends included."""

    store_ids: Sequence[int] | None = None
    city: str | None = None
    since: date | None = None
    until: date | None = None
    statuses: Sequence[OrderStatus] | None = None
    channel: Channel | None = None
    fulfilment: Fulfilment | None = None
    member_id: int | None = None
    min_total: int | None = None
    max_total: int | None = None
    has_refund: bool | None = None


def order_total() -> ColumnElement[int]:
    """An order's total: what its goods and delivery came to after discounts, however it was paid."""
    return Order.payable + Order.points_value + Order.stored_value_used


def total_of(o: Order) -> int:
    """`order_total()` of one loaded order."""
    return o.payable + o.points_value + o.stored_value_used


def order_no(order_id: int) -> str:
    """The number on receipts and in the provider's records."""
    return f"ORD{order_id:012d}"


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=CHAIN_TZ)


def _check(f: OrderFilter) -> None:
    for day, name in ((f.since, "filter.from"), (f.until, "filter.to")):
        if day is not None:
            business_day(day, name)
    if f.since is not None and f.until is not None and f.since > f.until:
        raise DomainError(ErrorCode.INVALID_INPUT, "The first day comes after the last.", "filter.from")
    if f.min_total is not None and f.max_total is not None and f.min_total > f.max_total:
        raise DomainError(ErrorCode.INVALID_INPUT, "The smallest total is above the largest.", "filter.minTotal")


def filtered(viewer: Viewer, f: OrderFilter) -> AnySelect:
    """The orders the viewer may see that match `f`: HQ every store's, a store's staff their own. A store id the
    viewer may not see matches nothing, exactly like an id that does not exist. Members are refused."""
    require(viewer, Perm.ORDER_READ)
    _check(f)
    stmt = restrict(select(Order), viewer, Order.store_id, Perm.ORDER_READ)
    if f.store_ids is not None:
        stmt = stmt.where(Order.store_id.in_(list(f.store_ids)))
    if f.city is not None:
        stmt = stmt.where(Order.store_id.in_(select(Store.id).where(Store.city == f.city.strip())))
    if f.since is not None:
        stmt = stmt.where(Order.created_at >= _start_of(f.since))
    if f.until is not None:
        stmt = stmt.where(Order.created_at < _start_of(f.until + timedelta(days=1)))
    if f.statuses is not None:  # an empty list matches nothing
        stmt = stmt.where(Order.status.in_(list(f.statuses)))
    if f.channel is not None:
        stmt = stmt.where(Order.channel == f.channel)
    if f.fulfilment is not None:
        stmt = stmt.where(Order.fulfilment == f.fulfilment)
    if f.member_id is not None:
        stmt = stmt.where(Order.member_id == f.member_id)
    if f.min_total is not None:
        stmt = stmt.where(order_total() >= f.min_total)
    if f.max_total is not None:
        stmt = stmt.where(order_total() <= f.max_total)
    if f.has_refund is not None:
        refunded = exists(select(Refund.id).where(Refund.order_id == Order.id))
        stmt = stmt.where(refunded if f.has_refund else ~refunded)
    return stmt


async def list_orders(
    session: AsyncSession,
    viewer: Viewer,
    f: OrderFilter,
    *,
    store_id: int | None = None,
    first: int | None,
    after: str | None,
) -> Page[Order]:
    """One page of the filtered orders, newest first (at most 100). `store_id` is the tablet's older way to name its
    store: another store's is refused (FORBIDDEN), where `f.store_ids` naming it just matches nothing."""
    stmt = filtered(viewer, f)
    if store_id is not None:
        require_store(viewer, store_id, Perm.ORDER_READ)
        stmt = stmt.where(Order.store_id == store_id)
    return await keyset_page(session, stmt, Order.id, first=first, after=after, descending=True)


async def _sums(session: AsyncSession, stmt: Any) -> dict[int, int]:
    return {int(k): int(v or 0) for k, v in (await session.execute(stmt)).all()}


async def orders_csv(session: AsyncSession, viewer: Viewer, f: OrderFilter) -> str:
    """The filtered list as CSV, newest first, for HQ holding order.read (a store's staff: FORBIDDEN). Members show
    as a masked phone; more than CSV_MAX_ROWS orders are refused: narrow the filter (e.g. fewer days)."""
    require(viewer, Perm.ORDER_READ)
    if not viewer.is_hq:
        raise AccessDenied("The order export is HQ's.")
    stmt = filtered(viewer, f).add_columns(Store.code, Store.city).join(Store, Store.id == Order.store_id)
    rows = (await session.execute(stmt.order_by(Order.id.desc()).limit(CSV_MAX_ROWS + 1))).all()
    if len(rows) > CSV_MAX_ROWS:
        raise DomainError(
            ErrorCode.INVALID_INPUT, f"More than {CSV_MAX_ROWS} orders: narrow the filter (e.g. fewer days).", "filter"
        )
    ids = [o.id for o, _, _ in rows]
    items = await _sums(
        session,
        select(OrderLine.order_id, func.sum(OrderLine.quantity))
        .where(OrderLine.order_id.in_(ids))
        .group_by(OrderLine.order_id),
    )
    paid = await _sums(
        session,
        select(Payment.order_id, func.sum(Payment.amount))
        .where(Payment.order_id.in_(ids), Payment.status.in_(PAID_STATES))
        .group_by(Payment.order_id),
    )
    refunded = await _sums(
        session,
        select(Refund.order_id, func.sum(Refund.amount)).where(Refund.order_id.in_(ids)).group_by(Refund.order_id),
    )
    member_ids = {o.member_id for o, _, _ in rows if o.member_id is not None}
    phones = {
        m: mask_phone(prefix=p, last4=l4)
        for m, p, l4 in (
            await session.execute(
                select(Member.id, Member.phone_prefix, Member.phone_last4).where(Member.id.in_(member_ids))
            )
        ).all()
    }
    return to_csv(
        [
            order_no(o.id),
            code,
            city,
            o.created_at.astimezone(CHAIN_TZ).strftime("%Y-%m-%d %H:%M:%S"),
            o.channel.value,
            o.fulfilment.value,
            o.status.value,
            (phones.get(o.member_id) or "") if o.member_id is not None else "",
            items.get(o.id, 0),
            total_of(o),
            paid.get(o.id, 0),
            refunded.get(o.id, 0),
        ]
        for o, code, city in rows
    )


def to_csv(rows: Any) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(rows)
    return out.getvalue()


@dataclass(frozen=True)
class TimelineEntry:
    """One step of an order's life. `kind`: PLACED, STATUS (a move of the state machine), PICKUP (a hand-over at
    the counter, whole or partial), PAYMENT, REFUND, EXCHANGE (at the counter; `amount` the difference, negative when
    it went back). Who: a staff account, the member, or neither (the chain)."""

    kind: str
    at: datetime
    staff_id: int | None = None
    member_id: int | None = None
    status: OrderStatus | None = None
    from_status: OrderStatus | None = None
    amount: int | None = None
    method: str | None = None
    ref_id: int | None = None


def _placed(o: Order) -> TimelineEntry:
    by_member = o.channel is Channel.MINI_PROGRAM
    return TimelineEntry(
        "PLACED",
        o.created_at,
        staff_id=None if by_member else o.staff_id,
        member_id=o.member_id if by_member else None,
        status=OrderStatus.CREATED,
    )


async def timelines(session: AsyncSession, order_ids: Sequence[int]) -> list[list[TimelineEntry]]:
    """Each order's timeline, oldest first, in five statements for any number of orders. The ids come from a
    path that was already scoped (an order the viewer was shown); an unknown id has an empty timeline."""
    ids = list(order_ids)
    by_id = {o.id: o for o in (await session.scalars(select(Order).where(Order.id.in_(ids)))).all()}
    found: dict[int, list[TimelineEntry]] = defaultdict(list)
    for c in (await session.scalars(select(OrderStatusChange).where(OrderStatusChange.order_id.in_(ids)))).all():
        kind = PICKUP if c.via == PICKUP else "STATUS"
        found[c.order_id].append(
            TimelineEntry(kind, c.at, c.staff_id, c.member_id, c.to_status, c.from_status, ref_id=c.id)
        )
    for p in (await session.scalars(select(Payment).where(Payment.order_id.in_(ids)))).all():
        if p.paid_at is None or p.status not in PAID_STATES:
            continue
        order = by_id[p.order_id]
        online = order.channel is Channel.MINI_PROGRAM
        found[p.order_id].append(
            TimelineEntry(
                "PAYMENT",
                p.paid_at,
                staff_id=None if online else order.staff_id,
                member_id=order.member_id if online else None,
                amount=p.amount,
                method=p.method.value,
                ref_id=p.id,
            )
        )
    for r in (await session.scalars(select(Refund).where(Refund.order_id.in_(ids)))).all():
        found[r.order_id].append(
            TimelineEntry("REFUND", r.created_at, staff_id=r.staff_id, amount=r.amount, ref_id=r.id)
        )
    for x in (await session.scalars(select(Exchange).where(Exchange.order_id.in_(ids)))).all():
        found[x.order_id].append(
            TimelineEntry("EXCHANGE", x.created_at, staff_id=x.staff_id, amount=x.difference, ref_id=x.id)
        )
    # By time; at one instant a payment comes before the move it causes, a refund before its status change, an
    # exchange before the payment or refund of its difference.
    rank = {"EXCHANGE": 0, "PAYMENT": 1, "STATUS": 2, PICKUP: 2, "REFUND": 1}
    return [
        [_placed(by_id[i]), *sorted(found[i], key=lambda e: (e.at, rank[e.kind], e.ref_id or 0))] if i in by_id else []
        for i in ids
    ]

"""Settlement (日结): each store's business day, in the store's own time zone.

Takings by payment method, refunds by method, discounts, delivery fees, points value used, stored value
spent split into principal and bonus and by the store that issued it, stored value sold, and the net of
sales. HQ closes a day: its figures are frozen then and never recomputed; a later refund falls into the
day it happens.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    BalanceEntry,
    BalanceKind,
    CounterTopUp,
    Exchange,
    Order,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Refund,
    Settlement,
    Store,
)
from services.access.permissions import Perm
from services.access.scope import Viewer, acted_in, require_store
from services.cards import queries as card_queries
from services.platform.errors import AccessDenied, DomainError, ErrorCode
from services.platform.validation import business_day

COUNTER_TOP_UP_METHODS = (PaymentMethod.CASH, PaymentMethod.CARD, PaymentMethod.WECHAT_PAY, PaymentMethod.ALIPAY)


def day_bounds(store: Store, day: date) -> tuple[datetime, datetime]:
    """The UTC instants where the store's local day begins and ends."""
    tz = ZoneInfo(store.timezone)
    start = datetime.combine(day, time.min, tzinfo=tz)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


async def compute(session: AsyncSession, store: Store, day: date) -> dict[str, Any]:
    start, end = day_bounds(store, day)
    takings, top_up_takings = await _takings(session, store, start, end)
    refunds = await _refunds(session, store, start, end)
    late_in, late_out = await _late_payments(session, store, start, end, refunds)
    discounts, delivery_fees = (
        await session.execute(
            select(
                func.coalesce(func.sum(Order.discount_total), 0), func.coalesce(func.sum(Order.delivery_fee), 0)
            ).where(Order.store_id == store.id, Order.paid_at >= start, Order.paid_at < end)
        )
    ).one()
    (sold_principal, sold_bonus), by_issuer = await _stored_value(session, store, start, end)
    cards = await card_queries.day_figures(session, store.id, start, end)
    for name, amount in cards["saleTakings"].items():
        takings[name] += amount
    for name, amount in cards["refunds"].items():
        refunds[name] += amount
    money = [m.value for m in PaymentMethod if m is not PaymentMethod.POINTS]
    figures = {
        "storeId": store.id,
        "businessDay": day.isoformat(),
        # By method, counter top-ups included (so the CASH drawer reconciles); topUpTakings shows that part.
        "takings": takings,
        "topUpTakings": top_up_takings,
        "refunds": refunds,
        "latePayments": {"received": int(late_in), "refunded": int(late_out)},
        "discounts": int(discounts),
        "deliveryFees": int(delivery_fees),
        # Stored value this store sold (at the counter or online, in its name): money in, owed back as goods later.
        "storedValueSold": {"principal": int(sold_principal), "bonus": int(sold_bonus)},
        "pointsValueUsed": takings[PaymentMethod.POINTS.value] - refunds[PaymentMethod.POINTS.value],
        "storedValueByIssuer": dict(by_issuer),
        # Net of sales: money taken less money given back, without the stored value sold at the counter (a debt
        # to the member, in storedValueSold).
        "net": sum(takings[m] for m in money)
        - sum(refunds[m] for m in money)
        - sum(top_up_takings.values())
        - sum(cards["saleTakings"].values())
        + sum(cards["refunds"].values()),
    } | _cards_if_any(cards)
    exchanges = await _exchanges(session, store, start, end)
    if exchanges["count"]:  # only days with exchanges carry them, so days closed before exchanges still reconcile
        figures["exchanges"] = exchanges
    return figures


def _cards_if_any(cards: dict[str, Any]) -> dict[str, Any]:
    """Cards (卡项): sold here (a liability until used), their counter sales' and refunds' part of the takings and
    refunds, value used here by issuing store, and the day's clearing with the rest of the chain. Only on days
    with card activity, so a day closed before cards existed recomputes to the same frozen figures."""
    busy = cards["saleTakings"] or cards["refunds"] or cards["sold"] or cards["usedByIssuer"] or cards["clearing"]
    return {"cards": cards} if busy else {}


async def _takings(
    session: AsyncSession, store: Store, start: datetime, end: datetime
) -> tuple[dict[str, int], dict[str, int]]:
    """Money taken by method (payments, late ones too: the provider took that money today, then counter top-ups'
    tenders), and the counter top-ups' part of it."""
    takings: dict[str, int] = {m.value: 0 for m in PaymentMethod}
    taken = (PaymentStatus.SUCCEEDED, PaymentStatus.LATE, PaymentStatus.REFUNDED_LATE)
    for method, amount in (
        await session.execute(
            select(Payment.method, func.sum(Payment.amount))
            .where(
                Payment.store_id == store.id, Payment.status.in_(taken), Payment.paid_at >= start, Payment.paid_at < end
            )
            .group_by(Payment.method)
        )
    ).all():
        takings[method.value] = int(amount)
    top_up_takings: dict[str, int] = {m.value: 0 for m in PaymentMethod if m in COUNTER_TOP_UP_METHODS}
    for by_method in (
        await session.scalars(
            select(CounterTopUp.by_method).where(
                CounterTopUp.store_id == store.id, CounterTopUp.created_at >= start, CounterTopUp.created_at < end
            )
        )
    ).all():
        for name, amount in by_method.items():
            top_up_takings[name] += amount
            takings[name] += amount
    return takings, top_up_takings


async def _refunds(session: AsyncSession, store: Store, start: datetime, end: datetime) -> dict[str, int]:
    """Refunds made on the day, by method (late payments given back are added by _late_payments)."""
    refunds: dict[str, int] = {m.value: 0 for m in PaymentMethod}
    for row in (
        await session.scalars(
            select(Refund).where(Refund.store_id == store.id, Refund.created_at >= start, Refund.created_at < end)
        )
    ).all():
        for name, amount in row.by_method.items():
            refunds[name] += amount
    return refunds


async def _exchanges(session: AsyncSession, store: Store, start: datetime, end: datetime) -> dict[str, int]:
    """The day's exchanges at the counter: how many, what came back and went out, and the differences. A paid
    difference is in the takings (payments on the order), a refunded one in the refunds (a refund row)."""
    count, returned, sold, paid, refunded = (
        await session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(Exchange.returned_value), 0),
                func.coalesce(func.sum(Exchange.sold_value), 0),
                func.coalesce(func.sum(Exchange.difference).filter(Exchange.difference > 0), 0),
                func.coalesce(-func.sum(Exchange.difference).filter(Exchange.difference < 0), 0),
            ).where(Exchange.store_id == store.id, Exchange.created_at >= start, Exchange.created_at < end)
        )
    ).one()
    return {
        "count": int(count),
        "returned": int(returned),
        "sold": int(sold),
        "paid": int(paid),
        "refunded": int(refunded),
    }


async def _late_payments(
    session: AsyncSession, store: Store, start: datetime, end: datetime, refunds: dict[str, int]
) -> tuple[int, int]:
    """Late and duplicate payments: in on the day the provider took them, out on the day they went back (added to
    `refunds` by method). The amounts received and refunded."""
    late_in, late_out = (
        await session.execute(
            select(
                func.coalesce(func.sum(Payment.amount).filter(Payment.paid_at >= start, Payment.paid_at < end), 0),
                func.coalesce(
                    func.sum(Payment.amount).filter(Payment.refunded_at >= start, Payment.refunded_at < end), 0
                ),
            ).where(Payment.store_id == store.id, Payment.status.in_((PaymentStatus.LATE, PaymentStatus.REFUNDED_LATE)))
        )
    ).one()
    for method, amount in (
        await session.execute(
            select(Payment.method, func.sum(Payment.amount))
            .where(
                Payment.store_id == store.id,
                Payment.status == PaymentStatus.REFUNDED_LATE,
                Payment.refunded_at >= start,
                Payment.refunded_at < end,
            )
            .group_by(Payment.method)
        )
    ).all():
        refunds[method.value] += int(amount)
    return late_in, late_out


async def _stored_value(
    session: AsyncSession, store: Store, start: datetime, end: datetime
) -> tuple[tuple[int, int], dict[str, dict[str, int]]]:
    """Stored value the store sold (principal, bonus), and what members spent here by issuing store."""
    sold_principal, sold_bonus = (
        await session.execute(
            select(
                func.coalesce(func.sum(BalanceEntry.principal), 0), func.coalesce(func.sum(BalanceEntry.bonus), 0)
            ).where(
                BalanceEntry.store_id == store.id,
                BalanceEntry.kind == BalanceKind.TOP_UP,
                BalanceEntry.created_at >= start,
                BalanceEntry.created_at < end,
            )
        )
    ).one()
    by_issuer: dict[str, dict[str, int]] = {}
    spent = (
        select(BalanceEntry.issuer_store_id, func.sum(BalanceEntry.principal), func.sum(BalanceEntry.bonus))
        .where(
            BalanceEntry.store_id == store.id,
            BalanceEntry.kind.in_([BalanceKind.SPEND, BalanceKind.REFUND]),
            BalanceEntry.created_at >= start,
            BalanceEntry.created_at < end,
        )
        .group_by(BalanceEntry.issuer_store_id)
    )
    for issuer, principal, bonus in (await session.execute(spent)).all():
        # Net of refunds made the same day, signed as money the issuing store owes this one.
        by_issuer[str(issuer)] = {"principal": -int(principal), "bonus": -int(bonus)}
    return (sold_principal, sold_bonus), by_issuer


async def settlement(session: AsyncSession, viewer: Viewer, *, store_id: int, day: date) -> tuple[dict[str, Any], bool]:
    """The day's figures, and whether they are closed (frozen)."""
    require_store(viewer, store_id, Perm.SETTLEMENT_VIEW)
    business_day(day)
    store = await session.get(Store, store_id)
    if store is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such store.", "storeId")
    closed = await session.scalar(
        select(Settlement).where(Settlement.store_id == store_id, Settlement.business_day == day)
    )
    if closed is not None:
        return closed.figures, True
    return await compute(session, store, day), False


async def close(session: AsyncSession, viewer: Viewer, *, store_id: int, day: date, now: datetime) -> dict[str, Any]:
    """HQ closes a store's day once it is over; closing again changes nothing."""
    acted_in(store_id)  # the store named, even when refused
    require_store(viewer, store_id, Perm.SETTLEMENT_VIEW)
    if not viewer.is_hq:
        raise AccessDenied("HQ closes the day.")
    business_day(day)
    store = await session.get(Store, store_id)
    if store is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such store.", "storeId")
    if now < day_bounds(store, day)[1]:
        raise DomainError(ErrorCode.INVALID_INPUT, "A day can be closed only after it ends.", "date")
    existing = await session.scalar(
        select(Settlement).where(Settlement.store_id == store_id, Settlement.business_day == day)
    )
    if existing is not None:
        return existing.figures
    figures = await compute(session, store, day)
    session.add(Settlement(store_id=store_id, business_day=day, figures=figures, closed_by=viewer.staff_id))
    await session.flush()
    return figures

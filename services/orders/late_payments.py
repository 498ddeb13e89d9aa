"""Late and duplicate payments: money the provider took for an order that can no longer be paid by it.

A payer may pay in the seconds before an order expires or is cancelled (the provider's payment order is
closed then, but a payment already in flight still lands), or pay twice. The provider's notification for such
money is verified like any other, acknowledged (so the provider stops retrying), and recorded as a LATE payment
on the order; a job then gives it back through the provider, exactly once: the provider's refund id is the
payment's own (`L<payment id>`), so a retry after a lost answer asks for the same refund, and the payment turns
REFUNDED_LATE in the transaction that ran the job. Settlement counts the money in on the day it was taken and out
on the day it went back.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Order, Payment, PaymentStatus
from services.access.permissions import Perm
from services.access.scope import Viewer, require, restrict
from services.platform import jobs
from services.platform.errors import DomainError, ErrorCode
from services.platform.pagination import Page, keyset_page
from services.platform.payments import Notification, PaymentProvider

REFUND_JOB = "payments.refund_late"
CLOSE_JOB = "payments.close"
LATE_STATES = (PaymentStatus.LATE, PaymentStatus.REFUNDED_LATE)


async def record(
    session: AsyncSession, order: Order, original: Payment, provider: str, note: Notification, at: datetime
) -> Payment:
    """Record money taken for `order` that the order cannot keep, and schedule giving it back.

    The order's own payment row takes it when that row never took money (cancelled or pending); a second
    transaction on an out-trade-no that already took money (a duplicate) gets a row of its own.
    """
    if original.status in (PaymentStatus.PENDING, PaymentStatus.CANCELLED) and original.provider_txn is None:
        payment = original
    else:
        payment = Payment(
            order_id=order.id,
            method=original.method,
            amount=note.amount,
            provider=provider,
            provider_ref=original.provider_ref,
            store_id=order.store_id,
        )
        session.add(payment)
    payment.status, payment.provider_txn, payment.paid_at = PaymentStatus.LATE, note.provider_txn, at
    await session.flush()
    await jobs.enqueue(
        session, kind=REFUND_JOB, dedupe_key=f"{REFUND_JOB}:{payment.id}", due_at=at, payload={"payment_id": payment.id}
    )
    return payment


async def refund(
    session: AsyncSession, payment_id: int, providers: Mapping[str, PaymentProvider], now: datetime
) -> bool:
    """The job: give a late payment back through its provider once; anything else is left alone."""
    payment = await session.get(Payment, payment_id, with_for_update=True)
    if payment is None or payment.status is not PaymentStatus.LATE:
        return False
    provider = providers.get(payment.provider or "")
    if provider is None:  # never mark money as returned that was not: the job fails and is retried
        raise DomainError(ErrorCode.PAYMENT_PROVIDER_UNAVAILABLE, f"No provider {payment.provider!r} to refund at.")
    refund_id = provider.refund(
        provider_ref=payment.provider_ref or "", refund_ref=f"L{payment.id}", amount=payment.amount
    )
    payment.status, payment.refunded_at, payment.provider_refund_id = PaymentStatus.REFUNDED_LATE, now, refund_id
    return True


async def close_payments(
    session: AsyncSession, order_id: int, providers: Mapping[str, PaymentProvider] | None, at: datetime
) -> None:
    """An unpaid order ended: close its payment orders at the provider so the payer can no longer pay them.

    Closed at once when the caller has the providers and the provider answers; otherwise by a job, retried.
    A payment that got in before the close arrives as a late one and is given back.
    """
    pending = (
        await session.scalars(
            select(Payment).where(
                Payment.order_id == order_id,
                Payment.provider.is_not(None),
                Payment.status == PaymentStatus.CANCELLED,
                Payment.provider_txn.is_(None),
            )
        )
    ).all()
    for payment in pending:
        provider = (providers or {}).get(payment.provider or "")
        if provider is not None:
            try:
                provider.close(provider_ref=payment.provider_ref or "")
                continue
            except DomainError as exc:
                if exc.code is not ErrorCode.PAYMENT_PROVIDER_UNAVAILABLE:
                    raise
        await jobs.enqueue(
            session,
            kind=CLOSE_JOB,
            dedupe_key=f"{CLOSE_JOB}:{payment.id}",
            due_at=at,
            payload={"payment_id": payment.id},
        )


async def close_job(session: AsyncSession, payment_id: int, providers: Mapping[str, PaymentProvider]) -> None:
    payment = await session.get(Payment, payment_id)
    if payment is None or payment.status is not PaymentStatus.CANCELLED or payment.provider_txn is not None:
        return
    provider = providers.get(payment.provider or "")
    if provider is None:
        raise DomainError(ErrorCode.PAYMENT_PROVIDER_UNAVAILABLE, f"No provider {payment.provider!r} to close at.")
    provider.close(provider_ref=payment.provider_ref or "")


@jobs.job(REFUND_JOB)
async def _refund_job(session: AsyncSession, payload: dict[str, Any], env: jobs.JobEnv) -> None:
    await refund(session, int(payload["payment_id"]), env.providers, env.now)


@jobs.job(CLOSE_JOB)
async def _close_job(session: AsyncSession, payload: dict[str, Any], env: jobs.JobEnv) -> None:
    await close_job(session, int(payload["payment_id"]), env.providers)


async def list_late(
    session: AsyncSession,
    viewer: Viewer,
    *,
    store_id: int | None,
    refunded: bool | None,
    first: int | None,
    after: str | None,
) -> Page[Payment]:
    """Late and duplicate payments, newest first: HQ sees every store's, store staff their own (order.read)."""
    require(viewer, Perm.ORDER_READ)
    states = LATE_STATES if refunded is None else (PaymentStatus.REFUNDED_LATE if refunded else PaymentStatus.LATE,)
    stmt = restrict(select(Payment).where(Payment.status.in_(states)), viewer, Payment.store_id, Perm.ORDER_READ)
    if store_id is not None:
        stmt = stmt.where(Payment.store_id == store_id)
    return await keyset_page(session, stmt, Payment.id, first=first, after=after, descending=True)

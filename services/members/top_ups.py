"""Stored-value top-ups: online (线上充值), paid through the same provider as orders, credited exactly once;
and at the counter, paid by tenders (cash, card, WeChat, Alipay) that settle in the day's takings.

The member asks to top up (a plan, or an amount); we record a pending top-up and hand the front end a
prepay. The provider's signed notification credits the balance as a lot issued by the store the member
chose, in the transaction that marks the top-up paid. A repeated notification changes nothing; a late one
still credits, because the money was taken.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy.ext.asyncio import AsyncSession

from models import CounterTopUp, Member, OnlineTopUp, Store, StoreStatus, TopUpPlan, TopUpStatus
from services.access.permissions import Perm
from services.access.scope import Viewer, counter_store, require_store
from services.members import accounts as members
from services.members import stored_value
from services.orders.pos import COUNTER_METHODS, Tender
from services.platform import idempotency
from services.platform.errors import AccessDenied, DomainError, ErrorCode
from services.platform.payments import Notification, PaymentProvider, Prepay, paid_once

REF_PREFIX = "TOP"

T = TypeVar("T", OnlineTopUp, CounterTopUp)


@dataclass(frozen=True)
class Started:
    top_up: OnlineTopUp
    prepay: Prepay | None


async def start(
    session: AsyncSession,
    viewer: Viewer,
    provider: PaymentProvider,
    *,
    plan_id: int | None,
    amount: int | None,
    store_id: int | None,
    idempotency_key: str,
) -> Started:
    """A member's top-up request; the same key again returns the first one (and its prepay while unpaid)."""
    if not viewer.is_member or viewer.member_id is None:
        raise AccessDenied("Only members top up here.")
    scope = f"topUpOnline:member:{viewer.member_id}"
    request = {"plan": plan_id, "amount": amount, "store": store_id}
    member_id = viewer.member_id
    existing = await idempotency.once(
        session,
        scope=scope,
        key=idempotency_key,
        request=request,
        run=lambda: _create(session, member_id, provider, plan_id, amount, store_id, idempotency_key),
        save=lambda top_up: {"top_up_id": top_up.id},
        load=lambda stored: _get(session, OnlineTopUp, stored),
    )
    prepay = None
    if existing.status is TopUpStatus.PENDING:
        prepay = provider.create_prepay(provider_ref=existing.provider_ref, amount=existing.amount, description="储值")
    return Started(existing, prepay)


async def _create(
    session: AsyncSession,
    member_id: int,
    provider: PaymentProvider,
    plan_id: int | None,
    amount: int | None,
    store_id: int | None,
    key: str,
) -> OnlineTopUp:
    if (plan_id is None) == (amount is None):
        raise DomainError(ErrorCode.INVALID_INPUT, "Give a plan or an amount.", "planId")
    bonus = 0
    if plan_id is not None:
        plan = await session.get(TopUpPlan, plan_id)
        if plan is None or not plan.active:
            raise DomainError(ErrorCode.NOT_FOUND, "No such top-up plan.", "planId")
        amount, bonus = plan.pay_amount, plan.bonus_amount
    assert amount is not None
    if not 0 < amount <= stored_value.MAX_TOP_UP:
        raise DomainError(ErrorCode.INVALID_INPUT, "The top-up amount is not valid.", "amount")
    if store_id is not None:
        store = await session.get(Store, store_id)
        if store is None or store.status is StoreStatus.CLOSED:
            raise DomainError(ErrorCode.NOT_FOUND, "No such store.", "storeId")
    top_up = OnlineTopUp(
        member_id=member_id,
        plan_id=plan_id,
        store_id=store_id,
        amount=amount,
        bonus=bonus,
        idempotency_key=key,
        provider=provider.name,
        provider_ref="",
    )
    session.add(top_up)
    await session.flush()
    top_up.provider_ref = f"{REF_PREFIX}{top_up.id:012d}"
    await session.flush()
    return top_up


async def apply_notification(
    session: AsyncSession, provider: str, note: Notification, at: datetime | None = None
) -> OnlineTopUp:
    """Credit a paid top-up once; a repeat changes nothing; a wrong amount changes nothing."""
    row, newly = await paid_once(session, OnlineTopUp, TopUpStatus.PAID, provider, note, at, "top-up")
    top_up = cast(OnlineTopUp, row)
    if not newly:
        return top_up
    await session.flush()
    await stored_value.top_up(
        session,
        top_up.member_id,
        principal=top_up.amount,
        bonus=top_up.bonus,
        store_id=top_up.store_id,
        ref_type="online_top_up",
        ref_id=top_up.id,
    )
    return top_up


@dataclass(frozen=True)
class CounterRequest:
    member_id: int
    store_id: int
    tenders: Sequence[Tender]
    idempotency_key: str
    plan_id: int | None = None
    amount: int | None = None


async def at_counter(session: AsyncSession, viewer: Viewer, request: CounterRequest) -> CounterTopUp:
    """A top-up paid at the counter: the tenders must add up to what is paid (the plan's price, or the amount);
    the money is in the day's takings by method, the stored value a lot this store issued. A retry with the same
    key returns the first top-up and moves nothing again."""
    store_id = request.store_id
    require_store(viewer, store_id, Perm.ORDER_CHECKOUT)
    if not await members.may_see(session, viewer, request.member_id, Perm.MEMBER_LOOKUP):
        raise AccessDenied("Identify the member at this store first.")
    scope = f"topUp:{store_id}"
    fingerprint = {
        "member": request.member_id,
        "plan": request.plan_id,
        "amount": request.amount,
        "tenders": sorted((t.method.value, t.amount) for t in request.tenders),
    }
    return await idempotency.once(
        session,
        scope=scope,
        key=request.idempotency_key,
        request=fingerprint,
        run=lambda: _take_at_counter(session, viewer, request),
        save=lambda top_up: {"top_up_id": top_up.id},
        load=lambda stored: _get(session, CounterTopUp, stored),
    )


async def counter_top_up(
    session: AsyncSession,
    viewer: Viewer,
    *,
    member_id: int,
    plan_id: int | None,
    amount: int | None,
    store_id: int | None,
    key: str,
    tenders: list[Tender],
) -> Member:
    """A top-up at the counter of the store named (else the clerk's own), once per key; the member as credited."""
    store = counter_store(viewer, store_id)
    request = CounterRequest(
        member_id=member_id, store_id=store, tenders=tenders, idempotency_key=key, plan_id=plan_id, amount=amount
    )
    await at_counter(session, viewer, request)
    member = await session.get(Member, member_id, populate_existing=True)
    assert member is not None
    return member


async def _get(session: AsyncSession, model: type[T], stored: dict[str, Any]) -> T:
    """The top-up a replayed key made the first time."""
    top_up = await session.get(model, int(stored["top_up_id"]))
    assert top_up is not None
    return top_up


async def _take_at_counter(session: AsyncSession, viewer: Viewer, request: CounterRequest) -> CounterTopUp:
    store_id = request.store_id
    if (request.plan_id is None) == (request.amount is None):
        raise DomainError(ErrorCode.INVALID_INPUT, "Give a plan or an amount.", "planId")
    amount, bonus = request.amount or 0, 0
    if request.plan_id is not None:
        plan = await session.get(TopUpPlan, request.plan_id)
        if plan is None or not plan.active:
            raise DomainError(ErrorCode.NOT_FOUND, "No such top-up plan.", "planId")
        amount, bonus = plan.pay_amount, plan.bonus_amount
    by_method = _tendered(request.tenders, amount)
    if not 0 < amount <= stored_value.MAX_TOP_UP:
        raise DomainError(ErrorCode.INVALID_INPUT, "The top-up amount is not valid.", "amount")
    top_up = CounterTopUp(
        member_id=request.member_id,
        store_id=store_id,
        staff_id=viewer.staff_id,
        plan_id=request.plan_id,
        amount=amount,
        bonus=bonus,
        by_method=by_method,
    )
    session.add(top_up)
    await session.flush()
    await stored_value.top_up(
        session,
        request.member_id,
        principal=amount,
        bonus=bonus,
        store_id=store_id,
        ref_type="counter_top_up",
        ref_id=top_up.id,
    )
    return top_up


def _tendered(tenders: Sequence[Tender], amount: int) -> dict[str, int]:
    """Fen taken per method; only money methods, positive amounts, adding up to what is paid."""
    if not tenders:
        raise DomainError(ErrorCode.INVALID_INPUT, "Say how the top-up was paid.", "tenders")
    by_method: dict[str, int] = {}
    for tender in tenders:
        if tender.method not in COUNTER_METHODS or tender.amount <= 0:
            raise DomainError(ErrorCode.INVALID_INPUT, "Top-ups are paid in cash, card, WeChat or Alipay.", "tenders")
        by_method[tender.method.value] = by_method.get(tender.method.value, 0) + tender.amount
    if sum(by_method.values()) != amount:
        raise DomainError(ErrorCode.INVALID_INPUT, f"The tenders must add up to {amount} fen.", "tenders")
    return by_method

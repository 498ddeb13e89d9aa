"""Orders: placing, paying, expiring, cancelling, and picking up. Money and stock move exactly once.

Placing reserves stock and takes the points and stored value the member chose, in one transaction;
the rest is paid through a provider. Payment commits the reserved stock, earns points and feeds the
member's spend, in the transaction that records the payment. An unpaid order expires (a job) and
gives everything back; so does cancelling before payment.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Channel,
    FactEventKind,
    Fulfilment,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Store,
    StoreStatus,
    utcnow,
)
from services.access.permissions import Perm
from services.access.pii import PiiCipher, mask_phone, normalise_phone
from services.access.scope import Viewer, acted_in, require_store
from services.analytics import facts
from services.inventory import stock
from services.marketing import group_places, promotions, referrals
from services.members import points, stored_value
from services.members.accounts import may_see, record_purchase
from services.orders import late_payments
from services.orders.lines import add_lines, priced_rows
from services.orders.states import CHAIN, PICKUP, Actor, actor, move, record
from services.org.settings import ChainSettings, get_settings
from services.org.stores import distance_km, is_open_at, next_opening, require_selling
from services.platform import idempotency, jobs
from services.platform.errors import AccessDenied, DomainError, ErrorCode
from services.platform.pagination import Page, keyset_page
from services.platform.payments import Notification, PaymentProvider, Prepay
from services.platform.validation import text
from services.pricing.engine import CartLine, Quote, quote

REF_PREFIX = "ORD"  # our out-trade-no for an order's provider payment
DELIVERY_CONTEXT = b"order.delivery"


@dataclass(frozen=True)
class DeliveryAddress:
    """Where a delivery goes. Kept encrypted on the order; staff and the member see it, masked where it leaks."""

    contact_name: str
    phone: str
    address: str
    lat: float
    lng: float

    def masked(self) -> DeliveryAddress:
        return DeliveryAddress(self.contact_name, mask_phone(self.phone) or "", self.address, self.lat, self.lng)


def seal_delivery(cipher: PiiCipher, where: DeliveryAddress) -> bytes:
    return cipher.encrypt(orjson.dumps(asdict(where)).decode(), context=DELIVERY_CONTEXT)


def open_delivery(cipher: PiiCipher, blob: bytes) -> DeliveryAddress:
    return DeliveryAddress(**orjson.loads(cipher.decrypt(blob, context=DELIVERY_CONTEXT)))


async def quote_for(
    session: AsyncSession,
    viewer: Viewer,
    *,
    store_id: int,
    lines: Sequence[CartLine],
    member_id: int | None,
    fulfilment: Fulfilment,
    coupon_id: int | None = None,
    card_ids: Sequence[int] = (),
) -> Quote:
    """A quote for the member signed in, or (at the POS) for a member the store knows, or a walk-in."""
    if viewer.is_member:
        member_id = viewer.member_id
    elif member_id is not None and not await may_see(session, viewer, member_id, Perm.MEMBER_LOOKUP):
        raise AccessDenied("Identify the member at this store first.")
    return await quote(
        session,
        store_id=store_id,
        lines=lines,
        member_id=member_id,
        fulfilment=fulfilment,
        coupon_id=coupon_id,
        card_ids=card_ids,
    )


async def member_orders(session: AsyncSession, viewer: Viewer, *, first: int | None, after: str | None) -> Page[Order]:
    """The signed-in member's own orders, newest first."""
    stmt = select(Order).where(Order.member_id == viewer.member_id)
    return await keyset_page(session, stmt, Order.id, first=first, after=after, descending=True)


def delivery_for(
    cipher: PiiCipher, viewer: Viewer, sealed: bytes, *, store_id: int, member_id: int | None
) -> DeliveryAddress:
    """The member and the store's own order handlers (who call the rider's customer) see the phone; HQ, masked."""
    where = open_delivery(cipher, sealed)
    store_handler = viewer.store_id == store_id and viewer.can(Perm.ORDER_PICKUP)
    if (viewer.is_member and viewer.member_id == member_id) or store_handler:
        return where
    return where.masked()


@dataclass(frozen=True)
class PlaceOrder:
    store_id: int
    lines: Sequence[CartLine]
    idempotency_key: str
    fulfilment: Fulfilment = Fulfilment.PICKUP
    pickup_at: datetime | None = None
    use_points: int = 0
    use_stored_value: int = 0
    delivery: DeliveryAddress | None = None
    coupon_id: int | None = None
    flash_sale_id: int | None = None  # ordered from a flash-sale page: the flash price or FLASH_SALE_SOLD_OUT
    group_campaign_id: int | None = None
    group_buy_id: int | None = None


@dataclass(frozen=True)
class Placed:
    order: Order
    prepay: Prepay | None


async def place_order(
    session: AsyncSession,
    viewer: Viewer,
    provider: PaymentProvider,
    request: PlaceOrder,
    *,
    cipher: PiiCipher | None = None,
    now: datetime | None = None,
) -> Placed:
    """A member orders in the mini-program; retrying with the same idempotency key returns the first order."""
    acted_in(request.store_id)
    if not viewer.is_member or viewer.member_id is None:
        raise AccessDenied("Only members place orders here.")
    member_id = viewer.member_id
    now = now or utcnow()
    scope = f"placeOrder:member:{member_id}"
    fingerprint = {
        "store": request.store_id,
        "lines": sorted((x.sku_id, x.quantity) for x in request.lines),
        "points": request.use_points,
        "sv": request.use_stored_value,
        "fulfilment": request.fulfilment.value,
        "coupon": request.coupon_id,
        "group": request.group_buy_id,
        "flash": request.flash_sale_id,
    }

    async def load(stored: dict[str, Any]) -> Placed:
        existing = await session.get(Order, int(stored["order_id"]))
        assert existing is not None
        # A replay after a lost answer can still pay: the same pay parameters, while the order is payable.
        return Placed(existing, await pay_params(session, existing, {provider.name: provider}, now))

    return await idempotency.once(
        session,
        scope=scope,
        key=request.idempotency_key,
        request=fingerprint,
        run=lambda: _place(session, member_id, provider, request, cipher, now),
        save=lambda placed: {"order_id": placed.order.id},
        load=load,
    )


async def _place(
    session: AsyncSession,
    member_id: int,
    provider: PaymentProvider,
    request: PlaceOrder,
    cipher: PiiCipher | None,
    now: datetime,
) -> Placed:
    store = await _open_store(session, request, now)
    settings = await get_settings(session)
    sealed = _sealed_delivery(request, store, settings, cipher)
    priced = await _priced(session, store, member_id, request, now)
    points_value = _checked_balances(request, priced, settings)
    order = await _create_order(session, store, member_id, request, priced, points_value, sealed, settings, now)
    await promotions.claim(session, order, priced, now)
    ref = stock.Ref("order", order.id)
    await stock.reserve(session, store.id, [stock.Line(q.sku_id, q.quantity) for q in priced.lines], ref)
    await _pay_from_balances(session, store, order, member_id, request, points_value, now)
    prepay = await _prepay(session, order, provider, store, now)
    await session.flush()
    if order.payable == 0:
        order = await mark_paid(session, order.id, now)
    return Placed(order, prepay)


async def _open_store(session: AsyncSession, request: PlaceOrder, now: datetime) -> Store:
    """The store, open and (unless the order is a group's) able to hand over at the chosen time."""
    store = await session.get(Store, request.store_id)
    if store is None or store.status is not StoreStatus.OPEN:
        raise DomainError(ErrorCode.STORE_NOT_OPEN, "This store is not taking orders.", "storeId")
    require_selling(store)
    if request.group_buy_id is None:  # a group's orders wait for the group; they are collected once it completes
        check_pickup_time(store, request.fulfilment, request.pickup_at, now)
    return store


def _sealed_delivery(
    request: PlaceOrder, store: Store, settings: ChainSettings, cipher: PiiCipher | None
) -> bytes | None:
    """The delivery address, checked and sealed, for a delivery; None for a pickup."""
    sealed = None
    if request.fulfilment is Fulfilment.DELIVERY:
        where = _delivery_address(request.delivery, store, settings.delivery_radius_km)
        if cipher is None:
            raise RuntimeError("delivery orders need the PII cipher")
        sealed = seal_delivery(cipher, where)
    elif request.fulfilment is not Fulfilment.PICKUP:
        raise DomainError(ErrorCode.INVALID_INPUT, "Order for pickup or for delivery.", "fulfilment")
    return sealed


async def _priced(session: AsyncSession, store: Store, member_id: int, request: PlaceOrder, now: datetime) -> Quote:
    """The order's quote, its flash sale (if any) allowed to this member, and every item available."""
    priced = await quote(
        session,
        store_id=store.id,
        lines=request.lines,
        member_id=member_id,
        at=now,
        fulfilment=request.fulfilment,
        coupon_id=request.coupon_id,
        suggest_coupon=False,
        group_campaign_id=request.group_campaign_id,
        flash_campaign_id=request.flash_sale_id,
    )
    if request.flash_sale_id is not None:
        await promotions.require_flash(session, request.flash_sale_id, member_id, priced)
    if priced.unavailable:
        raise DomainError(
            ErrorCode.OUT_OF_STOCK,
            "Some items are sold out here.",
            "lines",
            details={"unavailable_sku_ids": priced.unavailable},
        )
    return priced


def _checked_balances(request: PlaceOrder, priced: Quote, settings: ChainSettings) -> int:
    """The points and stored value to use, within what the quote allows; the points' value in fen."""
    if request.use_points < 0 or request.use_points > priced.points_usable:
        raise DomainError(ErrorCode.INVALID_INPUT, f"At most {priced.points_usable} points may be used.", "usePoints")
    points_value = request.use_points * settings.point_value_fen
    if not 0 <= request.use_stored_value <= min(priced.stored_value_usable, priced.total - points_value):
        raise DomainError(ErrorCode.INVALID_INPUT, "That much stored value cannot be used here.", "useStoredValue")
    return points_value


async def _create_order(
    session: AsyncSession,
    store: Store,
    member_id: int,
    request: PlaceOrder,
    priced: Quote,
    points_value: int,
    sealed: bytes | None,
    settings: ChainSettings,
    now: datetime,
) -> Order:
    """The order and its lines, as quoted, written (flushed, so it has its id)."""
    order = Order(
        store_id=store.id,
        member_id=member_id,
        channel=Channel.MINI_PROGRAM,
        fulfilment=request.fulfilment,
        status=OrderStatus.CREATED,
        client_order_id=f"m{member_id}:{request.idempotency_key}",
        subtotal=priced.subtotal,
        discount_total=priced.discount_total,
        points_used=request.use_points,
        points_value=points_value,
        stored_value_used=request.use_stored_value,
        payable=priced.total - points_value - request.use_stored_value,
        pickup_at=request.pickup_at,
        expires_at=now + timedelta(minutes=settings.unpaid_order_minutes),
        delivery_fee=priced.delivery_fee,
        delivery_enc=sealed,
        group_buy_id=request.group_buy_id,
    )
    session.add(order)
    await session.flush()
    await add_lines(session, order.id, priced_rows(priced.lines))
    return order


async def _pay_from_balances(
    session: AsyncSession,
    store: Store,
    order: Order,
    member_id: int,
    request: PlaceOrder,
    points_value: int,
    now: datetime,
) -> None:
    """Take the points and stored value the member chose to use, each recorded as a payment that succeeded."""
    store_id = store.id
    if request.use_points:
        await points.redeem(
            session, member_id, request.use_points, store_id=store_id, ref_type="order", ref_id=order.id
        )
        session.add(
            Payment(
                order_id=order.id,
                method=PaymentMethod.POINTS,
                amount=points_value,
                status=PaymentStatus.SUCCEEDED,
                store_id=store_id,
                paid_at=now,
            )
        )
    if request.use_stored_value:
        await stored_value.spend(
            session, member_id, request.use_stored_value, store_id=store_id, ref_type="order", ref_id=order.id
        )
        session.add(
            Payment(
                order_id=order.id,
                method=PaymentMethod.STORED_VALUE,
                amount=request.use_stored_value,
                status=PaymentStatus.SUCCEEDED,
                store_id=store_id,
                paid_at=now,
            )
        )


async def _prepay(
    session: AsyncSession, order: Order, provider: PaymentProvider, store: Store, now: datetime
) -> Prepay | None:
    """For what is left to pay: the provider's prepay, its pending payment, and the job that expires the order."""
    prepay = None
    if order.payable > 0:
        provider_ref = f"{REF_PREFIX}{order.id:012d}"
        prepay = provider.create_prepay(provider_ref=provider_ref, amount=order.payable, description=store.name)
        session.add(
            Payment(
                order_id=order.id,
                method=PaymentMethod.WECHAT_PAY,
                amount=order.payable,
                status=PaymentStatus.PENDING,
                provider=provider.name,
                provider_ref=provider_ref,
                store_id=store.id,
            )
        )
        await jobs.enqueue(
            session,
            kind="orders.expire",
            dedupe_key=f"orders.expire:{order.id}",
            due_at=order.expires_at or now,
            payload={"order_id": order.id},
        )
    return prepay


PICKUP_AHEAD = timedelta(days=7)


def _local(store: Store, when: datetime) -> str:
    return when.astimezone(ZoneInfo(store.timezone)).strftime("%Y-%m-%d %H:%M")


def check_pickup_time(store: Store, fulfilment: Fulfilment, pickup_at: datetime | None, now: datetime) -> None:
    """When the member collects: a pickup time is in the future (at most a week ahead) and inside the store's hours
    in its own time zone. Without one the order is for now, which a closed store cannot take: like the chains'
    apps, it refuses (STORE_CLOSED) and names the next opening, which the quote also gives, for the member to
    book. A delivery leaves now, so it needs the store open now."""
    if pickup_at is not None:
        if fulfilment is not Fulfilment.PICKUP:
            raise DomainError(ErrorCode.INVALID_INPUT, "A pickup time is for pickup orders.", "pickupAt")
        if pickup_at.tzinfo is None:
            raise DomainError(ErrorCode.INVALID_INPUT, "Give the pickup time with its time zone.", "pickupAt")
        if pickup_at <= now:
            raise DomainError(ErrorCode.PICKUP_TIME_INVALID, "The pickup time has passed.", "pickupAt")
        if pickup_at > now + PICKUP_AHEAD:
            raise DomainError(ErrorCode.PICKUP_TIME_INVALID, "Pick up within a week.", "pickupAt")
        if not is_open_at(store, pickup_at):
            opens = next_opening(store, pickup_at)
            then = f"; it opens {_local(store, opens)} (store time)" if opens else ""
            raise DomainError(ErrorCode.PICKUP_TIME_INVALID, f"The store is closed at that time{then}.", "pickupAt")
        return
    if not is_open_at(store, now):
        opens = next_opening(store, now)
        then = f" It opens {_local(store, opens)} (store time)" if opens else " It has no opening hours set"
        field = "pickupAt" if fulfilment is Fulfilment.PICKUP else "storeId"
        ask = "; choose a pickup time then." if fulfilment is Fulfilment.PICKUP else "."
        raise DomainError(ErrorCode.STORE_CLOSED, f"The store is closed now.{then}{ask}", field)


def _delivery_address(given: DeliveryAddress | None, store: Store, radius_km: int) -> DeliveryAddress:
    if given is None:
        raise DomainError(ErrorCode.INVALID_INPUT, "Say where to deliver.", "delivery")
    if not (-90 <= given.lat <= 90 and -180 <= given.lng <= 180):
        raise DomainError(ErrorCode.INVALID_INPUT, "The location is not valid.", "delivery.lat")
    where = DeliveryAddress(
        contact_name=text(given.contact_name, "delivery.contactName", max_len=32),
        phone=normalise_phone(given.phone, "delivery.phone"),
        address=text(given.address, "delivery.address", max_len=200),
        lat=given.lat,
        lng=given.lng,
    )
    if distance_km(store.lat, store.lng, where.lat, where.lng) > radius_km:
        raise DomainError(ErrorCode.OUT_OF_DELIVERY_RANGE, f"This store delivers within {radius_km} km.", "delivery")
    return where


async def _new_pickup_code(session: AsyncSession) -> str:
    for _ in range(10):
        code = f"{secrets.randbelow(10**8):08d}"
        if await session.scalar(select(Order.id).where(Order.pickup_code == code)) is None:
            return code
    raise RuntimeError("could not find a free pickup code")


async def mark_paid(session: AsyncSession, order_id: int, at: datetime, *, reserved: bool = True) -> Order:
    """Everything payment settles, in the caller's transaction: status, stock, points, member spend, pickup code.

    A reserved order's promised units leave the shelf; a counter sale (not reserved) sells what is available.
    """
    current = await session.get(Order, order_id)
    assert current is not None
    code = await _new_pickup_code(session) if current.fulfilment is Fulfilment.PICKUP else None
    # At the counter the clerk takes the money; online the member pays (the provider only tells us so).
    by = Actor(staff_id=current.staff_id) if current.channel is Channel.POS else Actor(member_id=current.member_id)
    order = await move(
        session, order_id, OrderStatus.PAID, only_from={OrderStatus.CREATED}, by=by, paid_at=at, pickup_code=code
    )
    lines = (await session.scalars(select(OrderLine).where(OrderLine.order_id == order.id))).all()
    moving = [stock.Line(x.sku_id, x.quantity) for x in lines]
    ref = stock.Ref("order", order.id, order.staff_id)
    await (stock.commit if reserved else stock.sell)(session, order.store_id, moving, ref)
    if order.member_id is not None:
        spend = order.payable + order.stored_value_used - order.delivery_fee
        await points.earn(
            session, order.member_id, spend, store_id=order.store_id, ref_type="order", ref_id=order.id, at=at
        )
        await record_purchase(
            session, member_id=order.member_id, store_id=order.store_id, amount=spend + order.points_value, at=at
        )
        await referrals.reward(session, order.member_id, order.id, at)
    if order.group_buy_id is not None:
        await group_places.on_paid(session, order.group_buy_id, at)
    facts.record(session, FactEventKind.SALE, order.id)
    return order


async def apply_notification(
    session: AsyncSession, provider: str, note: Notification, at: datetime | None = None
) -> Order:
    """A verified provider notification: pay the order once; repeats change nothing; a wrong amount changes nothing.

    Money taken for an order that can no longer be paid by it (cancelled, expired, or paid already by another
    transaction) is acknowledged too: recorded as a late payment and given back by a job (services/late_payments).
    """
    at = at or utcnow()
    payment = await session.scalar(
        select(Payment)
        .where(Payment.provider == provider, Payment.provider_ref == note.provider_ref)
        .order_by(Payment.id)
        .limit(1)
        .with_for_update()
    )
    if payment is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such payment.")
    order = await session.get(Order, payment.order_id)
    assert order is not None
    recorded = await session.scalar(
        select(Payment.id).where(Payment.provider == provider, Payment.provider_txn == note.provider_txn)
    )
    if recorded is not None:  # this transaction is on our books already: a repeat
        return order
    if note.amount != payment.amount:
        raise DomainError(ErrorCode.PAYMENT_AMOUNT_MISMATCH, "The amount paid does not match the order.")
    if not note.succeeded:
        return order
    if order.status is not OrderStatus.CREATED or payment.status is not PaymentStatus.PENDING:
        await late_payments.record(session, order, payment, provider, note, at)
        return order
    payment.status, payment.provider_txn, payment.paid_at = PaymentStatus.SUCCEEDED, note.provider_txn, at
    await session.flush()
    return await mark_paid(session, order.id, at)


async def pay_params(
    session: AsyncSession, order: Order, providers: Mapping[str, PaymentProvider], now: datetime
) -> Prepay | None:
    """Pay parameters for an order still waiting for its provider payment (none once paid, ended or expired).

    The same out-trade-no and amount each time, so paying through any of them pays the order once.
    """
    if order.status is not OrderStatus.CREATED or (order.expires_at is not None and order.expires_at <= now):
        return None
    payment = await session.scalar(
        select(Payment).where(
            Payment.order_id == order.id, Payment.status == PaymentStatus.PENDING, Payment.provider.is_not(None)
        )
    )
    provider = providers.get(payment.provider or "") if payment is not None else None
    if payment is None or provider is None:
        return None
    store = await session.get(Store, order.store_id)
    description = store.name if store is not None else order.client_order_id
    return provider.create_prepay(
        provider_ref=payment.provider_ref or "", amount=payment.amount, description=description
    )


async def pay_again(
    session: AsyncSession,
    viewer: Viewer,
    providers: Mapping[str, PaymentProvider],
    order_id: int,
    now: datetime | None = None,
) -> Placed:
    """The member's own unpaid order, paid again after a lost answer: its pay parameters, re-issued."""
    if not viewer.is_member or viewer.member_id is None:
        raise AccessDenied("Only members pay their orders here.")
    order = await session.get(Order, order_id)
    if order is None or order.member_id != viewer.member_id:
        raise DomainError(ErrorCode.NOT_FOUND, "No such order.", "id")
    prepay = await pay_params(session, order, providers, now or utcnow())
    if prepay is None:
        raise DomainError(ErrorCode.ORDER_NOT_PAYABLE, f"This order cannot be paid ({order.status.value}).", "id")
    return Placed(order, prepay)


async def release(
    session: AsyncSession,
    order_id: int,
    *,
    reason: OrderStatus = OrderStatus.CANCELLED,
    providers: Mapping[str, PaymentProvider] | None = None,
    by: Actor = CHAIN,
) -> Order:
    """Cancel an unpaid order: stock, points and stored value go back, once; its provider payment is closed."""
    order = await move(session, order_id, reason, only_from={OrderStatus.CREATED}, by=by, cancelled_at=utcnow())
    lines = (await session.scalars(select(OrderLine).where(OrderLine.order_id == order.id))).all()
    await stock.release(
        session, order.store_id, [stock.Line(x.sku_id, x.quantity) for x in lines], stock.Ref("order", order.id)
    )
    if order.points_used:
        await points.reverse(session, ref_type="order", ref_id=order.id)
    if order.stored_value_used:
        await stored_value.refund(session, ref_type="order", ref_id=order.id, store_id=order.store_id)
    await promotions.release(session, order)
    if order.group_buy_id is not None:
        await group_places.on_released(session, order.group_buy_id)
    pending = (await session.scalars(select(Payment).where(Payment.order_id == order.id))).all()
    for payment in pending:
        if payment.status not in late_payments.LATE_STATES:  # money already being given back stays so
            payment.status = PaymentStatus.CANCELLED
    await session.flush()
    await late_payments.close_payments(session, order.id, providers, utcnow())
    return order


async def expire(
    session: AsyncSession, order_id: int, now: datetime, providers: Mapping[str, PaymentProvider] | None = None
) -> bool:
    """The expiry job: an order still unpaid after its time is released; anything else is left alone."""
    order = await session.get(Order, order_id)
    if order is None or order.status is not OrderStatus.CREATED or (order.expires_at and order.expires_at > now):
        return False
    try:
        await release(session, order_id, providers=providers)
    except DomainError as exc:
        if exc.code is ErrorCode.INVALID_TRANSITION:  # paid or cancelled meanwhile
            return False
        raise
    return True


@jobs.job("orders.expire")
async def _expire_job(session: AsyncSession, payload: dict[str, Any], env: jobs.JobEnv) -> None:
    await expire(session, int(payload["order_id"]), env.now, env.providers)


async def cancel_by_member(
    session: AsyncSession, viewer: Viewer, order_id: int, providers: Mapping[str, PaymentProvider] | None = None
) -> Order:
    order = await session.get(Order, order_id)
    if order is None or order.member_id != viewer.member_id:
        raise DomainError(ErrorCode.NOT_FOUND, "No such order.", "id")
    return await release(session, order_id, providers=providers, by=actor(viewer))


async def _own_store_order(session: AsyncSession, viewer: Viewer, order_id: int) -> Order:
    order = await session.get(Order, order_id)
    if order is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such order.", "id")
    require_store(viewer, order.store_id, Perm.ORDER_PICKUP)
    return order


async def mark_preparing(session: AsyncSession, viewer: Viewer, order_id: int) -> Order:
    order = await _own_store_order(session, viewer, order_id)
    return await move(session, order.id, OrderStatus.PREPARING, by=actor(viewer))


async def mark_ready(session: AsyncSession, viewer: Viewer, order_id: int) -> Order:
    order = await _own_store_order(session, viewer, order_id)
    return await move(session, order.id, OrderStatus.READY, by=actor(viewer))


async def dispatch(session: AsyncSession, viewer: Viewer, order_id: int, at: datetime | None = None) -> Order:
    """A delivery order leaves the store with the rider."""
    order = await _own_store_order(session, viewer, order_id)
    return await move(session, order.id, OrderStatus.DELIVERING, by=actor(viewer), dispatched_at=at or utcnow())


async def confirm_delivery(session: AsyncSession, viewer: Viewer, order_id: int, at: datetime | None = None) -> Order:
    """The goods reached the member: the store (for its rider) or the member themselves says so."""
    order = await session.get(Order, order_id)
    if order is None or (viewer.is_member and order.member_id != viewer.member_id):
        raise DomainError(ErrorCode.NOT_FOUND, "No such order.", "id")
    if not viewer.is_member:
        require_store(viewer, order.store_id, Perm.ORDER_PICKUP)
    done, by = at or utcnow(), actor(viewer)
    order = await move(
        session, order.id, OrderStatus.COMPLETED, only_from={OrderStatus.DELIVERING}, by=by, completed_at=done
    )
    for line in (await session.scalars(select(OrderLine).where(OrderLine.order_id == order.id))).all():
        line.picked_up = line.quantity - line.refunded
    return order


async def verify_pickup(
    session: AsyncSession,
    viewer: Viewer,
    *,
    store_id: int,
    code: str,
    key: str,
    quantities: dict[int, int] | None = None,
) -> Order:
    """核销: hand over a paid pickup order by its code, in the order's own store; some lines may follow later.

    Once per key: a tablet retrying a partial hand-over after a lost answer gets the first answer back instead
    of handing the same units over again. The key's request names the order, not the code: the code is a
    secret, and a short one is easily found again from its hash."""
    require_store(viewer, store_id, Perm.ORDER_PICKUP)
    order = await session.scalar(select(Order).where(Order.pickup_code == code.strip()).with_for_update())
    if order is None or order.store_id != store_id:
        # Another store's code looks exactly like a wrong one: nothing about that order leaks.
        raise DomainError(ErrorCode.PICKUP_CODE_INVALID, "No order with this pickup code here.", "code")
    found = order

    async def load(_: dict[str, Any]) -> Order:
        return found  # the request names the order: a replay of this key is about this order, just read locked

    request = {"order": found.id, "lines": sorted(quantities.items()) if quantities is not None else None}
    return await idempotency.once(
        session,
        scope=f"verifyPickup:{store_id}",
        key=key,
        request=request,
        run=lambda: _hand_over(session, found, quantities, actor(viewer)),
        save=lambda o: {"order_id": o.id},
        load=load,
    )


async def _hand_over(session: AsyncSession, order: Order, quantities: dict[int, int] | None, by: Actor) -> Order:
    if order.status not in {OrderStatus.PAID, OrderStatus.PREPARING, OrderStatus.READY}:
        raise DomainError(ErrorCode.INVALID_TRANSITION, f"A {order.status.value} order cannot be picked up.", "code")
    lines = (
        await session.scalars(select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.id))
    ).all()
    for line in lines:
        take = (quantities or {}).get(line.sku_id, line.quantity - line.picked_up)
        if not 0 <= take <= line.quantity - line.picked_up:
            raise DomainError(ErrorCode.INVALID_INPUT, "More than is left to pick up.", "lines")
        line.picked_up += take
    await session.flush()
    if all(line.picked_up == line.quantity for line in lines):
        return await move(session, order.id, OrderStatus.COMPLETED, by=by, via=PICKUP, completed_at=utcnow())
    record(session, order, order.status, by, PICKUP)  # some lines handed over: the status stays
    return order

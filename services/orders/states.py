"""The one order state machine. Every status change goes through `move`, a conditional UPDATE.

Every change is announced (after commit) to the order's store tablets and to the member.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from models import Fulfilment, Order, OrderStatus, OrderStatusChange
from services.access.permissions import Perm
from services.access.scope import Viewer, require_store
from services.platform.errors import AccessDenied, DomainError, ErrorCode
from services.platform.events import emit

S = OrderStatus
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.CREATED: frozenset({S.PAID, S.CANCELLED}),
    S.PAID: frozenset({S.PREPARING, S.READY, S.DELIVERING, S.COMPLETED, S.REFUNDED, S.PARTIALLY_REFUNDED}),
    S.PREPARING: frozenset({S.READY, S.DELIVERING, S.COMPLETED, S.REFUNDED, S.PARTIALLY_REFUNDED}),
    S.READY: frozenset({S.COMPLETED, S.REFUNDED, S.PARTIALLY_REFUNDED}),
    S.DELIVERING: frozenset({S.COMPLETED, S.REFUNDED, S.PARTIALLY_REFUNDED}),
    S.COMPLETED: frozenset({S.REFUNDED, S.PARTIALLY_REFUNDED}),
    S.PARTIALLY_REFUNDED: frozenset({S.REFUNDED, S.PARTIALLY_REFUNDED, S.COMPLETED}),
    S.CANCELLED: frozenset(),
    S.REFUNDED: frozenset(),
}
# States only one way of fulfilment passes through: a pickup order is never out for delivery, and the reverse.
ONLY_FOR: dict[OrderStatus, frozenset[Fulfilment]] = {
    S.READY: frozenset({Fulfilment.PICKUP}),
    S.DELIVERING: frozenset({Fulfilment.DELIVERY}),
}


@dataclass(frozen=True)
class Actor:
    """Who moves an order: a staff account, a member, or neither (the chain itself: a job, a provider's word)."""

    staff_id: int | None = None
    member_id: int | None = None


CHAIN = Actor()
PICKUP = "PICKUP"  # `via` of a hand-over at the counter (核销), whole or partial


def actor(viewer: Viewer) -> Actor:
    """The viewer as the one who moves an order (the SYSTEM viewer, like any other without an account: the chain)."""
    return Actor(staff_id=viewer.staff_id, member_id=viewer.member_id)


def record(session: AsyncSession, order: Order, before: OrderStatus | None, by: Actor, via: str | None = None) -> None:
    """One step of the order's timeline: `before` -> its status now, by whom."""
    session.add(
        OrderStatusChange(
            order_id=order.id,
            from_status=before,
            to_status=order.status,
            staff_id=by.staff_id,
            member_id=by.member_id,
            via=via,
        )
    )


def order_topic(store_id: int) -> str:
    return f"orders.store.{store_id}"


def order_topic_all() -> str:
    return "orders.store.*"


def store_feed(viewer: Viewer, store_id: int) -> str:
    """The topic of a store's order feed (the tablet's), for its staff and HQ holding order.read."""
    require_store(viewer, store_id, Perm.ORDER_READ)
    return order_topic(store_id)


def member_feed(viewer: Viewer) -> tuple[str, int]:
    """The topic a member's own orders pass through, and the member whose events it keeps."""
    if viewer.member_id is None:
        raise AccessDenied("Only members follow their orders.")
    return order_topic_all(), viewer.member_id


def announce(session: AsyncSession, order: Order) -> None:
    """Tell the store's tablets and the member, after commit, that the order changed."""
    payload = {
        "orderId": order.id,
        "storeId": order.store_id,
        "status": order.status.value,
        "memberId": order.member_id,
    }
    emit(session, order_topic(order.store_id), payload)


def allowed_from(target: OrderStatus) -> frozenset[OrderStatus]:
    return frozenset(s for s, targets in TRANSITIONS.items() if target in targets)


async def move(
    session: AsyncSession,
    order_id: int,
    target: OrderStatus,
    *,
    only_from: set[OrderStatus] | None = None,
    by: Actor = CHAIN,
    via: str | None = None,
    **values: Any,
) -> Order:
    """Move an order to `target` if the machine allows it from its current status; else INVALID_TRANSITION.
    The move is recorded with who made it (`by`), for the order's timeline."""
    current = await session.get(Order, order_id)
    before = current.status if current is not None else None
    sources = allowed_from(target) & (only_from or set(OrderStatus))
    result: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
        update(Order)
        .where(
            Order.id == order_id,
            Order.status.in_(sources),
            Order.fulfilment.in_(ONLY_FOR.get(target, frozenset(Fulfilment))),
        )
        .values(status=target, **values)
        .execution_options(synchronize_session=False)
    )
    order = await session.get(Order, order_id, populate_existing=True)
    if order is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such order.", "id")
    if result.rowcount != 1:
        what = f"{order.status.value} {order.fulfilment.value}" if target in ONLY_FOR else order.status.value
        raise DomainError(ErrorCode.INVALID_TRANSITION, f"A {what} order cannot become {target.value}.", "id")
    record(session, order, before, by, via)
    announce(session, order)
    return order

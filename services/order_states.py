"""The one order state machine. Every status change goes through `move`, a conditional UPDATE."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from models import Order, OrderStatus
from services.errors import DomainError, ErrorCode

S = OrderStatus
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.CREATED: frozenset({S.PAID, S.CANCELLED}),
    S.PAID: frozenset({S.PREPARING, S.READY, S.DELIVERING, S.COMPLETED, S.REFUNDED, S.PARTIALLY_REFUNDED}),
    S.PREPARING: frozenset({S.READY, S.DELIVERING, S.COMPLETED, S.REFUNDED, S.PARTIALLY_REFUNDED}),
    S.READY: frozenset({S.COMPLETED, S.REFUNDED, S.PARTIALLY_REFUNDED}),
    S.DELIVERING: frozenset({S.COMPLETED, S.REFUNDED}),
    S.COMPLETED: frozenset({S.REFUNDED, S.PARTIALLY_REFUNDED}),
    S.PARTIALLY_REFUNDED: frozenset({S.REFUNDED, S.PARTIALLY_REFUNDED, S.COMPLETED}),
    S.CANCELLED: frozenset(),
    S.REFUNDED: frozenset(),
}


def allowed_from(target: OrderStatus) -> frozenset[OrderStatus]:
    return frozenset(s for s, targets in TRANSITIONS.items() if target in targets)


async def move(
    session: AsyncSession,
    order_id: int,
    target: OrderStatus,
    *,
    only_from: set[OrderStatus] | None = None,
    **values: Any,
) -> Order:
    """Move an order to `target` if the machine allows it from its current status; else INVALID_TRANSITION."""
    sources = allowed_from(target) & (only_from or set(OrderStatus))
    result: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
        update(Order).where(Order.id == order_id, Order.status.in_(sources)).values(status=target, **values)
        .execution_options(synchronize_session=False)
    )  # fmt: skip
    order = await session.get(Order, order_id, populate_existing=True)
    if order is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such order.", "id")
    if result.rowcount != 1:
        raise DomainError(
            ErrorCode.INVALID_TRANSITION, f"A {order.status.value} order cannot become {target.value}.", "id"
        )
    return order

"""A group buy's places, as its members' orders move: paying counts a place, an unpaid order's end frees it.

Orders call these in the transaction that moves the order; group buys (services/marketing/group_buys.py) open the groups
and place the orders, so these live apart from both: orders need not import group buys, which import orders.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from models import GroupBuy, GroupBuyStatus


async def on_paid(session: AsyncSession, group_id: int, at: datetime) -> None:
    """A member of the group paid: count it; the last payment completes the group."""
    await session.execute(update(GroupBuy).where(GroupBuy.id == group_id).values(paid=GroupBuy.paid + 1))
    await session.execute(
        update(GroupBuy)
        .where(GroupBuy.id == group_id, GroupBuy.status == GroupBuyStatus.OPEN, GroupBuy.paid >= GroupBuy.size)
        .values(status=GroupBuyStatus.COMPLETED, completed_at=at)
    )


async def on_released(session: AsyncSession, group_id: int) -> None:
    """An unpaid member's order was cancelled or expired: their place opens again."""
    await session.execute(
        update(GroupBuy)
        .where(GroupBuy.id == group_id, GroupBuy.status == GroupBuyStatus.OPEN, GroupBuy.joined > 0)
        .values(joined=GroupBuy.joined - 1)
    )

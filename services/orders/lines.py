"""The one place order lines are made: as priced, each keeping its SKU's cost price at the time of sale."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import OrderLine, Sku
from services.pricing.engine import QuoteLine, stored


async def unit_costs(session: AsyncSession, sku_ids: Sequence[int]) -> dict[int, int]:
    """Each SKU's cost price now (fen per unit; the moving average purchase receipts keep)."""
    if not sku_ids:
        return {}
    rows = await session.execute(select(Sku.id, Sku.cost_price).where(Sku.id.in_(set(sku_ids))))
    return {int(k): int(v) for k, v in rows.all()}


async def add_lines(session: AsyncSession, order_id: int, lines: Sequence[dict[str, Any]]) -> list[OrderLine]:
    """Add `lines` (OrderLine fields, `sku_id` among them) to an order, each with `unit_cost` from its SKU now."""
    costs = await unit_costs(session, [int(x["sku_id"]) for x in lines])
    made = [OrderLine(order_id=order_id, unit_cost=costs.get(int(x["sku_id"]), 0), **x) for x in lines]
    session.add_all(made)
    return made


def priced_rows(lines: Sequence[QuoteLine], *, handed_over: bool = False) -> list[dict[str, Any]]:
    """A quote's lines as order line fields, as the price engine explained them; at the counter (`handed_over`) the
    goods leave with the buyer, so every unit is picked up."""
    return [
        {
            "sku_id": q.sku_id,
            "quantity": q.quantity,
            "list_price": q.list_price,
            "unit_price": q.unit_price,
            "line_total": q.line_total,
            "adjustments": stored(q.adjustments),
        }
        | ({"picked_up": q.quantity} if handed_over else {})
        for q in lines
    ]

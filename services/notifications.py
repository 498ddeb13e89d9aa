"""Where a verified provider notification goes: an order payment or an online top-up, by our reference."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.members import top_ups
from services.orders import lifecycle as orders
from services.orders.payments import Notification


async def apply(session: AsyncSession, provider: str, note: Notification, at: datetime | None = None) -> None:
    if note.provider_ref.startswith(top_ups.REF_PREFIX):
        await top_ups.apply_notification(session, provider, note, at)
    else:
        await orders.apply_notification(session, provider, note, at)

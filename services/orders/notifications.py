"""Where a verified provider notification goes: an order payment, an online top-up or a card bought online, by our
reference."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.cards import sales as card_sales
from services.members import top_ups
from services.orders import lifecycle as orders
from services.platform.payments import Notification


async def apply(session: AsyncSession, provider: str, note: Notification, at: datetime | None = None) -> None:
    if note.provider_ref.startswith(top_ups.REF_PREFIX):
        await top_ups.apply_notification(session, provider, note, at)
    elif note.provider_ref.startswith(card_sales.REF_PREFIX):
        await card_sales.apply_notification(session, provider, note, at)
    else:
        await orders.apply_notification(session, provider, note, at)

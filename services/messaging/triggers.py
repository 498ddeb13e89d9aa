"""What triggers a message without HQ asking: events (a table: event topic -> message topic and template) and
daily checks (points expiring in 30 days, birthday coupons). All of them end in `outbox.queue_message`.

Events become messages transactionally: when a session that emitted a listed event commits, the event is kept in
`message_triggers` in the same transaction (a rolled-back change triggers nothing); the sending job turns those
rows into messages (`absorb`) and deletes them. A new event-driven message is one row in EVENT_TRIGGERS.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, event, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from models import CouponTemplate, CouponTrigger, MemberCoupon, MessageStatus, MessageTopic, MessageTrigger, utcnow
from services.cards import cards as member_cards
from services.members import points
from services.messaging.outbox import BUILT_IN, queue_message
from services.platform import jobs
from services.platform.config import CHAIN_TZ
from services.platform.db import write_transaction
from services.platform.events import pending


@dataclass(frozen=True)
class EventTrigger:
    """An event that messages a member: the message's topic and template, where the payload names the member and
    the thing (the dedupe key: one message per thing), which payload values fill which variables, and which payload
    values the event must have (`when`)."""

    topic: MessageTopic
    template_key: str
    member_field: str
    ref_field: str
    variables: Mapping[str, str] = field(default_factory=dict)
    when: Mapping[str, Any] = field(default_factory=dict)


# Event topic (a glob, as the broker's) -> the trigger. Orders announce on orders.store.<id> (orders/states.py).
EVENT_TRIGGERS: dict[str, EventTrigger] = {
    "orders.store.*": EventTrigger(
        MessageTopic.ORDER_UPDATES, "order.ready", "memberId", "orderId", {"order": "orderId"}, {"status": "READY"}
    ),
    "care.ticket.replied": EventTrigger(
        MessageTopic.SERVICE_REPLIES, "care.replied", "member_id", "ticket_id", {"ticket": "ticket_id"}
    ),
}


def matching(topic: str, payload: Mapping[str, Any]) -> list[EventTrigger]:
    return [
        t
        for pattern, t in EVENT_TRIGGERS.items()
        if fnmatch.fnmatchcase(topic, pattern) and all(payload.get(k) == v for k, v in t.when.items())
    ]


@event.listens_for(Session, "before_commit")
def _keep_triggering_events(session: Session) -> None:
    """Before a session commits, keep the events it emitted that trigger messages (flushed with the commit)."""
    for emitted in pending(session.info):
        if matching(emitted.topic, emitted.payload):
            session.add(MessageTrigger(topic=emitted.topic, payload=dict(emitted.payload), created_at=utcnow()))


async def absorb(sessionmaker: async_sessionmaker[AsyncSession], now: datetime | None = None, batch: int = 500) -> int:
    """Turn kept events into messages (each once: its dedupe key), deleting them."""
    async with write_transaction(sessionmaker) as session:
        stmt = select(MessageTrigger).order_by(MessageTrigger.id).limit(batch).with_for_update(skip_locked=True)
        rows = list((await session.scalars(stmt)).all())
        for row in rows:
            for trigger in matching(row.topic, row.payload):
                member_id, ref = row.payload.get(trigger.member_field), row.payload.get(trigger.ref_field)
                if member_id is None or ref is None:
                    continue  # e.g. a walk-in's order: nobody to tell
                variables = {name: str(row.payload.get(source, "")) for name, source in trigger.variables.items()}
                key = f"{trigger.template_key}:{member_id}:{ref}"
                await queue_message(
                    session, int(member_id), trigger.topic, trigger.template_key, variables, key, now=now
                )
        if rows:
            await session.execute(delete(MessageTrigger).where(MessageTrigger.id.in_([r.id for r in rows])))
    return len(rows)


async def notify(
    session: AsyncSession, member_id: int, template_key: str, variables: Mapping[str, str], ref: str
) -> MessageStatus | None:
    """A time-driven trigger's message (points or a card expiring, a birthday coupon): its topic is its built-in
    template's; once per member and `ref`."""
    topic = BUILT_IN[template_key].topic
    return await queue_message(session, member_id, topic, template_key, variables, f"{template_key}:{member_id}:{ref}")


async def warn_points_expiring(session: AsyncSession, now: datetime) -> int:
    """Members whose points expire within 30 days (points earned in a year expire when the year after it ends)."""
    year = now.astimezone(CHAIN_TZ).year - 1
    due = points.expiry_due(year)
    if not now < due <= now + timedelta(days=30):
        return 0
    last_day = (due - timedelta(days=1)).date().isoformat()
    warned = 0
    for member_id, left in sorted((await points.remaining_of_year(session, year)).items()):
        variables = {"points": str(left), "date": last_day}
        warned += await notify(session, member_id, "points.expiring", variables, str(year)) is not None
    return warned


async def warn_cards_expiring(session: AsyncSession, now: datetime) -> int:
    """Members whose cards (卡项) with uses or value left end within 30 days: once per card."""
    warned = 0
    for member_id, card_id, name, expires_at in await member_cards.expiring_cards(session, 30, now=now):
        variables = {"card": name, "date": expires_at.astimezone(CHAIN_TZ).date().isoformat()}
        warned += await notify(session, member_id, "card.expiring", variables, str(card_id)) is not None
    return warned


async def announce_birthday_coupons(session: AsyncSession, now: datetime) -> int:
    """Members given a birthday coupon today (the coupons.birthday job, at midnight) hear of it."""
    local = now.astimezone(CHAIN_TZ)
    since = datetime.combine(local.date(), datetime.min.time(), tzinfo=CHAIN_TZ)
    stmt = (
        select(MemberCoupon.member_id, CouponTemplate.name)
        .join(CouponTemplate, CouponTemplate.id == MemberCoupon.template_id)
        .where(CouponTemplate.trigger == CouponTrigger.BIRTHDAY, MemberCoupon.created_at >= since)
        .order_by(MemberCoupon.id)
    )
    told = 0
    for member_id, name in (await session.execute(stmt)).all():
        ref = str(local.year)
        told += await notify(session, member_id, "birthday.coupon", {"coupon": name}, ref) is not None
    return told


# Registered where they are defined (services/registry.py imports this module): after the coupons.birthday job
# (hour 0) and outside the default quiet hours.
jobs.daily("messages.points_expiring", hour=10)(warn_points_expiring)
jobs.daily("messages.birthday_coupon", hour=9)(announce_birthday_coupons)
jobs.daily("messages.cards_expiring", hour=10)(warn_cards_expiring)

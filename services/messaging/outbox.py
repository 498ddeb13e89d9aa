"""The one way a message is made: `queue_message`. Every trigger and every send path calls it, so no message reaches a
member without their consent for its topic: without it the message is kept as SUPPRESSED_CONSENT and never sent
(the sending job checks consent, the daily cap and quiet hours again when it sends)."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Member, Message, MessageConsent, MessageStatus, MessageTemplate, MessageTopic, Store, utcnow
from services.org.settings import ChainSettings
from services.platform.config import CHAIN_TZ
from services.platform.db import insert_new
from services.platform.errors import DomainError, ErrorCode


@dataclass(frozen=True)
class Wording:
    """A template as code ships it: triggered messages use it until HQ saves a template with the same key."""

    topic: MessageTopic
    title: str
    body: str
    variables: tuple[str, ...]


# The templates triggers use (HQ may reword each by saving a template with its key).
BUILT_IN: dict[str, Wording] = {
    "order.ready": Wording(
        MessageTopic.ORDER_UPDATES, "Order ready", "Your order {order} is ready for pickup.", ("order",)
    ),
    "points.expiring": Wording(
        MessageTopic.EXPIRY, "Points expiring", "{points} points expire on {date}: use them first.", ("points", "date")
    ),
    "card.expiring": Wording(
        MessageTopic.EXPIRY, "Card expiring", "Your card {card} expires on {date}.", ("card", "date")
    ),
    "birthday.coupon": Wording(
        MessageTopic.PROMOTIONS, "Happy birthday", "A birthday coupon is waiting in your wallet: {coupon}.", ("coupon",)
    ),
    "care.replied": Wording(
        MessageTopic.SERVICE_REPLIES, "We replied", "We replied to your feedback {ticket}.", ("ticket",)
    ),
}
NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]{0,31}$")


def placeholders(body: str) -> set[str]:
    """The `{name}` placeholders of a body; DomainError when it does not parse."""
    try:
        return {name for _, name, _, _ in string.Formatter().parse(body) if name is not None}
    except ValueError as exc:
        raise DomainError(ErrorCode.INVALID_INPUT, "The body's placeholders do not parse.", "body") from exc


def render(body: str, variables: Mapping[str, str]) -> str:
    return body.format_map(dict(variables))


async def wording(session: AsyncSession, key: str) -> Wording:
    row = await session.scalar(select(MessageTemplate).where(MessageTemplate.key == key))
    if row is not None:
        return Wording(row.topic, row.title, row.body, tuple(row.variables))
    if key in BUILT_IN:
        return BUILT_IN[key]
    raise DomainError(ErrorCode.NOT_FOUND, "No such message template.", "templateId")


def check_variables(declared: tuple[str, ...] | list[str], given: Mapping[str, str]) -> dict[str, str]:
    missing = sorted(set(declared) - set(given))
    if missing:
        raise DomainError(ErrorCode.INVALID_INPUT, "Give every variable: " + ", ".join(missing), "variables")
    return {k: str(given[k])[:200] for k in declared}


async def consented(session: AsyncSession, member_ids: list[int], topic: MessageTopic) -> set[int]:
    """Which of these members said yes to `topic` (no answer is no; a deleted account says no)."""
    if not member_ids:
        return set()
    stmt = (
        select(MessageConsent.member_id)
        .join(Member, Member.id == MessageConsent.member_id)
        .where(
            MessageConsent.member_id.in_(member_ids),
            MessageConsent.topic == topic,
            MessageConsent.granted.is_(True),
            Member.deleted_at.is_(None),
        )
    )
    return set((await session.scalars(stmt)).all())


async def queue_message(
    session: AsyncSession,
    member_id: int,
    topic: MessageTopic,
    template_key: str,
    variables: Mapping[str, str],
    dedupe_key: str,
    *,
    send_id: int | None = None,
    now: datetime | None = None,
) -> MessageStatus | None:
    """Queue one message for one member, once per `dedupe_key`: QUEUED with consent for `topic`, else kept as
    SUPPRESSED_CONSENT. Returns the status, or None when the dedupe key was used already."""
    now = now or utcnow()
    allowed = member_id in await consented(session, [member_id], topic)
    status = MessageStatus.QUEUED if allowed else MessageStatus.SUPPRESSED_CONSENT
    row = {
        "member_id": member_id,
        "topic": topic,
        "template_key": template_key,
        "variables": dict(variables),
        "dedupe_key": dedupe_key[:160],
        "send_id": send_id,
        "status": status,
        "attempts": 0,
        "due_at": now,
        "created_at": now,
    }
    inserted = await session.execute(insert_new(session, Message, row, unique=["dedupe_key"]).returning(Message.id))
    return status if inserted.first() is not None else None


async def member_zones(session: AsyncSession, member_ids: list[int]) -> dict[int, ZoneInfo]:
    """Each member's time zone: their home store's, else the chain's."""
    stmt = (
        select(Member.id, Store.timezone)
        .outerjoin(Store, and_(Store.id == Member.home_store_id))
        .where(Member.id.in_(member_ids))
    )
    return {mid: ZoneInfo(tz) if tz else CHAIN_TZ for mid, tz in (await session.execute(stmt)).all()}


def quiet_until(settings: ChainSettings, zone: ZoneInfo, now: datetime) -> datetime | None:
    """When the member's quiet hours end, if `now` lies inside them; else None."""
    start, end = settings.quiet_hours_start, settings.quiet_hours_end
    if start == end:
        return None
    local = now.astimezone(zone)
    hour = local.hour
    inside = start <= hour < end if start < end else (hour >= start or hour < end)
    if not inside:
        return None
    day = local.date() if hour < end else local.date() + timedelta(days=1)
    return datetime.combine(day, datetime.min.time(), tzinfo=zone) + timedelta(hours=end)


def local_day_start(zone: ZoneInfo, now: datetime) -> datetime:
    local = now.astimezone(zone)
    return datetime.combine(local.date(), datetime.min.time(), tzinfo=zone)

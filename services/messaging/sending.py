"""The sending job: queued messages go to the provider in batches, each claimed with SKIP LOCKED so instances
sending at once never send one twice. Each message is checked again as it goes: the member's consent for its
topic (else SUPPRESSED_CONSENT), their quiet hours in their time zone (it waits until they end), the daily cap in
their local day (else SUPPRESSED_CAP); a provider failure is retried with backoff, then FAILED."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import Member, MemberIdentity, Message, MessageConsent, MessageStatus, utcnow
from services.messaging import triggers
from services.messaging.outbox import Wording, local_day_start, member_zones, quiet_until, render, wording
from services.messaging.providers import MessageProvider, Outgoing, SendFailed, installed
from services.org.settings import ChainSettings, get_settings
from services.platform import jobs
from services.platform.db import write_transaction
from services.platform.events import Broker

BATCH = 50
MAX_ATTEMPTS = 5
RETRY_BASE = timedelta(seconds=30)
# How often each instance sends (README: MESSAGES_INTERVAL_S, default 10 s; the app passes its setting).
SEND_INTERVAL_S = 10.0


@dataclass
class Batch:
    """What one batch's checks need, read with one statement each."""

    settings: ChainSettings
    zones: dict[int, ZoneInfo]
    consents: set[tuple[int, str]]
    sent_at: dict[int, list[datetime]]
    recipients: dict[int, str]
    wordings: dict[str, Wording]


async def _batch_facts(session: AsyncSession, rows: list[Message], now: datetime) -> Batch:
    ids = sorted({m.member_id for m in rows})
    consents = await session.execute(
        select(MessageConsent.member_id, MessageConsent.topic)
        .join(Member, Member.id == MessageConsent.member_id)
        .where(MessageConsent.member_id.in_(ids), MessageConsent.granted.is_(True), Member.deleted_at.is_(None))
    )
    sent = await session.execute(
        select(Message.member_id, Message.sent_at).where(
            Message.member_id.in_(ids), Message.status == MessageStatus.SENT, Message.sent_at >= now - timedelta(days=2)
        )
    )
    sent_at: dict[int, list[datetime]] = defaultdict(list)
    for member_id, at in sent.all():
        if at is not None:
            sent_at[member_id].append(at)
    openids = await session.execute(
        select(MemberIdentity.member_id, MemberIdentity.subject).where(
            MemberIdentity.member_id.in_(ids), MemberIdentity.provider == "wechat"
        )
    )
    return Batch(
        settings=await get_settings(session),
        zones=await member_zones(session, ids),
        consents={(mid, str(topic)) for mid, topic in consents.all()},
        sent_at=sent_at,
        recipients={mid: subject for mid, subject in openids.all()},
        wordings={key: await wording(session, key) for key in sorted({m.template_key for m in rows})},
    )


async def _deliver(message: Message, facts: Batch, provider: MessageProvider, now: datetime) -> None:
    zone = facts.zones.get(message.member_id)
    if zone is None or (message.member_id, str(message.topic)) not in facts.consents:
        message.status = MessageStatus.SUPPRESSED_CONSENT
        return
    later = quiet_until(facts.settings, zone, now)
    if later is not None:
        message.due_at = later
        return
    today = local_day_start(zone, now)
    if sum(1 for at in facts.sent_at[message.member_id] if at >= today) >= facts.settings.message_cap_per_day:
        message.status = MessageStatus.SUPPRESSED_CAP
        return
    words = facts.wordings[message.template_key]
    message.attempts += 1
    try:
        text = render(words.body, message.variables)
        outgoing = Outgoing(
            message.id,
            message.member_id,
            facts.recipients.get(message.member_id),
            message.template_key,
            words.title,
            text,
            message.variables,
        )
        ref = await provider.send(outgoing)
    except (SendFailed, KeyError, ValueError) as exc:
        permanent = not isinstance(exc, SendFailed) or exc.permanent
        message.last_error = str(exc)[:255]
        if permanent or message.attempts >= MAX_ATTEMPTS:
            message.status = MessageStatus.FAILED
        else:
            message.due_at = now + RETRY_BASE * (1 << (message.attempts - 1))
        return
    message.status, message.sent_at, message.provider, message.provider_ref = (
        MessageStatus.SENT,
        now,
        provider.name,
        ref,
    )
    message.title, message.text = words.title, text
    facts.sent_at[message.member_id].append(now)


async def send_batch(session: AsyncSession, provider: MessageProvider, now: datetime, size: int = BATCH) -> int:
    """Send (or hold, or suppress) up to `size` due messages; returns how many were looked at."""
    stmt = (
        select(Message)
        .where(Message.status == MessageStatus.QUEUED, Message.due_at <= now)
        .order_by(Message.due_at, Message.id)
        .limit(size)
        .with_for_update(skip_locked=True)
    )
    rows = list((await session.scalars(stmt)).all())
    if not rows:
        return 0
    facts = await _batch_facts(session, rows, now)
    for message in rows:
        await _deliver(message, facts, provider, now)
    await session.flush()
    return len(rows)


async def send_due(
    sessionmaker: async_sessionmaker[AsyncSession], provider: MessageProvider | None, now: datetime | None = None
) -> int:
    """Turn pending triggers into messages, then send every due message, a batch per transaction."""
    await triggers.absorb(sessionmaker, now)
    if provider is None:  # production without a configured provider: messages wait
        return 0
    total = 0
    while True:
        async with write_transaction(sessionmaker) as session:
            done = await send_batch(session, provider, now or utcnow())
        total += done
        if done < BATCH:
            return total


async def send_queued(sessionmaker: async_sessionmaker[AsyncSession], broker: Broker | None = None) -> int:
    """Each instance's sending pass, through the provider the app installed (services/messaging/providers.py); it
    announces nothing, so the runner's broker goes unused."""
    return await send_due(sessionmaker, installed())


# Each instance's runner repeats it (registered here; services/registry.py imports this module; the app passes its
# MESSAGES_INTERVAL_S setting as the interval).
jobs.periodic("messages.send", every_s=SEND_INTERVAL_S)(send_queued)

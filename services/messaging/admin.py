"""What members and HQ do with messages: a member's consent per topic and the messages they received; HQ's
templates, its sends to a segment, tag, level or list of members, the message log and a send's effect."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Member,
    MemberTagLink,
    Message,
    MessageConsent,
    MessageSend,
    MessageStatus,
    MessageTemplate,
    MessageTopic,
    Order,
    utcnow,
)
from services.access.permissions import Perm
from services.access.scope import Viewer, idempotency_scope, require
from services.messaging.outbox import BUILT_IN, NAME, check_variables, placeholders, queue_message
from services.platform import idempotency
from services.platform.errors import AccessDenied, DomainError, ErrorCode, Unauthenticated
from services.platform.pagination import Page, keyset_page
from services.platform.validation import text

MAX_LIST = 1000


def _member(viewer: Viewer) -> int:
    if viewer.member_id is None:
        raise Unauthenticated()
    return viewer.member_id


def require_hq(viewer: Viewer) -> None:
    """Messages go to members chain-wide: HQ staff holding message.manage."""
    require(viewer, Perm.MESSAGE_MANAGE)
    if not viewer.is_hq:
        raise AccessDenied()


async def set_consent(
    session: AsyncSession, viewer: Viewer, topic: MessageTopic, granted: bool
) -> list[MessageConsent]:
    member_id = _member(viewer)
    row = await session.get(MessageConsent, (member_id, topic), with_for_update=True)
    if row is None:
        session.add(MessageConsent(member_id=member_id, topic=topic, granted=granted, updated_at=utcnow()))
    else:
        row.granted, row.updated_at = granted, utcnow()
    await session.flush()
    return await consents_of(session, member_id)


async def consents_of(session: AsyncSession, member_id: int) -> list[MessageConsent]:
    """One entry per topic: the member's answer, or a not-granted one where they never answered."""
    stmt = select(MessageConsent).where(MessageConsent.member_id == member_id)
    given = {c.topic: c for c in (await session.scalars(stmt)).all()}
    return [given.get(t) or MessageConsent(member_id=member_id, topic=t, granted=False) for t in MessageTopic]


async def my_consents(session: AsyncSession, viewer: Viewer) -> list[MessageConsent]:
    return await consents_of(session, _member(viewer))


async def my_messages(session: AsyncSession, viewer: Viewer, *, first: int | None, after: str | None) -> Page[Message]:
    """The messages that reached the member, newest first."""
    stmt = select(Message).where(Message.member_id == _member(viewer), Message.status == MessageStatus.SENT)
    return await keyset_page(session, stmt, Message.id, first=first, after=after, descending=True)


def _template_fields(key: str, topic: MessageTopic, title: str, body: str, variables: list[str]) -> dict[str, Any]:
    key = text(key, "key", max_len=64)
    if not all(NAME.match(v) for v in variables) or len(set(variables)) != len(variables):
        raise DomainError(ErrorCode.INVALID_INPUT, "Variables are distinct names (letters, digits, _).", "variables")
    used = placeholders(body)
    if not used <= set(variables):
        raise DomainError(ErrorCode.INVALID_INPUT, "Declare every placeholder: " + ", ".join(sorted(used)), "body")
    if key in BUILT_IN and (topic != BUILT_IN[key].topic or not set(BUILT_IN[key].variables) <= set(variables)):
        raise DomainError(ErrorCode.INVALID_INPUT, "A trigger's template keeps its topic and variables.", "key")
    return {
        "key": key,
        "topic": topic,
        "title": text(title, "title", max_len=64),
        "body": text(body, "body", max_len=500),
        "variables": variables,
    }


async def create_template(
    session: AsyncSession, viewer: Viewer, *, key: str, topic: MessageTopic, title: str, body: str, variables: list[str]
) -> MessageTemplate:
    require_hq(viewer)
    fields = _template_fields(key, topic, title, body, variables)
    if await session.scalar(select(MessageTemplate.id).where(MessageTemplate.key == fields["key"])) is not None:
        raise DomainError(ErrorCode.DUPLICATE, "A template has this key.", "key")
    template = MessageTemplate(**fields, created_at=utcnow(), updated_at=utcnow())
    session.add(template)
    await session.flush()
    return template


async def update_template(
    session: AsyncSession, viewer: Viewer, template_id: int, *, title: str, body: str, variables: list[str]
) -> MessageTemplate:
    require_hq(viewer)
    template = await session.get(MessageTemplate, template_id, with_for_update=True)
    if template is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such message template.", "id")
    fields = _template_fields(template.key, template.topic, title, body, variables)
    template.title, template.body, template.variables = fields["title"], fields["body"], fields["variables"]
    template.updated_at = utcnow()
    await session.flush()
    return template


async def templates(session: AsyncSession, viewer: Viewer, *, first: int | None, after: str | None) -> Page[Any]:
    require_hq(viewer)
    return await keyset_page(session, select(MessageTemplate), MessageTemplate.id, first=first, after=after)


@dataclass(frozen=True)
class Audience:
    """Exactly one of: an RFM segment, a tag, a level, a list of members."""

    segment: str | None = None
    tag_id: int | None = None
    level_id: int | None = None
    member_ids: tuple[int, ...] | None = None

    def as_dict(self) -> dict[str, Any]:
        ids = None if self.member_ids is None else sorted(set(self.member_ids))
        return {"segment": self.segment, "tagId": self.tag_id, "levelId": self.level_id, "memberIds": ids}


async def audience_members(session: AsyncSession, audience: Audience) -> list[int]:
    given = [v for v in (audience.segment, audience.tag_id, audience.level_id, audience.member_ids) if v is not None]
    if len(given) != 1:
        raise DomainError(
            ErrorCode.INVALID_INPUT, "Name one audience: a segment, a tag, a level or members.", "audience"
        )
    if audience.member_ids is not None:
        if not 0 < len(set(audience.member_ids)) <= MAX_LIST:
            raise DomainError(ErrorCode.INVALID_INPUT, f"List 1 to {MAX_LIST} members.", "memberIds")
        stmt = select(Member.id).where(Member.id.in_(set(audience.member_ids)))
    elif audience.tag_id is not None:
        stmt = select(MemberTagLink.member_id).where(MemberTagLink.tag_id == audience.tag_id)
    elif audience.level_id is not None:
        stmt = select(Member.id).where(Member.level_id == audience.level_id)
    else:
        stmt = select(Member.id).where(Member.segment == audience.segment)
    return sorted(set((await session.scalars(stmt)).all()))


async def send_message(
    session: AsyncSession,
    viewer: Viewer,
    *,
    template_id: int,
    variables: Mapping[str, str],
    audience: Audience,
    key: str,
) -> MessageSend:
    """Queue a template to an audience, once per idempotency key: members who agreed to its topic get it (the job
    sends it), the others' messages are kept as SUPPRESSED_CONSENT."""
    require_hq(viewer)
    request = {"template": template_id, "variables": dict(variables), "audience": audience.as_dict()}

    async def run() -> MessageSend:
        template = await session.get(MessageTemplate, template_id)
        if template is None:
            raise DomainError(ErrorCode.NOT_FOUND, "No such message template.", "templateId")
        values = check_variables(template.variables, variables)
        members = await audience_members(session, audience)
        send = MessageSend(template_id=template.id, audience=audience.as_dict(), variables=values)
        send.created_by, send.created_at = viewer.staff_id, utcnow()
        session.add(send)
        await session.flush()
        for member_id in members:
            await queue_message(
                session, member_id, template.topic, template.key, values, f"send:{send.id}:{member_id}", send_id=send.id
            )
        return send

    async def load(stored: dict[str, Any]) -> MessageSend:
        send = await session.get(MessageSend, int(stored["id"]))
        assert send is not None
        return send

    scope = idempotency_scope(viewer, "sendMessage")
    return await idempotency.once(
        session, scope=scope, key=key, request=request, run=run, save=lambda s: {"id": s.id}, load=load
    )


async def message_log(
    session: AsyncSession,
    viewer: Viewer,
    *,
    status: MessageStatus | None,
    send_id: int | None,
    member_id: int | None,
    first: int | None,
    after: str | None,
) -> Page[Any]:
    require_hq(viewer)
    stmt = select(Message)
    for column, value in ((Message.status, status), (Message.send_id, send_id), (Message.member_id, member_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    return await keyset_page(session, stmt, Message.id, first=first, after=after, descending=True)


async def message_send(session: AsyncSession, viewer: Viewer, send_id: int) -> MessageSend | None:
    require_hq(viewer)
    return await session.get(MessageSend, send_id)


@dataclass(frozen=True)
class Effect:
    queued: int
    sent: int
    suppressed: int
    failed: int
    orders: int
    days: int


def check_effect_days(days: int) -> None:
    if not 1 <= days <= 90:
        raise DomainError(ErrorCode.INVALID_INPUT, "Count 1 to 90 days.", "days")


async def effects(
    session: AsyncSession, viewer: Viewer, keys: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], Effect]:
    """Sends' effects by (send id, days): each send's messages by status, and the paid orders its recipients placed
    within `days` after their message. Two statements for any number of sends."""
    require_hq(viewer)
    for _, days in keys:
        check_effect_days(days)
    send_ids = sorted({send_id for send_id, _ in keys})
    by_status: dict[int, dict[MessageStatus, int]] = defaultdict(dict)
    last_sent: dict[int, datetime] = {}
    rows = await session.execute(
        select(Message.send_id, Message.status, func.count(), func.max(Message.sent_at))
        .where(Message.send_id.in_(send_ids))
        .group_by(Message.send_id, Message.status)
    )
    for send_id, status, count, latest in rows:
        if send_id is None:
            continue  # not asked (the statement names its sends): for the type checker
        by_status[send_id][status] = int(count)
        if status == MessageStatus.SENT and latest is not None:
            last_sent[send_id] = latest
    followed: dict[int, list[tuple[int, datetime, datetime]]] = defaultdict(list)  # send -> (order, placed, sent)
    if last_sent:
        longest: dict[int, int] = defaultdict(int)  # send -> the most days asked of it
        for send_id, days in keys:
            longest[send_id] = max(longest[send_id], days)
        within = [
            and_(Message.send_id == send_id, Order.created_at < sent + timedelta(days=longest[send_id]))
            for send_id, sent in last_sent.items()
        ]
        stmt = (
            select(Message.send_id, Order.id, Order.created_at, Message.sent_at)
            .join(Message, and_(Message.member_id == Order.member_id, Order.created_at >= Message.sent_at))
            .where(Message.status == MessageStatus.SENT, Order.paid_at.is_not(None), or_(*within))
        )
        for send_id, order_id, placed, sent in await session.execute(stmt):
            if send_id is not None and sent is not None:  # as above; a SENT message has its time
                followed[send_id].append((order_id, placed, sent))
    found: dict[tuple[int, int], Effect] = {}
    for send_id, days in keys:
        counts, window = by_status[send_id], timedelta(days=days)
        orders = {order_id for order_id, placed, sent in followed[send_id] if placed < sent + window}
        found[(send_id, days)] = Effect(
            queued=counts.get(MessageStatus.QUEUED, 0),
            sent=counts.get(MessageStatus.SENT, 0),
            suppressed=counts.get(MessageStatus.SUPPRESSED_CONSENT, 0) + counts.get(MessageStatus.SUPPRESSED_CAP, 0),
            failed=counts.get(MessageStatus.FAILED, 0),
            orders=len(orders),
            days=days,
        )
    return found


async def exported(session: AsyncSession, member_id: int) -> dict[str, Any]:
    """The member's data export's part: their answers per topic and every message kept for them."""
    consents = (await session.scalars(select(MessageConsent).where(MessageConsent.member_id == member_id))).all()
    messages = (await session.scalars(select(Message).where(Message.member_id == member_id).order_by(Message.id))).all()
    return {
        "messageConsents": [
            {"topic": c.topic.value, "granted": c.granted, "at": c.updated_at.isoformat()} for c in consents
        ],
        "messages": [
            {
                "topic": m.topic.value,
                "status": m.status.value,
                "title": m.title,
                "text": m.text,
                "at": (m.sent_at or m.created_at).isoformat(),
            }
            for m in messages
        ],
    }

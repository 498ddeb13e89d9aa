"""Feedback and complaints: a member rates an order or a store; a complaint is a ticket with an SLA.

A ticket goes open -> in progress -> resolved, or is escalated to HQ (which then resolves it). Every action and
reply is a TicketEntry with who and when; the member sees the replies. Resolving may refund through the refund
service (`refundOrder`'s rules, keyed by the ticket so a retried resolve pays once), give a coupon or points.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Order,
    Rating,
    Store,
    Ticket,
    TicketEntry,
    TicketEntryKind,
    TicketStatus,
    utcnow,
)
from services.access.permissions import Perm
from services.access.scope import Viewer, acted_in, idempotency_scope, require
from services.care import gifts
from services.care.scope import check_store, tickets_seen
from services.orders import refunds
from services.org.settings import get_settings
from services.platform import events, idempotency
from services.platform.errors import AccessDenied, DomainError, ErrorCode
from services.platform.pagination import Page, keyset_page
from services.platform.payments import PaymentProvider
from services.platform.validation import optional_text, text

REPLIED = "care.ticket.replied"
MAX_PHOTOS = 9
OPEN_STATES = (TicketStatus.OPEN, TicketStatus.IN_PROGRESS, TicketStatus.ESCALATED)


@dataclass(frozen=True)
class Feedback:
    """What a member writes: about an order (and so its store) or a store."""

    order_id: int | None
    store_id: int | None
    text: str | None
    photo_urls: list[str] = field(default_factory=list)


def _photos(urls: list[str]) -> list[str]:
    if len(urls) > MAX_PHOTOS:
        raise DomainError(ErrorCode.INVALID_INPUT, f"At most {MAX_PHOTOS} photos.", "photoUrls")
    for url in urls:
        if not url.startswith("https://") or len(url) > 500:
            raise DomainError(ErrorCode.INVALID_INPUT, "Photos are https:// addresses.", "photoUrls")
    return list(urls)


async def _about(session: AsyncSession, viewer: Viewer, feedback: Feedback) -> tuple[int, int | None]:
    """(store, order) the feedback is about: the member's own order, or an existing store."""
    if not viewer.is_member or viewer.member_id is None:
        raise AccessDenied("Only members give feedback.")
    if feedback.order_id is not None:
        order = await session.get(Order, feedback.order_id)
        if order is None or order.member_id != viewer.member_id:
            raise DomainError(ErrorCode.NOT_FOUND, "No such order.", "orderId")
        return order.store_id, order.id
    if feedback.store_id is None or await session.get(Store, feedback.store_id) is None:
        raise DomainError(ErrorCode.NOT_FOUND, "Say which store or order this is about.", "storeId")
    return feedback.store_id, None


async def rate(session: AsyncSession, viewer: Viewer, feedback: Feedback, stars: int) -> Rating:
    """1-5 stars on an order (once per order) or a store."""
    if not 1 <= stars <= 5:
        raise DomainError(ErrorCode.INVALID_INPUT, "Stars are 1 to 5.", "stars")
    store_id, order_id = await _about(session, viewer, feedback)
    if order_id is not None and await session.scalar(select(Rating.id).where(Rating.order_id == order_id)):
        raise DomainError(ErrorCode.DUPLICATE, "This order is rated already.", "orderId")
    assert viewer.member_id is not None
    rating = Rating(
        member_id=viewer.member_id,
        store_id=store_id,
        order_id=order_id,
        stars=stars,
        text=optional_text(feedback.text, "text", max_len=1000),
        photo_urls=_photos(feedback.photo_urls),
    )
    session.add(rating)
    await session.flush()
    acted_in(store_id)
    return rating


async def file_complaint(session: AsyncSession, viewer: Viewer, feedback: Feedback, subject: str) -> Ticket:
    """A member's complaint becomes a ticket, due by the chain's SLA."""
    store_id, order_id = await _about(session, viewer, feedback)
    assert viewer.member_id is not None
    now = utcnow()
    sla = (await get_settings(session)).complaint_sla_hours
    ticket = Ticket(
        store_id=store_id,
        member_id=viewer.member_id,
        order_id=order_id,
        subject=text(subject, "subject", max_len=200),
        text=optional_text(feedback.text, "text", max_len=2000),
        photo_urls=_photos(feedback.photo_urls),
        status=TicketStatus.OPEN,
        due_at=now + timedelta(hours=sla),
        created_at=now,
    )
    session.add(ticket)
    await session.flush()
    session.add(
        TicketEntry(ticket_id=ticket.id, kind=TicketEntryKind.OPENED, member_id=viewer.member_id, created_at=now)
    )
    await session.flush()
    acted_in(store_id)
    return ticket


async def open_for_member(
    session: AsyncSession, *, store_id: int, member_id: int, subject: str, staff_id: int | None
) -> Ticket:
    """A complaint raised on a follow-up call: opened by the staff member for the member."""
    now = utcnow()
    sla = (await get_settings(session)).complaint_sla_hours
    ticket = Ticket(
        store_id=store_id,
        member_id=member_id,
        subject=text(subject, "note", max_len=200),
        status=TicketStatus.OPEN,
        due_at=now + timedelta(hours=sla),
        created_at=now,
        photo_urls=[],
    )
    session.add(ticket)
    await session.flush()
    session.add(TicketEntry(ticket_id=ticket.id, kind=TicketEntryKind.OPENED, staff_id=staff_id, created_at=now))
    await session.flush()
    return ticket


async def _staff_ticket(session: AsyncSession, viewer: Viewer, ticket_id: int) -> Ticket:
    """The ticket, locked, when the viewer's store (or HQ) handles it; another store's is NOT_FOUND."""
    require(viewer, Perm.CARE_TICKET)
    ticket = await session.get(Ticket, ticket_id, with_for_update=True, populate_existing=True)
    if ticket is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such ticket.", "id")
    check_store(viewer, ticket.store_id, Perm.CARE_TICKET, "ticket")
    return ticket


def _entry(session: AsyncSession, ticket: Ticket, kind: TicketEntryKind, viewer: Viewer, words: str | None) -> None:
    session.add(
        TicketEntry(
            ticket_id=ticket.id,
            kind=kind,
            staff_id=viewer.staff_id,
            member_id=viewer.member_id,
            text=words,
            created_at=utcnow(),
        )
    )


def _not_resolved(ticket: Ticket) -> None:
    if ticket.status is TicketStatus.RESOLVED:
        raise DomainError(ErrorCode.INVALID_TRANSITION, "This ticket is resolved.", "id")


async def reply(session: AsyncSession, viewer: Viewer, ticket_id: int, words: str) -> Ticket:
    """Staff reply to the member (seen in the mini-program); an open ticket is now in progress."""
    ticket = await _staff_ticket(session, viewer, ticket_id)
    _not_resolved(ticket)
    _entry(session, ticket, TicketEntryKind.REPLY, viewer, text(words, "text", max_len=2000))
    if ticket.status is TicketStatus.OPEN:
        ticket.status = TicketStatus.IN_PROGRESS
    await session.flush()
    events.emit(session, REPLIED, {"member_id": ticket.member_id, "ticket_id": ticket.id})
    return ticket


async def member_reply(session: AsyncSession, viewer: Viewer, ticket_id: int, words: str) -> Ticket:
    """The member adds to their own ticket."""
    ticket = await session.get(Ticket, ticket_id, with_for_update=True, populate_existing=True)
    if ticket is None or not viewer.is_member or ticket.member_id != viewer.member_id:
        raise DomainError(ErrorCode.NOT_FOUND, "No such ticket.", "id")
    _not_resolved(ticket)
    _entry(session, ticket, TicketEntryKind.MEMBER_REPLY, viewer, text(words, "text", max_len=2000))
    await session.flush()
    acted_in(ticket.store_id)
    return ticket


async def start(session: AsyncSession, viewer: Viewer, ticket_id: int) -> Ticket:
    ticket = await _staff_ticket(session, viewer, ticket_id)
    if ticket.status is not TicketStatus.OPEN:
        raise DomainError(ErrorCode.INVALID_TRANSITION, f"A {ticket.status.value} ticket cannot start.", "id")
    ticket.status = TicketStatus.IN_PROGRESS
    _entry(session, ticket, TicketEntryKind.STARTED, viewer, None)
    await session.flush()
    return ticket


async def escalate(session: AsyncSession, viewer: Viewer, ticket_id: int, words: str | None) -> Ticket:
    """The store hands the ticket to HQ, which resolves it."""
    ticket = await _staff_ticket(session, viewer, ticket_id)
    if ticket.status not in (TicketStatus.OPEN, TicketStatus.IN_PROGRESS):
        raise DomainError(ErrorCode.INVALID_TRANSITION, f"A {ticket.status.value} ticket cannot be escalated.", "id")
    ticket.status = TicketStatus.ESCALATED
    _entry(session, ticket, TicketEntryKind.ESCALATED, viewer, optional_text(words, "text", max_len=2000))
    await session.flush()
    return ticket


@dataclass(frozen=True)
class Resolution:
    """How a ticket is settled: words to the member, and optionally a refund (whole order when `refund_lines` is
    empty and `refund` is set), a coupon, points."""

    text: str
    refund: bool = False
    refund_lines: Mapping[int, int] | None = None  # sku id -> units; None with `refund`: everything left
    restock: bool = False
    coupon_template_id: int | None = None
    points: int | None = None

    def fingerprint(self, ticket_id: int) -> dict[str, Any]:
        return {
            "ticket": ticket_id,
            "text": self.text,
            "refund": self.refund,
            "lines": None if self.refund_lines is None else sorted(self.refund_lines.items()),
            "restock": self.restock,
            "coupon": self.coupon_template_id,
            "points": self.points,
        }


async def _refund(
    session: AsyncSession, viewer: Viewer, providers: dict[str, PaymentProvider], ticket: Ticket, r: Resolution
) -> int:
    if ticket.order_id is None:
        raise DomainError(ErrorCode.INVALID_INPUT, "This complaint is about no order: nothing to refund.", "refund")
    request = refunds.RefundRequest(
        order_id=ticket.order_id, quantities=r.refund_lines, restock=r.restock, reason=f"complaint {ticket.id}"
    )
    # Keyed by the ticket: however the resolve is retried, the order is refunded for this ticket once.
    made = await refunds.refund_order_once(session, viewer, providers, request, idempotency_key=f"ticket-{ticket.id}")
    return made.id


async def _resolve(
    session: AsyncSession, viewer: Viewer, providers: dict[str, PaymentProvider], ticket_id: int, r: Resolution
) -> Ticket:
    ticket = await _staff_ticket(session, viewer, ticket_id)
    _not_resolved(ticket)
    if ticket.status is TicketStatus.ESCALATED and not viewer.is_hq:
        raise AccessDenied("An escalated ticket is resolved by HQ.")
    words = text(r.text, "text", max_len=2000)
    if r.coupon_template_id is not None:
        ticket.coupons_given = await gifts.give_coupon(
            session, viewer, r.coupon_template_id, ticket.member_id, ticket.store_id, "couponTemplateId"
        )
    if r.points is not None:
        ticket.points_given = await gifts.give_points(
            session,
            ticket.member_id,
            r.points,
            note=f"complaint {ticket.id}",
            staff_id=viewer.staff_id,
            by_hq=viewer.is_hq,
        )
    if r.refund:  # last: the payment provider is asked once every other write has succeeded
        ticket.refund_id = await _refund(session, viewer, providers, ticket, r)
    ticket.status, ticket.resolved_at, ticket.resolved_by = TicketStatus.RESOLVED, utcnow(), viewer.staff_id
    _entry(session, ticket, TicketEntryKind.RESOLVED, viewer, words)
    await session.flush()
    events.emit(session, REPLIED, {"member_id": ticket.member_id, "ticket_id": ticket.id})
    return ticket


async def resolve_once(
    session: AsyncSession,
    viewer: Viewer,
    providers: dict[str, PaymentProvider],
    ticket_id: int,
    resolution: Resolution,
    *,
    key: str,
) -> Ticket:
    """Resolve once per key: a replay returns the resolved ticket and moves nothing (and a second resolve with
    another key is INVALID_TRANSITION: a ticket is resolved once)."""

    async def load(stored: dict[str, Any]) -> Ticket:
        ticket = await session.get(Ticket, int(stored["ticket_id"]))
        assert ticket is not None
        return ticket

    return await idempotency.once(
        session,
        scope=idempotency_scope(viewer, "resolveTicket"),
        key=key,
        request=resolution.fingerprint(ticket_id),
        run=lambda: _resolve(session, viewer, providers, ticket_id, resolution),
        save=lambda t: {"ticket_id": t.id},
        load=load,
    )


@dataclass(frozen=True)
class TicketFilter:
    store_id: int | None = None
    status: TicketStatus | None = None
    overdue: bool | None = None


async def list_tickets(
    session: AsyncSession, viewer: Viewer, flt: TicketFilter, *, first: int | None, after: str | None, now: datetime
) -> Page[Ticket]:
    """Staff: their store's tickets (HQ: every store's, e.g. the overdue ones); a member: their own. Newest first."""
    if not viewer.is_member:
        require(viewer, Perm.CARE_TICKET)
    stmt = select(Ticket).where(tickets_seen(viewer))
    if flt.store_id is not None:
        stmt = stmt.where(Ticket.store_id == flt.store_id)
    if flt.status is not None:
        stmt = stmt.where(Ticket.status == flt.status)
    if flt.overdue is True:
        stmt = stmt.where(Ticket.status.in_(OPEN_STATES), Ticket.due_at < now)
    elif flt.overdue is False:
        stmt = stmt.where((Ticket.status == TicketStatus.RESOLVED) | (Ticket.due_at >= now))
    return await keyset_page(session, stmt, Ticket.id, first=first, after=after, descending=True)

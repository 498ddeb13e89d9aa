"""After-sales service: the viewer and arguments in, service calls out. The values the care API's inputs are made
of are re-exported here (`X as X`) for schema/, which imports no service."""

from __future__ import annotations

from datetime import datetime

from models import FollowUpRule, FollowUpTask, Rating, Ticket, utcnow
from resolvers.context import Context
from resolvers.loaders.care import CareMember as CareMember
from services.care import follow_ups, tickets
from services.care.follow_ups import Audience as Audience
from services.care.follow_ups import Completion as Completion
from services.care.follow_ups import NewFollowUps as NewFollowUps
from services.care.follow_ups import NewRule as NewRule
from services.care.follow_ups import Outcome as Outcome
from services.care.follow_ups import TaskFilter as TaskFilter
from services.care.tickets import Feedback as Feedback
from services.care.tickets import Resolution as Resolution
from services.care.tickets import TicketFilter as TicketFilter
from services.platform.pagination import Page


async def tasks(
    ctx: Context, flt: follow_ups.TaskFilter, *, first: int | None, after: str | None
) -> Page[FollowUpTask]:
    async with ctx.read() as session:
        return await follow_ups.list_tasks(session, ctx.viewer, flt, first=first, after=after)


async def completion(ctx: Context, since: datetime) -> list[follow_ups.Completion]:
    async with ctx.read() as session:
        return await follow_ups.completion(session, ctx.viewer, since=since, now=utcnow())


async def ticket_list(ctx: Context, flt: tickets.TicketFilter, *, first: int | None, after: str | None) -> Page[Ticket]:
    async with ctx.read() as session:
        return await tickets.list_tickets(session, ctx.viewer, flt, first=first, after=after, now=utcnow())


async def create_follow_ups(ctx: Context, spec: follow_ups.NewFollowUps, key: str) -> int:
    return await follow_ups.create_once(ctx.session, ctx.viewer, spec, key=key)


async def create_rule(ctx: Context, spec: follow_ups.NewRule) -> FollowUpRule:
    return await follow_ups.create_rule(ctx.session, ctx.viewer, spec)


async def reveal_phone(ctx: Context, task_id: int) -> tuple[int, str | None]:
    """The member whose number it is (for the audit entry's targets) and the number."""
    return await follow_ups.reveal_phone(ctx.session, ctx.app.cipher, ctx.viewer, task_id)


async def complete(ctx: Context, task_id: int, outcome: follow_ups.Outcome, key: str) -> FollowUpTask:
    return await follow_ups.complete_once(ctx.session, ctx.viewer, task_id, outcome, key=key)


async def rate(ctx: Context, feedback: tickets.Feedback, stars: int) -> Rating:
    return await tickets.rate(ctx.session, ctx.viewer, feedback, stars)


async def file_complaint(ctx: Context, feedback: tickets.Feedback, subject: str) -> Ticket:
    return await tickets.file_complaint(ctx.session, ctx.viewer, feedback, subject)


async def reply(ctx: Context, ticket_id: int, text: str) -> Ticket:
    return await tickets.reply(ctx.session, ctx.viewer, ticket_id, text)


async def member_reply(ctx: Context, ticket_id: int, text: str) -> Ticket:
    return await tickets.member_reply(ctx.session, ctx.viewer, ticket_id, text)


async def start(ctx: Context, ticket_id: int) -> Ticket:
    return await tickets.start(ctx.session, ctx.viewer, ticket_id)


async def escalate(ctx: Context, ticket_id: int, text: str | None) -> Ticket:
    return await tickets.escalate(ctx.session, ctx.viewer, ticket_id, text)


async def resolve(ctx: Context, ticket_id: int, resolution: tickets.Resolution, key: str) -> Ticket:
    return await tickets.resolve_once(
        ctx.session, ctx.viewer, ctx.app.payment_providers, ticket_id, resolution, key=key
    )

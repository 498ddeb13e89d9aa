"""After-sales types: follow-up tasks and rules, ratings, complaint tickets and their entries."""

from __future__ import annotations

from datetime import datetime
from typing import Self

import strawberry
from strawberry import relay

from models import (
    FollowUpOutcome,
    FollowUpRuleKind,
    FollowUpSource,
    FollowUpStatus,
    TicketEntryKind,
    TicketStatus,
    utcnow,
)
from models import FollowUpRule as FollowUpRuleModel
from models import FollowUpTask as FollowUpTaskModel
from models import Rating as RatingModel
from models import Ticket as TicketModel
from models import TicketEntry as TicketEntryModel
from resolvers.care import CareMember as CareMemberView
from resolvers.care import Completion
from resolvers.context import Context
from schema.core.common import UserError
from schema.core.node import Loaded
from schema.core.personal import personal
from schema.orders.types import CartLineInput, Order, Refund
from schema.org.types import Staff, Store

strawberry.enum(FollowUpSource, name="FollowUpSource")
strawberry.enum(FollowUpStatus, name="FollowUpStatus")
strawberry.enum(FollowUpOutcome, name="FollowUpOutcome")
strawberry.enum(FollowUpRuleKind, name="FollowUpRuleKind")
strawberry.enum(TicketStatus, name="TicketStatus")
strawberry.enum(TicketEntryKind, name="TicketEntryKind")


@strawberry.type(description="Who a task or ticket is about: name and masked phone (revealFollowUpPhone: in full)")
class CareMember:
    name: str | None
    phone: str | None

    @classmethod
    def of(cls, view: CareMemberView | None) -> Self | None:
        return None if view is None else cls(name=view.name, phone=view.phone)


async def _care_member(ctx: Context, member_id: int) -> CareMember | None:
    return CareMember.of(await ctx.loaders.care_member_by_id.load(member_id))


@strawberry.type(description="A follow-up call (回访) for a store's staff")
class FollowUpTask(Loaded, relay.Node):
    id: relay.NodeID[int]
    source: FollowUpSource
    script: str
    due_at: datetime
    status: FollowUpStatus
    outcome: FollowUpOutcome | None
    note: str | None
    coupons_given: int
    created_at: datetime
    completed_at: datetime | None
    store_id: strawberry.Private[int]
    member_id: strawberry.Private[int]
    assignee_id: strawberry.Private[int | None]
    ticket_id: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, m: FollowUpTaskModel) -> Self:
        return cls(
            id=m.id,
            source=m.source,
            script=m.script,
            due_at=m.due_at,
            status=m.status,
            outcome=m.outcome,
            note=m.note,
            coupons_given=m.coupons_given,
            created_at=m.created_at,
            completed_at=m.completed_at,
            store_id=m.store_id,
            member_id=m.member_id,
            assignee_id=m.assignee_id,
            ticket_id=m.ticket_id,
        )

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        m = await ctx.loaders.follow_up_task_by_id.load(pk)
        return cls.from_model(m) if m else None

    @strawberry.field(description="Still open past its due time")
    def overdue(self) -> bool:
        return self.status is FollowUpStatus.OPEN and self.due_at < utcnow()

    @strawberry.field
    async def store(self, info: strawberry.Info[Context, None]) -> Store | None:
        return await Store.load(info.context, self.store_id)

    @strawberry.field
    async def member(self, info: strawberry.Info[Context, None]) -> CareMember | None:
        return await _care_member(info.context, self.member_id)

    @strawberry.field
    async def assignee(self, info: strawberry.Info[Context, None]) -> Staff | None:
        return await Staff.load(info.context, self.assignee_id) if self.assignee_id is not None else None

    @strawberry.field(description="The complaint opened when the call raised one")
    async def ticket(self, info: strawberry.Info[Context, None]) -> Ticket | None:
        return await Ticket.load(info.context, self.ticket_id) if self.ticket_id is not None else None


@strawberry.type(description="An event rule: the daily job makes a task for each matching event")
class FollowUpRule:
    kind: FollowUpRuleKind
    min_amount: int = strawberry.field(description="REFUND_OVER: refunds of at least this many fen")
    script: str
    due_hours: int
    store_id: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, m: FollowUpRuleModel) -> Self:
        return cls(kind=m.kind, min_amount=m.min_amount, script=m.script, due_hours=m.due_hours, store_id=m.store_id)

    @strawberry.field(description="Null: every store")
    async def store(self, info: strawberry.Info[Context, None]) -> Store | None:
        return await Store.load(info.context, self.store_id) if self.store_id is not None else None


@strawberry.type
class FollowUpCompletion:
    total: int
    done: int
    overdue: int
    reached: int
    coupons_given: int
    store_id: strawberry.Private[int]

    @classmethod
    def of(cls, c: Completion) -> Self:
        return cls(
            total=c.total,
            done=c.done,
            overdue=c.overdue,
            reached=c.reached,
            coupons_given=c.coupons_given,
            store_id=c.store_id,
        )

    @strawberry.field(description="done / total")
    def rate(self) -> float:
        return round(self.done / self.total, 4) if self.total else 0.0

    @strawberry.field
    async def store(self, info: strawberry.Info[Context, None]) -> Store | None:
        return await Store.load(info.context, self.store_id)


@strawberry.type
class Rating:
    stars: int
    text: str | None
    photo_urls: list[str]
    created_at: datetime
    store_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, m: RatingModel) -> Self:
        return cls(
            stars=m.stars, text=m.text, photo_urls=list(m.photo_urls), created_at=m.created_at, store_id=m.store_id
        )

    @strawberry.field
    async def store(self, info: strawberry.Info[Context, None]) -> Store | None:
        return await Store.load(info.context, self.store_id)


@strawberry.type(description="One action or reply on a ticket: who and when")
class TicketEntry:
    kind: TicketEntryKind
    text: str | None
    created_at: datetime
    by_member: bool = strawberry.field(description="Written by the member (else by staff)")
    staff_id: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, m: TicketEntryModel) -> Self:
        return cls(
            kind=m.kind, text=m.text, created_at=m.created_at, by_member=m.member_id is not None, staff_id=m.staff_id
        )

    @strawberry.field(description="The staff member (for staff who may see staff)")
    async def staff(self, info: strawberry.Info[Context, None]) -> Staff | None:
        return await Staff.load(info.context, self.staff_id) if self.staff_id is not None else None


@strawberry.type(description="A complaint: OPEN -> IN_PROGRESS -> RESOLVED, or ESCALATED to HQ; due by the SLA")
class Ticket(Loaded, relay.Node):
    id: relay.NodeID[int]
    subject: str
    text: str | None
    photo_urls: list[str]
    status: TicketStatus
    due_at: datetime
    created_at: datetime
    resolved_at: datetime | None
    coupons_given: int
    points_given: int
    store_id: strawberry.Private[int]
    member_id: strawberry.Private[int]
    order_id: strawberry.Private[int | None]
    refund_id: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, m: TicketModel) -> Self:
        return cls(
            id=m.id,
            subject=m.subject,
            text=m.text,
            photo_urls=list(m.photo_urls or []),
            status=m.status,
            due_at=m.due_at,
            created_at=m.created_at,
            resolved_at=m.resolved_at,
            coupons_given=m.coupons_given,
            points_given=m.points_given,
            store_id=m.store_id,
            member_id=m.member_id,
            order_id=m.order_id,
            refund_id=m.refund_id,
        )

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        m = await ctx.loaders.ticket_by_id.load(pk)
        return cls.from_model(m) if m else None

    @strawberry.field(description="Not resolved and past its due time")
    def overdue(self) -> bool:
        return self.status is not TicketStatus.RESOLVED and self.due_at < utcnow()

    @strawberry.field
    async def store(self, info: strawberry.Info[Context, None]) -> Store | None:
        return await Store.load(info.context, self.store_id)

    @strawberry.field
    async def member(self, info: strawberry.Info[Context, None]) -> CareMember | None:
        return await _care_member(info.context, self.member_id)

    @strawberry.field
    async def order(self, info: strawberry.Info[Context, None]) -> Order | None:
        return await Order.load(info.context, self.order_id) if self.order_id is not None else None

    @strawberry.field(description="The refund the resolution made")
    async def refund(self, info: strawberry.Info[Context, None]) -> Refund | None:
        return await Refund.load(info.context, self.refund_id) if self.refund_id is not None else None

    @strawberry.field(description="Every action and reply, oldest first (the member sees them in the mini-program)")
    async def entries(self, info: strawberry.Info[Context, None]) -> list[TicketEntry]:
        return [TicketEntry.from_model(e) for e in await info.context.loaders.ticket_entries_by_ticket.load(self.id)]


@strawberry.input
class FollowUpAudienceInput:
    segment: str | None = strawberry.field(default=None, description="An RFM segment, e.g. VIP, AT_RISK")
    tag_id: strawberry.ID | None = None
    level_id: strawberry.ID | None = None
    member_ids: list[strawberry.ID] | None = None


@strawberry.input
class CreateFollowUpsInput:
    store_id: strawberry.ID
    audience: FollowUpAudienceInput = strawberry.field(description="The store's members matching all that is given")
    script: str
    due_at: datetime
    idempotency_key: str = strawberry.field(description="The same key again makes no second set of tasks")
    assignee_id: strawberry.ID | None = None


@strawberry.type
class CreateFollowUpsPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    created: int = strawberry.field(default=0, description="Tasks made (one per matching member)")


@strawberry.input
class CreateFollowUpRuleInput:
    kind: FollowUpRuleKind
    script: str
    store_id: strawberry.ID | None = strawberry.field(default=None, description="Left out: every store (HQ only)")
    min_amount: int = strawberry.field(default=0, description="REFUND_OVER: the least refund, fen")
    due_hours: int = 48


@strawberry.type
class FollowUpRulePayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    rule: FollowUpRule | None = None


@strawberry.input
class FollowUpTaskFilterInput:
    store_id: strawberry.ID | None = None
    status: FollowUpStatus | None = None
    assignee_id: strawberry.ID | None = None


@strawberry.input
class FollowUpIdInput:
    id: strawberry.ID


@strawberry.type
class FollowUpPhonePayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    phone: str | None = None


@strawberry.input
class CompleteFollowUpInput:
    id: strawberry.ID
    outcome: FollowUpOutcome
    idempotency_key: str = strawberry.field(description="The same key again returns the task; a coupon is issued once")
    note: str | None = personal(default=None)
    coupon_template_id: strawberry.ID | None = strawberry.field(default=None, description="COUPON_GIVEN: which one")


@strawberry.type
class FollowUpTaskPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    task: FollowUpTask | None = None


@strawberry.input
class FeedbackInput:
    text: str | None = personal(default=None)
    order_id: strawberry.ID | None = strawberry.field(
        default=None, description="About this order of yours (and so its store)"
    )
    store_id: strawberry.ID | None = strawberry.field(default=None, description="About a store, when not an order")
    photo_urls: list[str] = strawberry.field(default_factory=list, description="At most 9 https:// addresses")


@strawberry.input
class SubmitRatingInput:
    stars: int = strawberry.field(description="1 to 5")
    about: FeedbackInput


@strawberry.type
class RatingPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    rating: Rating | None = None


@strawberry.input
class FileComplaintInput:
    subject: str = personal()
    about: FeedbackInput


@strawberry.input
class TicketTextInput:
    id: strawberry.ID
    text: str = personal()


@strawberry.input
class TicketIdInput:
    id: strawberry.ID
    text: str | None = personal(default=None)


@strawberry.input
class ResolveTicketInput:
    id: strawberry.ID
    text: str = personal(description="What the member is told")
    idempotency_key: str = strawberry.field(description="The same key again returns the ticket; money moves once")
    refund: bool = strawberry.field(default=False, description="Refund the ticket's order (refundOrder's rules)")
    refund_lines: list[CartLineInput] | None = strawberry.field(
        default=None, description="With refund: these units only (left out: everything left on the order)"
    )
    restock: bool = False
    coupon_template_id: strawberry.ID | None = None
    points: int | None = strawberry.field(default=None, description="Points given as a gesture")


@strawberry.type
class TicketPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    ticket: Ticket | None = None


@strawberry.input
class TicketFilterInput:
    store_id: strawberry.ID | None = None
    status: TicketStatus | None = None
    overdue: bool | None = strawberry.field(default=None, description="true: unresolved past the SLA")

"""After-sales root fields: follow-up tasks (回访), ratings, complaint tickets."""

from __future__ import annotations

from datetime import datetime, timedelta

import strawberry

from models import FollowUpOutcome, FollowUpRuleKind, FollowUpStatus, TicketStatus, utcnow
from models import Ticket as TicketModel
from resolvers import Perm
from resolvers import care as care_resolvers
from resolvers.care import (
    Audience,
    Feedback,
    NewFollowUps,
    NewRule,
    Outcome,
    Resolution,
    TaskFilter,
    TicketFilter,
)
from resolvers.context import Context
from schema.care.types import (
    CompleteFollowUpInput,
    CreateFollowUpRuleInput,
    CreateFollowUpsInput,
    CreateFollowUpsPayload,
    FeedbackInput,
    FileComplaintInput,
    FollowUpCompletion,
    FollowUpIdInput,
    FollowUpPhonePayload,
    FollowUpRule,
    FollowUpRulePayload,
    FollowUpTask,
    FollowUpTaskFilterInput,
    FollowUpTaskPayload,
    Rating,
    RatingPayload,
    ResolveTicketInput,
    SubmitRatingInput,
    Ticket,
    TicketFilterInput,
    TicketIdInput,
    TicketPayload,
    TicketTextInput,
)
from schema.core.common import Connection, decode_id, decode_optional_id, global_id
from schema.core.permissions import IsMember, RateLimit, only, requires
from schema.core.transaction import MutationTransaction


def _feedback(about: FeedbackInput) -> Feedback:
    return Feedback(
        order_id=decode_optional_id(about.order_id, "Order", "orderId"),
        store_id=decode_optional_id(about.store_id, "Store", "storeId"),
        text=about.text,
        photo_urls=list(about.photo_urls),
    )


def _ticket(ticket: TicketModel) -> TicketPayload:
    return TicketPayload(ticket=Ticket.from_model(ticket))


@strawberry.type
class CareQuery:
    @strawberry.field(
        extensions=requires(Perm.CARE_FOLLOW_UP),
        description="Follow-up tasks of the viewer's store (HQ: every store's), oldest first.",
    )
    async def follow_up_tasks(
        self,
        info: strawberry.Info[Context, None],
        filter: FollowUpTaskFilterInput | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[FollowUpTask]:
        f = filter or FollowUpTaskFilterInput()
        flt = TaskFilter(
            store_id=decode_optional_id(f.store_id, "Store", "storeId"),
            status=FollowUpStatus(f.status) if f.status else None,
            assignee_id=decode_optional_id(f.assignee_id, "Staff", "assigneeId"),
        )
        page = await care_resolvers.tasks(info.context, flt, first=first, after=after)
        return Connection[FollowUpTask].of(page, FollowUpTask.from_model)

    @strawberry.field(
        extensions=requires(Perm.CARE_MANAGE),
        description="Follow-up completion by store for tasks made since `since` (default: 30 days); a store's "
        "manager sees their own store's row.",
    )
    async def follow_up_completion(
        self, info: strawberry.Info[Context, None], since: datetime | None = None
    ) -> list[FollowUpCompletion]:
        rows = await care_resolvers.completion(info.context, since or utcnow() - timedelta(days=30))
        return [FollowUpCompletion.of(r) for r in rows]

    @strawberry.field(
        extensions=requires(Perm.CARE_TICKET),
        description="Complaint tickets of the viewer's store (HQ: every store's; `overdue: true` for those past the "
        "SLA), newest first.",
    )
    async def tickets(
        self,
        info: strawberry.Info[Context, None],
        filter: TicketFilterInput | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[Ticket]:
        f = filter or TicketFilterInput()
        flt = TicketFilter(
            store_id=decode_optional_id(f.store_id, "Store", "storeId"),
            status=TicketStatus(f.status) if f.status else None,
            overdue=f.overdue,
        )
        page = await care_resolvers.ticket_list(info.context, flt, first=first, after=after)
        return Connection[Ticket].of(page, Ticket.from_model)

    @strawberry.field(extensions=only(IsMember()), description="The member's own complaints with their replies.")
    async def my_tickets(
        self, info: strawberry.Info[Context, None], first: int | None = 20, after: str | None = None
    ) -> Connection[Ticket]:
        page = await care_resolvers.ticket_list(info.context, TicketFilter(), first=first, after=after)
        return Connection[Ticket].of(page, Ticket.from_model)


@strawberry.type
class CareMutation:
    @strawberry.mutation(
        extensions=[*requires(Perm.CARE_MANAGE), MutationTransaction()],
        description="Follow-up tasks for a store's members matching a segment, tag, level or list (one each).",
    )
    async def create_follow_ups(
        self, info: strawberry.Info[Context, None], input: CreateFollowUpsInput
    ) -> CreateFollowUpsPayload:
        a = input.audience
        audience = Audience(
            segment=a.segment,
            tag_id=decode_optional_id(a.tag_id, "MemberTag", "tagId"),
            level_id=decode_optional_id(a.level_id, "MemberLevel", "levelId"),
            member_ids=None
            if a.member_ids is None
            else [decode_id(m, "Member", f"memberIds[{i}]") for i, m in enumerate(a.member_ids)],
        )
        spec = NewFollowUps(
            store_id=decode_id(input.store_id, "Store", "storeId"),
            audience=audience,
            script=input.script,
            due_at=input.due_at,
            assignee_id=decode_optional_id(input.assignee_id, "Staff", "assigneeId"),
        )
        created = await care_resolvers.create_follow_ups(info.context, spec, input.idempotency_key)
        return CreateFollowUpsPayload(created=created)

    @strawberry.mutation(
        extensions=[*requires(Perm.CARE_MANAGE), MutationTransaction()],
        description="An event rule: every refund of at least minAmount, or a member's first visit, becomes a task "
        "(the daily job care.follow_up_rules).",
    )
    async def create_follow_up_rule(
        self, info: strawberry.Info[Context, None], input: CreateFollowUpRuleInput
    ) -> FollowUpRulePayload:
        spec = NewRule(
            kind=FollowUpRuleKind(input.kind),
            script=input.script,
            store_id=decode_optional_id(input.store_id, "Store", "storeId"),
            min_amount=input.min_amount,
            due_hours=input.due_hours,
        )
        return FollowUpRulePayload(rule=FollowUpRule.from_model(await care_resolvers.create_rule(info.context, spec)))

    @strawberry.mutation(
        extensions=[*requires(Perm.CARE_FOLLOW_UP), RateLimit("revealMemberPhone"), MutationTransaction()],
        description="The member's full phone for an open task's call; every reveal is written to the audit log.",
    )
    async def reveal_follow_up_phone(
        self, info: strawberry.Info[Context, None], input: FollowUpIdInput
    ) -> FollowUpPhonePayload:
        member_id, phone = await care_resolvers.reveal_phone(info.context, decode_id(input.id, "FollowUpTask"))
        info.context.audit_targets.append(str(global_id("Member", member_id)))
        return FollowUpPhonePayload(phone=phone)

    @strawberry.mutation(
        extensions=[*requires(Perm.CARE_FOLLOW_UP), MutationTransaction()],
        description="The call's outcome; COUPON_GIVEN issues the coupon (once), COMPLAINT_RAISED opens a ticket.",
    )
    async def complete_follow_up(
        self, info: strawberry.Info[Context, None], input: CompleteFollowUpInput
    ) -> FollowUpTaskPayload:
        outcome = Outcome(
            outcome=FollowUpOutcome(input.outcome),
            note=input.note,
            coupon_template_id=decode_optional_id(input.coupon_template_id, "CouponTemplate", "couponTemplateId"),
        )
        task = await care_resolvers.complete(
            info.context, decode_id(input.id, "FollowUpTask"), outcome, input.idempotency_key
        )
        return FollowUpTaskPayload(task=FollowUpTask.from_model(task))

    @strawberry.mutation(
        extensions=[*only(IsMember()), MutationTransaction()],
        description="A member rates their order (once) or a store: 1-5 stars, words, photos.",
    )
    async def submit_rating(self, info: strawberry.Info[Context, None], input: SubmitRatingInput) -> RatingPayload:
        rating = await care_resolvers.rate(info.context, _feedback(input.about), input.stars)
        return RatingPayload(rating=Rating.from_model(rating))

    @strawberry.mutation(
        extensions=[*only(IsMember()), MutationTransaction()],
        description="A member's complaint about their order or a store: a ticket due by the chain's SLA.",
    )
    async def file_complaint(self, info: strawberry.Info[Context, None], input: FileComplaintInput) -> TicketPayload:
        return _ticket(await care_resolvers.file_complaint(info.context, _feedback(input.about), input.subject))

    @strawberry.mutation(
        extensions=[*only(IsMember()), MutationTransaction()], description="The member adds to their own complaint."
    )
    async def add_to_my_ticket(self, info: strawberry.Info[Context, None], input: TicketTextInput) -> TicketPayload:
        return _ticket(await care_resolvers.member_reply(info.context, decode_id(input.id, "Ticket"), input.text))

    @strawberry.mutation(
        extensions=[*requires(Perm.CARE_TICKET), MutationTransaction()],
        description="Staff reply to the member (seen in the mini-program); an open ticket is now in progress.",
    )
    async def reply_to_ticket(self, info: strawberry.Info[Context, None], input: TicketTextInput) -> TicketPayload:
        return _ticket(await care_resolvers.reply(info.context, decode_id(input.id, "Ticket"), input.text))

    @strawberry.mutation(extensions=[*requires(Perm.CARE_TICKET), MutationTransaction()])
    async def start_ticket(self, info: strawberry.Info[Context, None], input: TicketIdInput) -> TicketPayload:
        return _ticket(await care_resolvers.start(info.context, decode_id(input.id, "Ticket")))

    @strawberry.mutation(
        extensions=[*requires(Perm.CARE_TICKET), MutationTransaction()],
        description="Hand the ticket to HQ, which resolves it.",
    )
    async def escalate_ticket(self, info: strawberry.Info[Context, None], input: TicketIdInput) -> TicketPayload:
        return _ticket(await care_resolvers.escalate(info.context, decode_id(input.id, "Ticket"), input.text))

    @strawberry.mutation(
        extensions=[*requires(Perm.CARE_TICKET), MutationTransaction()],
        description="Resolve with words to the member, and optionally a refund (refundOrder's rules, once per "
        "ticket), a coupon or points.",
    )
    async def resolve_ticket(self, info: strawberry.Info[Context, None], input: ResolveTicketInput) -> TicketPayload:
        lines: dict[int, int] | None = None
        if input.refund_lines is not None:
            lines = {}
            for i, line in enumerate(input.refund_lines):
                sku = decode_id(line.sku_id, "Sku", f"refundLines[{i}].skuId")
                lines[sku] = lines.get(sku, 0) + line.quantity
        resolution = Resolution(
            text=input.text,
            refund=input.refund,
            refund_lines=lines,
            restock=input.restock,
            coupon_template_id=decode_optional_id(input.coupon_template_id, "CouponTemplate", "couponTemplateId"),
            points=input.points,
        )
        ticket = await care_resolvers.resolve(
            info.context, decode_id(input.id, "Ticket"), resolution, input.idempotency_key
        )
        return _ticket(ticket)

"""The access matrix rows for after-sales service: follow-up tasks, ratings, complaint tickets."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from models import FollowUpSource, FollowUpTask, Ticket, TicketEntry, TicketEntryKind, utcnow
from services.access.identity import ExternalIdentity
from services.members import accounts as members
from services.platform.db import write_transaction
from tests.conftest import gid


async def given_care(chain, state) -> dict[str, Any]:
    """The matrix's member, known at SH01, with an open follow-up task there and an open complaint about SH01."""
    store = chain.stores["SH01"]
    async with write_transaction(state.sessionmaker) as session:
        member, _ = await members.member_for_identity(
            session, state.cipher, ExternalIdentity("local", "matrix-member"), store_id=None
        )
        await members.relate(session, member.id, store)
        task = FollowUpTask(
            store_id=store,
            member_id=member.id,
            source=FollowUpSource.MEMBERS,
            dedupe_key="matrix",
            script="回访",
            due_at=utcnow() + timedelta(days=1),
        )
        ticket = Ticket(
            store_id=store, member_id=member.id, subject="投诉", photo_urls=[], due_at=utcnow() + timedelta(days=1)
        )
        session.add_all([task, ticket])
        await session.flush()
        session.add(TicketEntry(ticket_id=ticket.id, kind=TicketEntryKind.OPENED, member_id=member.id))
    return {
        "store": gid("Store", store),
        "member": gid("Member", member.id),
        "task": gid("FollowUpTask", task.id),
        "ticket": gid("Ticket", ticket.id),
    }


def care_ops(Op, only, ALL, STAFF):
    CALLERS = ("clerk", "store_manager", "hq_admin")
    MANAGERS = ("store_manager", "hq_operator", "hq_admin")
    HANDLERS = ("clerk", "store_manager", "hq_operator", "hq_admin")
    due = (utcnow() + timedelta(days=3)).isoformat()
    return [
        Op("followUpTasks", "{ followUpTasks { edges { node { id member { phone } } } } }", only(*CALLERS)),
        Op("followUpCompletion", "{ followUpCompletion { total rate } }", only(*MANAGERS)),
        Op(
            "tickets",
            "{ tickets(filter: {overdue: false}) { edges { node { id entries { kind } } } } }",
            only(*HANDLERS),
        ),
        Op("myTickets", "{ myTickets { edges { node { subject entries { kind text } } } } }", only("member")),
        Op(
            "createFollowUps",
            "mutation($store: ID!, $member: ID!) { createFollowUps(input: {storeId: $store, audience: {memberIds: "
            f'[$member]}}, script: "回访", dueAt: "{due}", idempotencyKey: "m-1"}}) {{ errors {{ code }} created }} }}',
            only(*MANAGERS),
            given_care,
            payload="createFollowUps",
        ),
        Op(
            "createFollowUpRule",
            "mutation($store: ID!) { createFollowUpRule(input: {kind: FIRST_VISIT, storeId: $store, "
            'script: "首次到店回访"}) { errors { code } rule { kind } } }',
            only(*MANAGERS),
            given_care,
            payload="createFollowUpRule",
        ),
        Op(
            "revealFollowUpPhone",
            "mutation($task: ID!) { revealFollowUpPhone(input: {id: $task}) { errors { code } phone } }",
            only(*CALLERS),
            given_care,
            payload="revealFollowUpPhone",
        ),
        Op(
            "completeFollowUp",
            'mutation($task: ID!) { completeFollowUp(input: {id: $task, outcome: REACHED, idempotencyKey: "c-1"}) '
            "{ errors { code } task { status } } }",
            only(*CALLERS),
            given_care,
            payload="completeFollowUp",
        ),
        Op(
            "submitRating",
            "mutation($store: ID!) { submitRating(input: {stars: 5, about: {storeId: $store}}) "
            "{ errors { code } rating { stars } } }",
            only("member"),
            given_care,
            payload="submitRating",
        ),
        Op(
            "fileComplaint",
            'mutation($store: ID!) { fileComplaint(input: {subject: "太慢", about: {storeId: $store}}) '
            "{ errors { code } ticket { status } } }",
            only("member"),
            given_care,
            payload="fileComplaint",
        ),
        Op(
            "addToMyTicket",
            'mutation($ticket: ID!) { addToMyTicket(input: {id: $ticket, text: "补充"}) { errors { code } } }',
            only("member"),
            given_care,
            payload="addToMyTicket",
        ),
        Op(
            "replyToTicket",
            'mutation($ticket: ID!) { replyToTicket(input: {id: $ticket, text: "抱歉"}) { errors { code } } }',
            only(*HANDLERS),
            given_care,
            payload="replyToTicket",
        ),
        Op(
            "startTicket",
            "mutation($ticket: ID!) { startTicket(input: {id: $ticket}) { errors { code } } }",
            only(*HANDLERS),
            given_care,
            payload="startTicket",
        ),
        Op(
            "escalateTicket",
            "mutation($ticket: ID!) { escalateTicket(input: {id: $ticket}) { errors { code } } }",
            only(*HANDLERS),
            given_care,
            payload="escalateTicket",
        ),
        Op(
            "resolveTicket",
            'mutation($ticket: ID!) { resolveTicket(input: {id: $ticket, text: "已处理", idempotencyKey: "r-1"}) '
            "{ errors { code } ticket { status } } }",
            only(*HANDLERS),
            given_care,
            payload="resolveTicket",
        ),
    ]

"""Feedback and complaints (issue #16 part 3), by role over HTTP: a member rates and complains about their own order;
the store's staff reply (the member sees it), escalate to HQ, resolve with a partial refund through refundOrder's
rules, once however the resolve is retried; another store's staff never see the ticket (NOT_FOUND, like an id that
does not exist); HQ sees overdue tickets across stores; ratings and complaints show per store next to sales."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from models import Order, Rating, Refund, Ticket, TicketEntry, TicketEntryKind, utcnow
from services.analytics import facts
from services.platform import events as platform_events
from services.platform.db import write_transaction
from tests.care.givens import given_shop
from tests.conftest import count_statements, gid, pk

ANN = "ann:13800000001"
BOB = "bob:13800000002"
COMPLAIN = """mutation($o: ID, $s: ID) { fileComplaint(input: {subject: "豆浆是凉的", about: {orderId: $o, storeId: $s,
  text: "买回家就凉了", photoUrls: ["https://img.example.com/1.jpg"]}}) {
  errors { code field } ticket { id status dueAt overdue store { code } order { id } } } }"""
RATE = """mutation($o: ID, $s: ID, $stars: Int!) { submitRating(input: {stars: $stars, about: {orderId: $o, storeId: $s,
  text: "还行"}}) { errors { code field } rating { stars store { code } } } }"""
REPLY = """mutation($id: ID!, $t: String!) { replyToTicket(input: {id: $id, text: $t}) {
  errors { code field } ticket { status entries { kind text byMember } } } }"""
ESCALATE = (
    'mutation($id: ID!) { escalateTicket(input: {id: $id, text: "需要总部"}) { errors { code } ticket { status } } }'
)
RESOLVE = """mutation($id: ID!, $idempotencyKey: String!, $lines: [CartLineInput!], $refund: Boolean!, $points: Int) {
  resolveTicket(input: {id: $id, text: "已退一杯的钱", idempotencyKey: $idempotencyKey, refund: $refund,
  refundLines: $lines, points: $points}) {
  errors { code field } ticket { status pointsGiven refund { amount } entries { kind } } } }"""
MINE = """{ myTickets(first: 10) { edges { node { subject status entries { kind text byMember } } } } }"""
LIST = """query($f: TicketFilterInput, $n: Int) { tickets(filter: $f, first: $n) { edges { node { id status overdue
  store { code } member { name phone } order { id } entries { kind staff { id } } } } } }"""
RANKING = """{ storeRanking { rows { store { code } figures { orders }
  service { complaints ratings averageRating } } } }"""


async def _ticket(api, order: str) -> str:
    made = await api.gql(COMPLAIN, {"o": order}, as_=f"member:{ANN}")
    assert made["data"]["fileComplaint"]["errors"] == [], made
    ticket_id: str = made["data"]["fileComplaint"]["ticket"]["id"]
    return ticket_id


@pytest.mark.postgres_too
async def test_a_complaint_is_replied_to_and_resolved_with_a_partial_refund_once(api, state, chain):
    shop = await given_shop(api, state, chain)
    made = await api.gql(COMPLAIN, {"o": shop.orders[ANN]}, as_=f"member:{ANN}")
    ticket = made["data"]["fileComplaint"]["ticket"]
    assert ticket["status"] == "OPEN" and ticket["store"] == {"code": "SH01"} and ticket["overdue"] is False
    # Given the chain's SLA of 24 hours, the ticket is due a day after it was filed.
    async with state.sessionmaker() as session:
        row = await session.get(Ticket, pk(ticket["id"]))
        assert row is not None and timedelta(hours=23) < row.due_at - row.created_at <= timedelta(hours=24)

    replied = await api.gql(REPLY, {"id": ticket["id"], "t": "非常抱歉 马上处理"}, as_="sh01.clerk")
    assert replied["data"]["replyToTicket"]["ticket"]["status"] == "IN_PROGRESS"
    mine = (await api.gql(MINE, as_=f"member:{ANN}"))["data"]["myTickets"]["edges"]
    assert [e["node"]["entries"] for e in mine] == [
        [
            {"kind": "OPENED", "text": None, "byMember": True},
            {"kind": "REPLY", "text": "非常抱歉 马上处理", "byMember": False},
        ]
    ]
    # A clerk may reply but not refund (order.refund): the rule of refundOrder, refused, nothing moves.
    one = [{"skuId": gid("Sku", shop.skus[0]), "quantity": 1}]
    clerk = await api.gql(RESOLVE, {"id": ticket["id"], "lines": one, "refund": True}, as_="sh01.clerk")
    assert clerk["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    variables = {"id": ticket["id"], "lines": one, "refund": True, "points": 50, "idempotencyKey": "resolve-1"}
    # A store gives at most 1,000 points on a complaint: refused as a whole, the refund with it.
    generous = await api.gql(RESOLVE, {**variables, "points": 5000, "idempotencyKey": "too-much"}, as_="sh01.manager")
    assert generous["data"]["resolveTicket"]["errors"] == [{"code": "NOT_ALLOWED_BY_POLICY", "field": "points"}]
    first = await api.gql(RESOLVE, variables, as_="sh01.manager")
    again = await api.gql(RESOLVE, variables, as_="sh01.manager")
    assert first["data"]["resolveTicket"]["errors"] == [] and first == again
    resolved = first["data"]["resolveTicket"]["ticket"]
    assert resolved["status"] == "RESOLVED" and resolved["refund"] == {"amount": 1000} and resolved["pointsGiven"] == 50
    other_key = await api.gql(RESOLVE, {**variables, "idempotencyKey": "resolve-2"}, as_="sh01.manager")
    assert other_key["data"]["resolveTicket"]["errors"] == [{"code": "INVALID_TRANSITION", "field": "id"}]
    async with state.sessionmaker() as session:
        refunds = (await session.execute(select(func.count(), func.sum(Refund.amount)))).one()
    assert tuple(refunds) == (1, 1000)  # paid once, one unit of one line


async def test_another_stores_staff_and_other_members_never_see_a_ticket(api, state, chain):
    shop = await given_shop(api, state, chain, codes=(ANN, BOB))
    ticket_id = await _ticket(api, shop.orders[ANN])
    # Bob cannot complain about Ann's order; it is as if it did not exist.
    theirs = await api.gql(COMPLAIN, {"o": shop.orders[ANN]}, as_=f"member:{BOB}")
    assert theirs["data"]["fileComplaint"]["errors"] == [{"code": "NOT_FOUND", "field": "orderId"}]
    assert (await api.gql(MINE, as_=f"member:{BOB}"))["data"]["myTickets"]["edges"] == []
    node = "query($id: ID!) { node(id: $id) { ... on Ticket { subject } } }"
    assert (await api.gql(node, {"id": ticket_id}, as_=f"member:{BOB}"))["data"]["node"] is None
    assert (await api.gql(node, {"id": ticket_id}, as_="sh02.manager"))["data"]["node"] is None
    assert (await api.gql(LIST, as_="sh02.manager"))["data"]["tickets"]["edges"] == []
    missing = gid("Ticket", 999_999)
    for target in (ticket_id, missing):
        answer = await api.gql(REPLY, {"id": target, "t": "x"}, as_="sh02.manager")
        assert answer["data"]["replyToTicket"]["errors"] == [{"code": "NOT_FOUND", "field": "id"}]
    seen = (await api.gql(LIST, as_="sh01.clerk"))["data"]["tickets"]["edges"]
    assert [e["node"]["member"] for e in seen] == [{"name": None, "phone": "138****0001"}]


async def test_escalated_tickets_are_hqs_and_hq_sees_overdue_tickets_across_stores(api, state, chain):
    shop = await given_shop(api, state, chain)
    late = await _ticket(api, shop.orders[ANN])
    fresh = await _ticket(api, shop.orders[ANN])
    assert (await api.gql(ESCALATE, {"id": late}, as_="sh01.manager"))["data"]["escalateTicket"]["ticket"] == {
        "status": "ESCALATED"
    }
    refused = await api.gql(RESOLVE, {"id": late, "refund": False}, as_="sh01.manager")
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    async with write_transaction(state.sessionmaker) as session:
        past = utcnow() - timedelta(hours=1)
        await session.execute(update(Ticket).where(Ticket.id != pk(fresh)).values(due_at=past))
    overdue = (await api.gql(LIST, {"f": {"overdue": True}}, as_="hq.operator"))["data"]["tickets"]["edges"]
    assert [(e["node"]["id"], e["node"]["status"], e["node"]["overdue"]) for e in overdue] == [
        (late, "ESCALATED", True)
    ]
    done = await api.gql(RESOLVE, {"id": late, "refund": False}, as_="hq.operator")
    assert done["data"]["resolveTicket"]["ticket"]["status"] == "RESOLVED"
    assert (await api.gql(LIST, {"f": {"overdue": True}}, as_="hq.operator"))["data"]["tickets"]["edges"] == []


@pytest.mark.postgres_too
async def test_ratings_once_per_order_and_per_store_next_to_sales(api, state, chain):
    shop = await given_shop(api, state, chain, codes=(ANN, BOB))
    assert (await api.gql(RATE, {"o": shop.orders[ANN], "stars": 4}, as_=f"member:{ANN}"))["data"]["submitRating"][
        "rating"
    ] == {"stars": 4, "store": {"code": "SH01"}}
    twice = await api.gql(RATE, {"o": shop.orders[ANN], "stars": 5}, as_=f"member:{ANN}")
    assert twice["data"]["submitRating"]["errors"] == [{"code": "DUPLICATE", "field": "orderId"}]
    bad = await api.gql(RATE, {"o": shop.orders[BOB], "stars": 6}, as_=f"member:{BOB}")
    assert bad["data"]["submitRating"]["errors"] == [{"code": "INVALID_INPUT", "field": "stars"}]
    await api.gql(RATE, {"o": shop.orders[BOB], "stars": 1}, as_=f"member:{BOB}")
    await _ticket(api, shop.orders[ANN])
    await facts.refresh_all(state.sessionmaker)
    rows = (await api.gql(RANKING, as_="hq.analyst"))["data"]["storeRanking"]["rows"]
    sh01 = next(r for r in rows if r["store"]["code"] == "SH01")
    assert sh01["service"] == {"complaints": 1, "ratings": 2, "averageRating": 2.5}
    own = (await api.gql(RANKING, as_="sh01.manager"))["data"]["storeRanking"]["rows"]
    assert [r["service"]["complaints"] for r in own] == [1]


async def test_a_staff_reply_emits_the_event_the_message_trigger_will_use(api, state, chain, monkeypatch):
    shop = await given_shop(api, state, chain)
    ticket_id = await _ticket(api, shop.orders[ANN])
    seen: list[tuple[str, dict[str, int]]] = []
    real = platform_events.emit

    def recording(session: Any, topic: str, payload: dict[str, int]) -> None:
        seen.append((topic, payload))
        real(session, topic, payload)

    monkeypatch.setattr(platform_events, "emit", recording)
    await api.gql(REPLY, {"id": ticket_id, "t": "您好"}, as_="sh01.manager")
    assert seen == [("care.ticket.replied", {"member_id": shop.members[ANN], "ticket_id": seen[0][1]["ticket_id"]})]


async def test_ticket_lists_take_the_same_statements_for_10_and_100_tickets(api, state, chain):
    shop = await given_shop(api, state, chain)
    async with write_transaction(state.sessionmaker) as session:
        order_id = await session.scalar(select(Order.id))
        for _ in range(100):
            ticket = Ticket(
                store_id=chain.stores["SH01"],
                member_id=shop.members[ANN],
                order_id=order_id,
                subject="s",
                photo_urls=[],
                due_at=utcnow() + timedelta(hours=1),
            )
            session.add(ticket)
            await session.flush()
            session.add(TicketEntry(ticket_id=ticket.id, kind=TicketEntryKind.OPENED, member_id=shop.members[ANN]))
            session.add(
                TicketEntry(ticket_id=ticket.id, kind=TicketEntryKind.REPLY, staff_id=chain.staff["sh01.clerk"])
            )
    token = await api.token("sh01.manager")
    counts = {}
    for n in (10, 100):
        with count_statements(state.engine) as counter:
            body = (await api.post(LIST, {"n": n}, token=token)).json()
        assert "errors" not in body, body
        edges = body["data"]["tickets"]["edges"]
        assert len(edges) == n and all(len(e["node"]["entries"]) == 2 for e in edges)
        counts[n] = counter.count
    assert counts[10] == counts[100], counts


async def test_what_a_member_wrote_is_erased_with_the_account_and_the_counts_stay(api, state, chain):
    shop = await given_shop(api, state, chain)
    ticket_id = await _ticket(api, shop.orders[ANN])
    await api.gql(REPLY, {"id": ticket_id, "t": "您好"}, as_="sh01.manager")
    await api.gql(RATE, {"o": shop.orders[ANN], "stars": 2}, as_=f"member:{ANN}")
    # The refund of the handed-over counter sale is not due; the account goes.
    gone = await api.gql("mutation { deleteMyAccount { errors { code } deleted } }", as_=f"member:{ANN}")
    assert gone["data"]["deleteMyAccount"] == {"errors": [], "deleted": True}
    async with state.sessionmaker() as session:
        ticket = await session.get(Ticket, pk(ticket_id))
        texts = (await session.scalars(select(TicketEntry.text).where(TicketEntry.ticket_id == pk(ticket_id)))).all()
        rating = (await session.execute(select(Rating.stars, Rating.text))).one()
    assert ticket is not None and (ticket.subject, ticket.text, ticket.status) == ("", None, "IN_PROGRESS")
    assert list(texts) == [None, None] and tuple(rating) == (2, None)


async def test_the_sla_is_the_chains_setting(api, state, chain):
    shop = await given_shop(api, state, chain)
    changed = await api.gql(
        "mutation { updateChainSettings(input: {complaintSlaHours: 2}) { errors { code } settings { complaintSlaHours } } }",
        as_="hq.admin",
    )
    assert changed["data"]["updateChainSettings"] == {"errors": [], "settings": {"complaintSlaHours": 2}}
    ticket_id = await _ticket(api, shop.orders[ANN])
    async with state.sessionmaker() as session:
        row = await session.get(Ticket, pk(ticket_id))
    assert row is not None and row.due_at - row.created_at == timedelta(hours=2)
    bad = await api.gql(
        "mutation { updateChainSettings(input: {complaintSlaHours: 0}) { errors { field } } }", as_="hq.admin"
    )
    assert bad["data"]["updateChainSettings"]["errors"] == [{"field": "complaintSlaHours"}]

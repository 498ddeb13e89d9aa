"""The business day's after-sales part (issue #16): the member complains about the day's pickup order in the
mini-program, the store's clerk replies (the member sees it), the manager resolves with a partial refund through
refundOrder's rules (a retried resolve pays once), another store's manager never sees the ticket, and the member
rates the order; HQ sees the store's complaint and rating next to its sales."""

from __future__ import annotations

import secrets
from typing import Any

MINE = "{ myTickets(first: 5) { edges { node { id status entries { kind text byMember } refund { amount } } } } }"
RESOLVE = """mutation($i: ResolveTicketInput!) { resolveTicket(input: $i) { errors { code field }
  ticket { status refund { amount } } } }"""
TICKETS = "{ tickets(first: 20) { edges { node { id } } } }"


async def resolve_a_complaint_with_a_refund(
    hq: Any, manager: Any, clerk: Any, member: Any, other_manager: Any, order_id: str, sku: str
) -> None:
    from tests.acceptance.test_business_day import ok

    filed = ok(
        (
            await member(
                'mutation($o: ID!) { fileComplaint(input: {subject: "少了一杯的奶", about: {orderId: $o, '
                'text: "拿铁很淡", photoUrls: ["https://img.example.com/latte.jpg"]}}) '
                "{ errors { code field } ticket { id status } } }",
                o=order_id,
            )
        )["fileComplaint"]
    )
    ticket = filed["ticket"]["id"]
    assert filed["ticket"]["status"] == "OPEN"
    reply = "抱歉 已为您退一杯"
    replied = ok(
        (
            await clerk(
                "mutation($i: TicketTextInput!) { replyToTicket(input: $i) { errors { code } ticket { status } } }",
                i={"id": ticket, "text": reply},
            )
        )["replyToTicket"]
    )
    assert replied["ticket"]["status"] == "IN_PROGRESS"
    # Another store's manager: the ticket does not exist for them.
    assert ticket not in {e["node"]["id"] for e in (await other_manager(TICKETS))["tickets"]["edges"]}
    hidden = (await other_manager(RESOLVE, i={"id": ticket, "text": "x", "idempotencyKey": "x"}))["resolveTicket"]
    assert hidden["errors"] == [{"code": "NOT_FOUND", "field": "id"}]

    resolution = {
        "id": ticket,
        "text": reply,
        "refund": True,
        "refundLines": [{"skuId": sku, "quantity": 1}],
        "idempotencyKey": f"resolve-{secrets.token_hex(4)}",
    }
    first = ok((await manager(RESOLVE, i=resolution))["resolveTicket"])
    again = ok((await manager(RESOLVE, i=resolution))["resolveTicket"])
    assert first == again and first["ticket"]["status"] == "RESOLVED" and first["ticket"]["refund"]["amount"] > 0
    order = (
        await manager("query($id: ID!) { node(id: $id) { ... on Order { status refunds { amount } } } }", id=order_id)
    )["node"]
    assert order["status"] == "PARTIALLY_REFUNDED" and order["refunds"] == [first["ticket"]["refund"]]

    seen = (await member(MINE))["myTickets"]["edges"][0]["node"]
    assert seen["status"] == "RESOLVED" and seen["refund"] == first["ticket"]["refund"]
    assert {"kind": "REPLY", "text": reply, "byMember": False} in seen["entries"]
    ok(
        (
            await member(
                "mutation($o: ID!) { submitRating(input: {stars: 4, about: {orderId: $o}}) { errors { code } } }",
                o=order_id,
            )
        )["submitRating"]
    )
    rows = (await hq("{ storeRanking { rows { store { id } service { complaints ratings averageRating } } } }"))[
        "storeRanking"
    ]["rows"]
    assert any(r["service"] == {"complaints": 1, "ratings": 1, "averageRating": 4.0} for r in rows), rows

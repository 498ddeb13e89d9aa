"""The business day's cards (卡项): HQ defines a 10-use card for the day's SKU, SH01's clerk sells it to the member
(identified by their member code) for cash, and the day's store (SH02) takes two uses of it at its counter: the
quote shows the card paying the line, the sale takes no money, the member sees 8 uses left with both stores in the
history, SH02's counter lists the use, and HQ's card report clears SH01's liability to SH02, summing to zero."""

from __future__ import annotations

import secrets
from typing import Any

CREATE = """mutation($k: ID!) { createCardProduct(input: {name: "验收十杯卡", kind: COUNT, price: 15000, uses: 10,
  skuIds: [$k], validityDays: 90}) { errors { code field } product { id } } }"""
IDENTIFY = """mutation($c: String, $s: ID) { identifyMember(input: {code: $c, storeId: $s}) {
  errors { code } member { id } } }"""
SELL = """mutation($m: ID!, $p: ID!, $s: ID, $key: String!) { sellCard(input: {memberId: $m, productId: $p, storeId: $s,
  idempotencyKey: $key, tenders: [{method: CASH, amount: 15000}]}) { errors { code field } card { id unitsLeft } } }"""
QUOTE = """query($s: ID!, $l: [CartLineInput!]!, $m: ID, $c: [ID!]) { quote(input: {storeId: $s, lines: $l, memberId: $m,
  cardIds: $c}) { total cardPaid } }"""
CHECKOUT = """mutation($s: ID, $l: [CartLineInput!]!, $m: ID, $c: [ID!], $t: [TenderInput!]!, $key: String!) {
  posCheckout(input: {storeId: $s, clientOrderId: $key, lines: $l, memberId: $m, cardIds: $c, tenders: $t}) {
    errors { code field message } order { id status payable } } }"""
MY_CARDS = """{ myCards(withUsesLeft: true) { edges { node { id unitsLeft valueLeft
  history { kind units store { id } issuer { id } } } } } }"""
USES = "query($s: ID!) { cardUses(storeId: $s) { edges { node { kind units issuer { id } } } } }"
REPORT = "{ cardReport { store { id } soldValue usedValue outstandingValue clearing } }"


async def use_a_card_bought_in_another_store(
    hq: Any, clerk: Any, member: Any, member_id: str, store_id: str, sku: str, sign_in: Any
) -> None:
    from tests.acceptance.test_business_day import ok

    product = ok((await hq(CREATE, k=sku))["createCardProduct"])["product"]["id"]
    other_clerk = await sign_in("sh01.clerk")
    sh01 = (await other_clerk("{ me { ... on StaffViewer { store { id } } } }"))["me"]["store"]["id"]
    code = (await member("{ myMemberCode { code } }"))["myMemberCode"]["code"]
    ok((await other_clerk(IDENTIFY, c=code, s=sh01))["identifyMember"])
    key = f"card-{secrets.token_hex(4)}"
    sold = ok((await other_clerk(SELL, m=member_id, p=product, s=sh01, key=key))["sellCard"])["card"]
    again = ok((await other_clerk(SELL, m=member_id, p=product, s=sh01, key=key))["sellCard"])["card"]
    assert sold == again and sold["unitsLeft"] == 10

    # At the day's store: the member shows a fresh code; the card pays both units (two of its uses).
    code = (await member("{ myMemberCode { code } }"))["myMemberCode"]["code"]
    ok((await clerk(IDENTIFY, c=code, s=store_id))["identifyMember"])
    lines = [{"skuId": sku, "quantity": 2}]
    quote = (await clerk(QUOTE, s=store_id, l=lines, m=member_id, c=[sold["id"]]))["quote"]
    assert quote["cardPaid"] == quote["total"] > 0
    sale = ok(
        (
            await clerk(
                CHECKOUT,
                s=store_id,
                l=lines,
                m=member_id,
                c=[sold["id"]],
                t=[],
                key=f"card-sale-{secrets.token_hex(4)}",
            )
        )["posCheckout"]
    )["order"]
    assert sale["status"] == "COMPLETED" and sale["payable"] == 0

    mine = [e["node"] for e in (await member(MY_CARDS))["myCards"]["edges"] if e["node"]["id"] == sold["id"]]
    assert mine[0]["unitsLeft"] == 8 and mine[0]["valueLeft"] == 12_000
    assert [(h["kind"], h["store"]["id"], h["issuer"]["id"]) for h in mine[0]["history"]] == [
        ("USE", store_id, sh01),
        ("ISSUE", sh01, sh01),
    ]
    uses = [e["node"] for e in (await clerk(USES, s=store_id))["cardUses"]["edges"]]
    assert {"kind": "USE", "units": -2, "issuer": {"id": sh01}} in uses
    rows = {r["store"]["id"]: r for r in (await hq(REPORT))["cardReport"]}
    assert sum(r["clearing"] for r in rows.values()) == 0
    assert rows[sh01]["clearing"] <= -3000 and rows[store_id]["clearing"] >= 3000
    assert rows[sh01]["outstandingValue"] >= 12_000

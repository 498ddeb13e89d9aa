"""The business day's exchange at the counter (换货), over the socket: HQ gives the store's clerk a role that sells
and refunds (a clerk's built-in role does not refund), the clerk exchanges one unit of the day's counter sale for a fresh one, and the settlement shows it."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

Caller = Callable[..., Awaitable[dict[str, Any]]]

SETTLEMENT = (
    "query($s: ID!, $d: Date!) { settlement(storeId: $s, date: $d) { takings { method amount } "
    "refunds { method amount } net exchanges { count returned sold paid refunded } } }"
)
EXCHANGE = (
    "mutation($input: ExchangeAtCounterInput!) { exchangeAtCounter(input: $input) { errors { code field message } "
    "exchange { number returnedValue soldValue difference paid { method amount } refunded { method amount } } "
    "receipt { number lines { quantity amount } difference text } "
    "order { id status timeline { kind actor amount } } } }"
)


def _ok(payload: dict[str, Any]) -> dict[str, Any]:
    assert payload["errors"] == [], payload
    return payload


async def exchange_at_the_counter(
    hq: Caller, manager: Caller, clerk: Caller, store_id: str, sku: str, member_id: str, sale_id: str, today: date
) -> None:
    """One unit of the day's counter sale comes back and a fresh one goes out; the difference (the price today less
    what the unit cost the member, a fen of rounding at most) is paid in cash or given back by the refund rule; a
    retry moves nothing; the day's settlement counts the exchange."""
    role = _ok(
        (
            await hq(
                'mutation { createRole(input: {code: "COUNTER_LEAD", name: "柜台组长", scope: STORE, permissions: '
                '["order.checkout", "order.refund", "order.read", "order.pickup", "stock.read", "member.lookup", "care.follow_up", "care.ticket"]}) '
                "{ errors { code field } role { id } } }"
            )
        )["createRole"]
    )["role"]
    me = (await clerk("{ me { ... on StaffViewer { staff { id } } } }"))["me"]["staff"]
    _ok(
        (
            await hq(
                "mutation($id: ID!, $r: ID!) { updateStaff(input: {id: $id, roleId: $r}) { errors { code field } } }",
                id=me["id"],
                r=role["id"],
            )
        )["updateStaff"]
    )
    order = (
        await clerk(
            "query($id: ID!) { node(id: $id) { ... on Order { lines { lineId refundableQuantity } } } }", id=sale_id
        )
    )["node"]
    line = next(x for x in order["lines"] if x["refundableQuantity"] > 0)
    back = (
        await clerk(
            "query($i: RefundPreviewInput!) { refundPreview(input: $i) { amount } }",
            i={"id": sale_id, "lines": [{"skuId": sku, "quantity": 1}]},
        )
    )["refundPreview"]["amount"]
    price = (
        await clerk(
            "query($s: ID!, $l: [CartLineInput!]!, $m: ID) { quote(input: {storeId: $s, lines: $l, memberId: $m}) "
            "{ total } }",
            s=store_id,
            l=[{"skuId": sku, "quantity": 1}],
            m=member_id,
        )
    )["quote"]["total"]
    difference = price - back
    before = (await manager(SETTLEMENT, s=store_id, d=today.isoformat()))["settlement"]
    assert before["exchanges"]["count"] == 0
    request = {
        "orderId": sale_id,
        "idempotencyKey": f"ex-{secrets.token_hex(4)}",
        "returnLines": [{"lineId": line["lineId"], "quantity": 1}],
        "newLines": [{"skuId": sku, "quantity": 1}],
        "tenders": [{"method": "CASH", "amount": difference}] if difference > 0 else [],
    }
    done = _ok((await clerk(EXCHANGE, input=request))["exchangeAtCounter"])
    again = _ok((await clerk(EXCHANGE, input=request))["exchangeAtCounter"])
    assert again["exchange"] == done["exchange"]
    assert (done["exchange"]["returnedValue"], done["exchange"]["soldValue"]) == (back, price)
    assert done["exchange"]["difference"] == difference and done["receipt"]["difference"] == difference
    assert [x["quantity"] for x in done["receipt"]["lines"]] == [-1, 1]
    assert ("EXCHANGE", "STAFF") in {(t["kind"], t["actor"]) for t in done["order"]["timeline"]}

    after = (await manager(SETTLEMENT, s=store_id, d=today.isoformat()))["settlement"]
    assert after["exchanges"] == {
        "count": 1,
        "returned": back,
        "sold": price,
        "paid": max(difference, 0),
        "refunded": max(-difference, 0),
    }
    assert after["net"] == before["net"] + difference
    cash = {t["method"]: t["amount"] for t in after["takings"]}["CASH"]
    assert cash == {t["method"]: t["amount"] for t in before["takings"]}["CASH"] + max(difference, 0)

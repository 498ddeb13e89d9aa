"""A whole business day against the running development server, driven by `gql` (an independent Python GraphQL
client) over HTTP and the graphql-transport-ws websocket only: HQ adds a product, a store adopts it and receives
stock, a member quotes, orders for pickup and pays through the sandbox's signed notification, the tablet's live
feed sees the order, the clerk hands it over, sells at the counter to the member by their member code, refunds a
line, and the day's settlement and sales report (after the running app's own fold) show all of it; the report's
margin shows the day, HQ lists the day's orders of every store with their timelines (the store's manager only its
own), and a replenishment goes from a warehouse's purchase to the store's receipt."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport

from tests.acceptance.conftest import DEMO_PASSWORD, MEMBER_CODE, Server
from tests.acceptance.day_attributes import profile_the_member
from tests.acceptance.day_cards import use_a_card_bought_in_another_store
from tests.acceptance.day_care import resolve_a_complaint_with_a_refund
from tests.acceptance.day_exchanges import exchange_at_the_counter
from tests.acceptance.day_messages import send_a_promotion_to_members_who_agreed
from tests.acceptance.day_pages import fill_the_store_page

# The running app folds report events every FACTS_INTERVAL_S (2 s here; README's default is 10 s); at most this long.
FOLD_WAIT_S = 35.0


class Gql:
    """One caller of the API over HTTP, through gql."""

    def __init__(self, server: Server, token: str | None = None) -> None:
        self.server = server
        self.token = token

    async def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        async with Client(transport=HTTPXAsyncTransport(url=self.server.graphql, headers=headers, timeout=30)) as s:
            result: dict[str, Any] = await s.execute(GraphQLRequest(query, variable_values=variables or None))
        return result


async def sign_in(server: Server, username: str) -> Gql:
    body = await Gql(server)(
        "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) "
        "{ errors { code } tokens { accessToken } } }",
        u=username,
        p=DEMO_PASSWORD,
    )
    assert body["login"]["errors"] == [], body
    return Gql(server, body["login"]["tokens"]["accessToken"])


def ok(payload: dict[str, Any]) -> dict[str, Any]:
    """A mutation payload that must have succeeded."""
    assert payload["errors"] == [], payload
    return payload


def next_pickup_time(tz: ZoneInfo, hours: list[dict[str, Any]], now: datetime) -> datetime:
    """The first moment at least 30 minutes ahead that lies inside the store's hours (with 10 minutes' margin)."""
    earliest = now.astimezone(tz) + timedelta(minutes=30)
    for offset in range(8):
        day = (earliest - timedelta(days=1)).date() + timedelta(days=offset)
        for h in hours:
            if h["weekday"] != day.weekday():
                continue
            opens = datetime.combine(day, datetime.strptime(h["opens"], "%H:%M").time(), tz)
            closes = datetime.combine(day, datetime.strptime(h["closes"], "%H:%M").time(), tz)
            if closes <= opens:
                closes += timedelta(days=1)
            start = max(opens + timedelta(minutes=10), earliest)
            start = start.replace(second=0, microsecond=0) + timedelta(minutes=(-start.minute) % 5)
            if start + timedelta(minutes=10) <= closes:
                return start
    raise AssertionError(f"no opening hours within a week: {hours}")


def sandbox_notification(server: Server, prepay_id: str, amount: int) -> tuple[dict[str, str], bytes]:
    """What the sandbox provider sends when the payer pays, signed as services/platform/payments.py documents: HMAC-SHA256
    of the body under sha256("sandbox-pay:" + the deployment's PII_KEY bytes), in x-sandbox-signature."""
    body = json.dumps(
        {
            "out_trade_no": prepay_id.removeprefix("sbx_"),
            "transaction_id": f"acc_{secrets.token_hex(6)}",
            "amount": amount,
            "trade_state": "SUCCESS",
        }
    ).encode()
    secret = hashlib.sha256(b"sandbox-pay:" + server.pii_key).digest()
    return {"x-sandbox-signature": hmac.new(secret, body, hashlib.sha256).hexdigest()}, body


class LiveFeed:
    """The tablet's orderEvents(storeId) over the websocket (gql, graphql-transport-ws), collected in the background."""

    def __init__(self, server: Server, token: str, store_id: str) -> None:
        self.transport = WebsocketsTransport(
            url=server.ws, init_payload={"authorization": f"Bearer {token}"}, subprotocols=["graphql-transport-ws"]
        )
        self.store_id = store_id
        self.events: list[dict[str, str]] = []
        self.task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        self.failure: BaseException | None = None

    async def _run(self) -> None:
        try:
            async with Client(transport=self.transport) as session:
                # A query over the same socket first: the socket works both ways before the feed is relied on.
                me = await session.execute(GraphQLRequest("{ me { ... on StaffViewer { store { id } } } }"))
                assert me["me"]["store"]["id"] == self.store_id
                request = GraphQLRequest(
                    "subscription($s: ID!) { orderEvents(storeId: $s) { orderId status } }",
                    variable_values={"s": self.store_id},
                )
                subscription = session.subscribe(request)
                first = asyncio.ensure_future(anext(subscription))
                await asyncio.sleep(0.5)  # the server has set the subscription up
                self.ready.set()
                self.events.append((await first)["orderEvents"])
                async for result in subscription:
                    self.events.append(result["orderEvents"])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # kept for the test to report (start, wait_for) rather than lost in the task
            self.failure = exc
            self.ready.set()

    async def start(self) -> None:
        self.task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.ready.wait(), 15)
        assert self.failure is None, f"the live feed failed: {self.failure!r}"

    async def wait_for(self, order_id: str, status: str, within_s: float = 10) -> None:
        deadline = time.monotonic() + within_s
        while {"orderId": order_id, "status": status} not in self.events:
            assert self.failure is None, f"the live feed failed: {self.failure!r}"
            assert time.monotonic() < deadline, f"no {status} event for {order_id}; saw {self.events}"
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def day_server(request: pytest.FixtureRequest) -> Server:
    server: Server = request.getfixturevalue("dev_server" if request.param == "sqlite" else "pg_dev_server")
    return server


async def test_a_business_day_over_the_socket_ends_in_the_settlement_and_the_folded_sales_report(day_server):
    server = day_server
    hq = await sign_in(server, "hq.admin")
    manager = await sign_in(server, "sh02.manager")
    clerk = await sign_in(server, "sh02.clerk")
    store = (
        await manager("{ me { ... on StaffViewer { store { id code timezone hours { weekday opens closes } } } } }")
    )["me"]["store"]
    tz = ZoneInfo(store["timezone"])

    # HQ adds a product to the library; the store adopts it at its own price inside HQ's band.
    categories = (await hq("{ categories { id name } }"))["categories"]
    barcode = f"69{secrets.randbelow(10**11):011d}"
    product = ok(
        (
            await hq(
                'mutation($c: ID!, $b: String!) { createProduct(input: {name: "验收拿铁", categoryId: $c, '
                "skus: [{barcode: $b, basePrice: 1800, costPrice: 600}]}) { errors { code field } product { id skus { id } } } }",
                c=categories[0]["id"],
                b=barcode,
            )
        )["createProduct"]
    )["product"]
    sku = product["skus"][0]["id"]
    listing = ok(
        (
            await manager(
                "mutation($s: ID!, $k: ID!) { adoptSkus(input: {storeId: $s, items: [{skuId: $k, price: 1900}]}) "
                "{ errors { code field } listings { price onShelf } } }",
                s=store["id"],
                k=sku,
            )
        )["adoptSkus"]
    )
    assert listing["listings"] == [{"price": 1900, "onShelf": True}]

    # Goods received; the tablet's retry with the same idempotency key moves stock once.
    receive = (
        "mutation($s: ID!, $k: ID!, $key: String!) { receiveStock(input: {storeId: $s, idempotencyKey: $key, "
        "lines: [{skuId: $k, quantity: 20}]}) { errors { code field } levels { onHand available } } }"
    )
    key = f"acceptance-{secrets.token_hex(4)}"
    first = ok((await manager(receive, s=store["id"], k=sku, key=key))["receiveStock"])
    again = ok((await manager(receive, s=store["id"], k=sku, key=key))["receiveStock"])
    assert first["levels"] == again["levels"] == [{"onHand": 20, "available": 20}]

    feed = LiveFeed(server, clerk.token or "", store["id"])
    await feed.start()
    try:
        # A member signs in (development: the local provider), quotes and orders for pickup at an open hour.
        signed = (
            await Gql(server)(
                'mutation($c: String!, $s: ID) { memberSignIn(input: {provider: "local", code: $c, storeId: $s}) '
                "{ errors { code } tokens { accessToken } member { id } } }",
                c=MEMBER_CODE,
                s=store["id"],
            )
        )["memberSignIn"]
        member = Gql(server, ok(signed)["tokens"]["accessToken"])
        member_id = signed["member"]["id"]
        lines = [{"skuId": sku, "quantity": 2}]
        quote = (
            await member(
                "query($s: ID!, $l: [CartLineInput!]!) { quote(input: {storeId: $s, lines: $l}) "
                "{ total lines { unitPrice available } } }",
                s=store["id"],
                l=lines,
            )
        )["quote"]
        assert quote["lines"][0]["available"] is True and quote["total"] > 0
        pickup_at = next_pickup_time(tz, store["hours"], datetime.now(UTC))
        placed = ok(
            (
                await member(
                    "mutation($s: ID!, $l: [CartLineInput!]!, $key: String!, $at: DateTime) { placeOrder(input: {storeId: $s, "
                    "lines: $l, idempotencyKey: $key, pickupAt: $at}) { errors { code field message } "
                    "order { id status payable } payment { provider params } } }",
                    s=store["id"],
                    l=lines,
                    key=f"cart-{secrets.token_hex(4)}",
                    at=pickup_at.isoformat(),
                )
            )["placeOrder"]
        )
        order = placed["order"]
        assert order["status"] == "CREATED" and order["payable"] == quote["total"]
        assert placed["payment"]["provider"] == "sandbox"

        # The payer pays: the provider's signed notification marks the order paid, once however often it comes.
        headers, body = sandbox_notification(server, placed["payment"]["params"]["prepayId"], order["payable"])
        async with httpx.AsyncClient(timeout=30) as http:
            for _ in range(2):
                answer = await http.post(f"{server.url}/payments/notify/sandbox", content=body, headers=headers)
                assert answer.json() == {"code": "SUCCESS"}
            forged = await http.post(
                f"{server.url}/payments/notify/sandbox",
                content=body.replace(b'"amount": ', b'"amount": 1'),
                headers=headers,
            )
            assert forged.status_code == 400
        await feed.wait_for(order["id"], "PAID")

        # The tablet prepares it, and hands it over against the member's pickup code.
        ready = ok(
            (
                await manager(
                    "mutation($id: ID!) { markOrderReady(input: {id: $id}) { errors { code } order { status } } }",
                    id=order["id"],
                )
            )["markOrderReady"]
        )
        assert ready["order"]["status"] == "READY"
        await feed.wait_for(order["id"], "READY")
        mine = (
            await member("query($id: ID!) { node(id: $id) { ... on Order { status pickupCode } } }", id=order["id"])
        )["node"]
        assert mine["status"] == "READY" and mine["pickupCode"]
        handed = ok(
            (
                await clerk(
                    "mutation($c: String!, $s: ID, $k: String!) { verifyPickup(input: {code: $c, storeId: $s, idempotencyKey: $k})"
                    " { errors { code } order { id status } } }",
                    c=mine["pickupCode"],
                    s=store["id"],
                    k=f"pickup-{secrets.token_hex(4)}",
                )
            )["verifyPickup"]
        )
        assert handed["order"] == {"id": order["id"], "status": "COMPLETED"}
        await feed.wait_for(order["id"], "COMPLETED")
    finally:
        await feed.stop()

    # At the counter: the member shows the rotating code, the clerk identifies them and sells for cash.
    code = (await member("{ myMemberCode { code expiresAt } }"))["myMemberCode"]["code"]
    identified = ok(
        (
            await clerk(
                "mutation($c: String, $s: ID) { identifyMember(input: {code: $c, storeId: $s}) { errors { code } member { id } } }",
                c=code,
                s=store["id"],
            )
        )["identifyMember"]
    )
    assert identified["member"]["id"] == member_id
    pos_lines = [{"skuId": sku, "quantity": 3}]
    pos_quote = (
        await clerk(
            "query($s: ID!, $l: [CartLineInput!]!, $m: ID) { quote(input: {storeId: $s, lines: $l, memberId: $m}) { total } }",
            s=store["id"],
            l=pos_lines,
            m=member_id,
        )
    )["quote"]
    # Paid partly in cash, partly by card.
    card = 1000
    cash = pos_quote["total"] - card
    sale = ok(
        (
            await clerk(
                "mutation($s: ID, $l: [CartLineInput!]!, $m: ID, $t: [TenderInput!]!, $c: String!) { posCheckout(input: "
                "{storeId: $s, clientOrderId: $c, lines: $l, memberId: $m, tenders: $t}) { errors { code field message } "
                "order { id status payable } } }",
                s=store["id"],
                l=pos_lines,
                m=member_id,
                c=f"pos-{secrets.token_hex(4)}",
                t=[{"method": "CASH", "amount": cash}, {"method": "CARD", "amount": card}],
            )
        )["posCheckout"]
    )["order"]
    assert sale["status"] == "COMPLETED" and sale["payable"] == pos_quote["total"]

    # One of the three comes back: the preview tells the cashier what goes back to which tender, the refund does
    # exactly that, and the tablet's retry after a lost answer (same key) gives nothing back twice.
    refund_lines = [{"skuId": sku, "quantity": 1}]
    preview = (
        await manager(
            "query($i: RefundPreviewInput!) { refundPreview(input: $i) { amount tenders { method amount } } }",
            i={"id": sale["id"], "lines": refund_lines},
        )
    )["refundPreview"]
    refund_doc = (
        "mutation($id: ID!, $l: [CartLineInput!], $k: String!) { refundOrder(input: {id: $id, lines: $l, "
        'idempotencyKey: $k, reason: "acceptance"}) { errors { code field } refund { id amount tenders { method '
        "amount } } order { status refunds { id } lines { refundedQuantity refundableQuantity } } } }"
    )
    refund_key = f"refund-{secrets.token_hex(4)}"
    refund = ok((await manager(refund_doc, id=sale["id"], l=refund_lines, k=refund_key))["refundOrder"])
    retried = ok((await manager(refund_doc, id=sale["id"], l=refund_lines, k=refund_key))["refundOrder"])
    refunded = refund["refund"]["amount"]
    assert 0 < refunded < sale["payable"] and refund["order"]["status"] == "PARTIALLY_REFUNDED"
    assert retried["refund"] == refund["refund"] and len(retried["order"]["refunds"]) == 1
    assert retried["order"]["lines"] == [{"refundedQuantity": 1, "refundableQuantity": 2}]
    back = {t["method"]: t["amount"] for t in refund["refund"]["tenders"]}
    assert preview == {"amount": refunded, "tenders": refund["refund"]["tenders"]}
    # The stated rule: each tender gets back its share in proportion to what it paid (largest remainder).
    assert sum(back.values()) == refunded and abs(back["CARD"] - refunded * card / sale["payable"]) < 1

    # A counter top-up paid in cash goes into the drawer's takings.
    top_up = 5000
    topped = ok(
        (
            await manager(
                "mutation($m: ID!, $k: String!, $t: [TenderInput!]!, $a: Int) { topUpStoredValue(input: {memberId: $m, "
                "idempotencyKey: $k, tenders: $t, amount: $a}) { errors { code field message } } }",
                m=member_id,
                k=f"topup-{secrets.token_hex(4)}",
                t=[{"method": "CASH", "amount": top_up}],
                a=top_up,
            )
        )["topUpStoredValue"]
    )
    assert topped["errors"] == []

    # A lost answer: the member orders again, the answer never arrives, and the same request (same key) brings the
    # pay parameters back; so does payOrder. Paying through them pays the order once.
    place = (
        "mutation($s: ID!, $l: [CartLineInput!]!, $key: String!, $at: DateTime) { placeOrder(input: {storeId: $s, "
        "lines: $l, idempotencyKey: $key, pickupAt: $at}) { errors { code field message } "
        "order { id status payable } payment { provider params } } }"
    )
    one = [{"skuId": sku, "quantity": 1}]
    cart = f"cart-{secrets.token_hex(4)}"
    lost = ok((await member(place, s=store["id"], l=one, key=cart, at=pickup_at.isoformat()))["placeOrder"])
    replay = ok((await member(place, s=store["id"], l=one, key=cart, at=pickup_at.isoformat()))["placeOrder"])
    again = ok(
        (
            await member(
                "mutation($id: ID!) { payOrder(input: {id: $id}) { errors { code } order { id } payment { params } } }",
                id=lost["order"]["id"],
            )
        )["payOrder"]
    )
    assert replay["order"]["id"] == lost["order"]["id"] == again["order"]["id"]
    prepay = lost["payment"]["params"]["prepayId"]
    assert replay["payment"]["params"]["prepayId"] == again["payment"]["params"]["prepayId"] == prepay
    headers, body = sandbox_notification(server, again["payment"]["params"]["prepayId"], lost["order"]["payable"])
    async with httpx.AsyncClient(timeout=30) as http:
        assert (await http.post(f"{server.url}/payments/notify/sandbox", content=body, headers=headers)).json() == {
            "code": "SUCCESS"
        }

    # A late payment: the member cancels while their payment is in flight; the provider's notification still comes.
    # It is acknowledged, shown on the order, and given back through the provider by the running app's own job.
    late = ok(
        (await member(place, s=store["id"], l=one, key=f"cart-{secrets.token_hex(4)}", at=pickup_at.isoformat()))[
            "placeOrder"
        ]
    )
    cancelled = ok(
        (
            await member(
                "mutation($id: ID!) { cancelMyOrder(input: {id: $id}) { errors { code } order { status } } }",
                id=late["order"]["id"],
            )
        )["cancelMyOrder"]
    )
    assert cancelled["order"]["status"] == "CANCELLED"
    headers, body = sandbox_notification(server, late["payment"]["params"]["prepayId"], late["order"]["payable"])
    async with httpx.AsyncClient(timeout=30) as http:
        assert (await http.post(f"{server.url}/payments/notify/sandbox", content=body, headers=headers)).json() == {
            "code": "SUCCESS"
        }
    late_payments = await refunded_late(member, late["order"]["id"])
    assert [(p["state"], p["amount"]) for p in late_payments] == [("REFUNDED_LATE", late["order"]["payable"])]

    # The day's settlement, in the store's time zone, reconciles with the cash counted at the counter.
    today = datetime.now(tz).date()
    day = (
        await manager(
            "query($s: ID!, $d: Date!) { settlement(storeId: $s, date: $d) { closed takings { method amount } "
            "refunds { method amount } topUpTakings { method amount } latePayments { received refunded } net } }",
            s=store["id"],
            d=today.isoformat(),
        )
    )["settlement"]
    takings = {t["method"]: t["amount"] for t in day["takings"]}
    given_back = {t["method"]: t["amount"] for t in day["refunds"]}
    counted_cash = cash + top_up - back["CASH"]
    assert takings["CASH"] - given_back["CASH"] == counted_cash
    assert takings["CARD"] - given_back["CARD"] == card - back["CARD"]
    assert {t["method"]: t["amount"] for t in day["topUpTakings"] if t["amount"]} == {"CASH": top_up}
    assert day["latePayments"] == {"received": late["order"]["payable"], "refunded": late["order"]["payable"]}
    paid_online = order["payable"] + lost["order"]["payable"]
    assert day["net"] == paid_online + sale["payable"] - refunded

    # The sales report shows the day once the running app has folded it (no calls into the app: just wait).
    report = await folded_sales_report(hq, store["id"], today)
    totals = report["totals"]
    assert (totals["orders"], totals["refundCount"], totals["refunds"]) == (3, 1, refunded), report
    assert totals["net"] == paid_online + sale["payable"], report
    assert totals["netAfterRefunds"] == totals["net"] - refunded
    assert [p["label"] for p in report["series"] if p["figures"]["orders"]] == [today.isoformat()], report
    own = (await manager(SALES_REPORT, s=store["id"], d=today.isoformat()))["salesReport"]
    assert own["totals"] == totals

    # The margin shows the day for HQ: the lines kept their cost at the time of sale, refunds took theirs back.
    margin = (await hq(MARGIN_REPORT, s=store["id"], d=today.isoformat()))["salesReport"]["totals"]
    assert margin["cost"] > 0 and margin["netAfterRefunds"] == totals["netAfterRefunds"]
    assert margin["grossProfit"] == margin["netAfterRefunds"] - (margin["cost"] - margin["refundedCost"]), margin

    # HQ sees the day's orders of every store in one list (统一订单管理), each with its timeline: who did what, when.
    day_filter = {"from": today.isoformat(), "to": today.isoformat()}
    listed = {e["node"]["id"]: e["node"] for e in (await hq(HQ_ORDERS, f=day_filter))["orders"]["edges"]}
    assert {order["id"], lost["order"]["id"], sale["id"]} <= set(listed)
    assert ("PLACED", "STAFF") in {(s["kind"], s["actor"]) for s in listed[sale["id"]]["timeline"]}, listed[sale["id"]]
    assert "MEMBER" in {s["actor"] for s in listed[order["id"]]["timeline"]}
    # The store's manager, through the same field, sees only the store's own orders.
    mine = (await manager(HQ_ORDERS, f=day_filter))["orders"]["edges"]
    assert mine and {e["node"]["store"]["id"] for e in mine} == {store["id"]}

    await replenish_from_a_warehouse(hq, manager, store["id"], sku)
    await exchange_at_the_counter(hq, manager, clerk, store["id"], sku, member_id, sale["id"], today)
    await profile_the_member(hq, manager, clerk, member, member_id, store["id"])
    await send_a_promotion_to_members_who_agreed(hq, member, server)
    await resolve_a_complaint_with_a_refund(
        hq, manager, clerk, member, await sign_in(server, "sh01.manager"), order["id"], sku
    )
    await fill_the_store_page(hq, manager, member, store["id"], sku)
    await use_a_card_bought_in_another_store(
        hq, clerk, member, member_id, store["id"], sku, lambda who: sign_in(server, who)
    )


async def replenish_from_a_warehouse(hq: Gql, manager: Gql, store_id: str, sku: str) -> None:
    """HQ opens a warehouse and buys into it (the SKU's cost becomes the moving average); the store asks for stock,
    HQ approves and ships, the store receives with one unit damaged: every step over the socket, each once."""
    warehouse = ok(
        (
            await hq(
                'mutation { createStore(input: {code: "WH-ACC", name: "验收仓", city: "上海", address: "嘉定区1号", '
                "lat: 31.38, lng: 121.25, kind: WAREHOUSE}) { errors { code field } store { id kind } } }"
            )
        )["createStore"]
    )["store"]
    ok((await hq(OPEN_STORE, id=warehouse["id"]))["setStoreStatus"])
    bought = ok((await hq(PURCHASE, w=warehouse["id"], k=sku, key=f"po-{secrets.token_hex(4)}"))["receivePurchase"])[
        "receipt"
    ]["lines"][0]
    before, cost_before = bought["onHandBefore"], bought["costBefore"]
    assert (bought["quantity"], cost_before) == (30, 600)
    assert bought["costAfter"] == (before * cost_before + 30 * 660 + (before + 30) // 2) // (before + 30)

    asked = ok(
        (await manager(REPLENISH, s=store_id, w=warehouse["id"], k=sku, key=f"rq-{secrets.token_hex(4)}"))[
            "requestReplenishment"
        ]
    )["transfer"]
    ok((await hq(DECIDE_TRANSFER, id=asked["id"]))["decideTransfer"])
    ok((await hq(SHIP_TRANSFER, id=asked["id"], key=f"sh-{secrets.token_hex(4)}"))["shipTransfer"])
    received = ok(
        (
            await manager(
                RECEIVE_TRANSFER, id=asked["id"], key=f"rc-{secrets.token_hex(4)}", d=[{"skuId": sku, "quantity": 1}]
            )
        )["receiveTransfer"]
    )["transfer"]
    assert received["status"] == "RECEIVED"
    assert [(x["shippedQuantity"], x["receivedQuantity"], x["damagedQuantity"]) for x in received["lines"]] == [
        (10, 9, 1)
    ]


async def refunded_late(member: Gql, order_id: str) -> list[dict[str, Any]]:
    """The order's payments once the running app's job has given the late one back (JOBS_INTERVAL_S), polled."""
    deadline = time.monotonic() + FOLD_WAIT_S
    while True:
        node = (
            await member(
                "query($id: ID!) { node(id: $id) { ... on Order { payments { state amount } } } }", id=order_id
            )
        )["node"]
        if node["payments"] and all(p["state"] != "LATE" for p in node["payments"]):
            return list(node["payments"])
        assert time.monotonic() < deadline, f"the running app did not refund the late payment: {node}"
        await asyncio.sleep(0.5)


SALES_REPORT = (
    "query($s: ID, $d: Date) { salesReport(storeId: $s, from: $d, to: $d) { totals { orders net refunds refundCount "
    "netAfterRefunds } series { label figures { orders net } } freshness { asOf pendingEvents } } }"
)


OPEN_STORE = "mutation($id: ID!) { setStoreStatus(input: {id: $id, status: OPEN}) { errors { code field } } }"
PURCHASE = (
    'mutation($w: ID!, $k: ID!, $key: String!) { receivePurchase(input: {warehouseId: $w, supplierName: "验收乳业", '
    "idempotencyKey: $key, lines: [{skuId: $k, quantity: 30, unitCost: 660}]}) { errors { code field } "
    "receipt { lines { quantity onHandBefore costBefore costAfter } } } }"
)
REPLENISH = (
    "mutation($s: ID!, $w: ID!, $k: ID!, $key: String!) { requestReplenishment(input: {storeId: $s, warehouseId: $w, "
    "idempotencyKey: $key, lines: [{skuId: $k, quantity: 10}]}) { errors { code field } transfer { id status } } }"
)
DECIDE_TRANSFER = "mutation($id: ID!) { decideTransfer(input: {id: $id, approve: true}) { errors { code field } transfer { status } } }"
SHIP_TRANSFER = (
    "mutation($id: ID!, $key: String!) { shipTransfer(input: {id: $id, idempotencyKey: $key}) "
    "{ errors { code field } transfer { status } } }"
)
RECEIVE_TRANSFER = (
    "mutation($id: ID!, $key: String!, $d: [StockLineInput!]) { receiveTransfer(input: {id: $id, idempotencyKey: $key, "
    "damaged: $d}) { errors { code field } transfer { status lines { shippedQuantity receivedQuantity "
    "damagedQuantity } } } }"
)
MARGIN_REPORT = (
    "query($s: ID, $d: Date) { salesReport(storeId: $s, from: $d, to: $d) { totals { netAfterRefunds cost "
    "refundedCost grossProfit margin } } }"
)
HQ_ORDERS = (
    "query($f: OrderFilterInput) { orders(filter: $f, first: 100) { edges { node { id store { id } "
    "timeline { kind actor at } } } } }"
)


async def folded_sales_report(caller: Gql, store_id: str, day: date) -> dict[str, Any]:
    """Poll the report until nothing is pending and the day's three orders are in, for up to FOLD_WAIT_S."""
    deadline = time.monotonic() + FOLD_WAIT_S
    while True:
        report: dict[str, Any] = (await caller(SALES_REPORT, s=store_id, d=day.isoformat()))["salesReport"]
        if report["freshness"]["pendingEvents"] == 0 and report["totals"]["orders"] >= 3:
            return report
        assert time.monotonic() < deadline, f"the running app did not fold the day within {FOLD_WAIT_S:.0f} s: {report}"
        await asyncio.sleep(1)

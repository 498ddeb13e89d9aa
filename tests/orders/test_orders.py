"""Orders: placed once, paid once, expired once; stock, points and spend move exactly once; stores stay apart."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
import websockets
from sqlalchemy import func, select
from websockets.typing import Subprotocol

from app import create_app
from models import Member, Order, OrderStatus, Payment, PaymentStatus, StockLevel, StockMovement, Store, utcnow
from services.access.scope import Viewer, ViewerKind
from services.orders import lifecycle as orders
from services.platform import jobs
from services.platform.db import write_transaction
from services.platform.errors import DomainError
from services.pricing.engine import CartLine
from tests.api.test_e2e_http import running_server
from tests.conftest import Api, count_statements, gid, pk
from tests.factories import list_in_store, make_library

PLACE = """mutation($s: ID!, $k: ID!, $q: Int!, $key: String!) { placeOrder(input: {storeId: $s, lines: [{skuId: $k, quantity: $q}],
  idempotencyKey: $key}) { errors { code field } order { id status payable pickupCode } payment { provider params } } }"""


async def _member(state) -> int:
    async with write_transaction(state.sessionmaker) as session:
        m = Member(name="顾客", level_id=1)
        session.add(m)
        await session.flush()
        return m.id


async def _given_sku(state, store_id: int, on_hand: int, price: int = 1500) -> int:
    library = await make_library(state, products=1, skus_per_product=1, price=price)
    await list_in_store(state, store_id, library.sku_ids, on_hand=on_hand)
    return library.sku_ids[0]


def _member_viewer(member_id: int) -> Viewer:
    return Viewer(kind=ViewerKind.MEMBER, member_id=member_id)


async def _place(state, member_id, store_id, sku, key, qty=1):
    async with write_transaction(state.sessionmaker) as session:
        placed = await orders.place_order(
            session,
            _member_viewer(member_id),
            state.payment_providers["sandbox"],
            orders.PlaceOrder(store_id, [CartLine(sku, qty)], key),
        )
        return placed.order.id


@pytest.mark.postgres_too
async def test_one_hundred_concurrent_orders_for_twenty_units_make_twenty_orders(state, chain):
    store = chain.stores["SH01"]
    sku = await _given_sku(state, store, on_hand=20)
    members = [await _member(state) for _ in range(10)]

    async def attempt(i: int) -> bool:
        try:
            await _place(state, members[i % 10], store, sku, f"k-{i}")
            return True
        except DomainError:
            return False

    results = await asyncio.gather(*(attempt(i) for i in range(100)))
    assert sum(results) == 20
    async with state.sessionmaker() as session:
        level = await session.scalar(select(StockLevel).where(StockLevel.sku_id == sku, StockLevel.store_id == store))
        ledger = (
            await session.execute(
                select(func.sum(StockMovement.quantity), func.sum(StockMovement.reserved_delta)).where(
                    StockMovement.sku_id == sku, StockMovement.store_id == store
                )
            )
        ).one()
        count = await session.scalar(select(func.count()).select_from(Order))
    assert count == 20 and (level.on_hand, level.reserved) == (20, 20) == tuple(ledger)


@pytest.mark.postgres_too
async def test_the_same_key_ten_times_at_once_is_one_order(state, chain):
    store = chain.stores["SH02"]
    sku = await _given_sku(state, store, on_hand=50)
    member = await _member(state)
    ids = await asyncio.gather(*(_place(state, member, store, sku, "same-key", qty=2) for _ in range(10)))
    assert len(set(ids)) == 1
    async with state.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == 1
        level = await session.scalar(select(StockLevel).where(StockLevel.sku_id == sku, StockLevel.store_id == store))
    assert level.reserved == 2


async def _pay(api: Api, state, provider_ref: str, amount: int, *, tamper: bool = False):
    headers, body = state.payment_providers["sandbox"].notification(provider_ref=provider_ref, amount=amount, txn="T-1")
    if tamper:
        body = body.replace(b'"amount":', b'"amount":1')
    return await api.http.post("/payments/notify/sandbox", content=body, headers=headers)


@pytest.mark.postgres_too
async def test_a_notification_five_times_is_one_payment_and_forged_or_wrong_ones_change_nothing(api, state, chain):
    store = chain.stores["SH01"]
    sku = await _given_sku(state, store, on_hand=5)
    member = await _member(state)
    order_id = await _place(state, member, store, sku, "pay-1", qty=2)
    ref = f"ORD{order_id:012d}"
    forged = await _pay(api, state, ref, 3000, tamper=True)
    assert forged.status_code == 400 and forged.json()["message"] == "PAYMENT_SIGNATURE_INVALID"
    headers, body = state.payment_providers["sandbox"].notification(provider_ref=ref, amount=2999, txn="T-0")
    wrong = await api.http.post("/payments/notify/sandbox", content=body, headers=headers)
    assert wrong.status_code == 400 and wrong.json()["message"] == "PAYMENT_AMOUNT_MISMATCH"
    async with state.sessionmaker() as session:
        assert (await session.get(Order, order_id)).status is OrderStatus.CREATED
    answers = await asyncio.gather(*(_pay(api, state, ref, 3000) for _ in range(5)))
    assert [a.json() for a in answers] == [{"code": "SUCCESS"}] * 5
    async with state.sessionmaker() as session:
        order = await session.get(Order, order_id)
        paid = (
            await session.scalars(
                select(Payment).where(Payment.order_id == order_id, Payment.status == PaymentStatus.SUCCEEDED)
            )
        ).all()
        sales = (await session.scalars(select(StockMovement.quantity).where(StockMovement.kind == "SALE"))).all()
        m = await session.get(Member, member)
    assert order.status is OrderStatus.PAID and order.pickup_code and len(paid) == 1
    assert sales == [-2] and m.points_balance == 30 and m.total_spend == 3000 and m.visit_count == 1


@pytest.mark.postgres_too
async def test_an_expired_order_releases_its_stock_once_even_with_two_runners(state, chain):
    store = chain.stores["SH03"]
    sku = await _given_sku(state, store, on_hand=4)
    order_id = await _place(state, await _member(state), store, sku, "late", qty=3)
    later = utcnow() + timedelta(minutes=16)
    await asyncio.gather(jobs.run_due(state.sessionmaker, later), jobs.run_due(state.sessionmaker, later))
    async with state.sessionmaker() as session:
        order = await session.get(Order, order_id)
        releases = (
            await session.scalars(select(StockMovement.reserved_delta).where(StockMovement.kind == "RELEASE"))
        ).all()
        level = await session.scalar(select(StockLevel).where(StockLevel.sku_id == sku, StockLevel.store_id == store))
    assert order.status is OrderStatus.CANCELLED and releases == [-3] and level.reserved == 0


HAND_OVER = """mutation($c: String!, $key: String!, $lines: [CartLineInput!]) {
  verifyPickup(input: {code: $c, idempotencyKey: $key, lines: $lines}) {
    errors { code field } order { status lines { quantity pickedUp } } } }"""


async def test_a_retried_partial_hand_over_hands_over_nothing_twice(api, state, chain):
    store = chain.stores["SH01"]
    sku = await _given_sku(state, store, on_hand=5)
    order_id = await _place(state, await _member(state), store, sku, "part", qty=3)
    await _pay(api, state, f"ORD{order_id:012d}", 4500)
    async with state.sessionmaker() as session:
        code = (await session.get(Order, order_id)).pickup_code
    one = [{"skuId": gid("Sku", sku), "quantity": 1}]
    part = {"c": code, "key": "hand-1", "lines": one}
    first, replay = [(await api.gql(HAND_OVER, part, as_="sh01.clerk"))["data"]["verifyPickup"] for _ in range(2)]
    assert first == replay == {"errors": [], "order": {"status": "PAID", "lines": [{"quantity": 3, "pickedUp": 1}]}}
    reused = await api.gql(HAND_OVER, {**part, "lines": [{**one[0], "quantity": 2}]}, as_="sh01.clerk")
    assert reused["data"]["verifyPickup"]["errors"] == [{"code": "IDEMPOTENCY_KEY_REUSED", "field": "idempotencyKey"}]
    rest = {"c": code, "key": "hand-2", "lines": None}
    done, again = [(await api.gql(HAND_OVER, rest, as_="sh01.clerk"))["data"]["verifyPickup"] for _ in range(2)]
    whole = {"errors": [], "order": {"status": "COMPLETED", "lines": [{"quantity": 3, "pickedUp": 3}]}}
    assert done == again == whole
    async with state.sessionmaker() as session:
        assert (await session.get(Order, order_id)).status is OrderStatus.COMPLETED


async def test_store_b_cannot_read_or_verify_store_a_orders(api, state, chain):
    store = chain.stores["SH01"]
    sku = await _given_sku(state, store, on_hand=5)
    order_id = await _place(state, await _member(state), store, sku, "b-test")
    await _pay(api, state, f"ORD{order_id:012d}", 1500)
    async with state.sessionmaker() as session:
        code = (await session.get(Order, order_id)).pickup_code
    oid = gid("Order", order_id)
    assert (await api.gql("query($id: ID!) { node(id: $id) { id } }", {"id": oid}, as_="sh02.manager"))["data"][
        "node"
    ] is None
    listing = await api.gql(
        "query($s: ID!) { orders(storeId: $s) { edges { node { id } } } }", {"s": gid("Store", store)}, as_="sh02.clerk"
    )
    assert listing["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    wrong_store = await api.gql(
        'mutation($c: String!) { verifyPickup(input: {code: $c, idempotencyKey: "hand-over-1"}) { errors { code } order { status } } }',
        {"c": code},
        as_="sh02.clerk",
    )
    assert wrong_store["data"]["verifyPickup"]["errors"] == [{"code": "PICKUP_CODE_INVALID"}]
    ready = await api.gql(
        "mutation($id: ID!) { markOrderReady(input: {id: $id}) { errors { code } } }", {"id": oid}, as_="sh02.clerk"
    )
    assert ready["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    own = await api.gql(
        'mutation($c: String!) { verifyPickup(input: {code: $c, idempotencyKey: "hand-over-1"}) { errors { code } order { status lines { pickedUp } } } }',
        {"c": code},
        as_="sh01.clerk",
    )
    assert own["data"]["verifyPickup"]["order"] == {"status": "COMPLETED", "lines": [{"pickedUp": 1}]}


async def test_a_store_order_list_with_lines_skus_and_members_is_constant_in_statements(api, state, chain):
    store = chain.stores["SH01"]
    sku = await _given_sku(state, store, on_hand=500)
    member = await _member(state)
    for i in range(100):
        await _place(state, member, store, sku, f"list-{i}")
    query = """query($s: ID!, $n: Int!) { orders(storeId: $s, first: $n) { edges { node { id status payable
      lines { quantity unitPrice sku { barcode product { name } } } member { name level { name } } store { code } } } } }"""
    token = await api.token("sh01.manager")
    counts = {}
    for n in (10, 100):
        with count_statements(state.engine) as counter:
            body = (await api.post(query, {"s": gid("Store", store), "n": n}, token=token)).json()
        assert "errors" not in body, body
        assert len(body["data"]["orders"]["edges"]) == n
        counts[n] = counter.count
    assert counts[10] == counts[100], counts


async def test_a_member_orders_pays_and_picks_up_end_to_end_over_http_and_websocket(state, chain):
    store = chain.stores["SZ01"]
    sku = await _given_sku(state, store, on_hand=10, price=2800)
    async with running_server(create_app(state=state)) as url, httpx.AsyncClient(base_url=f"http://{url}") as http:
        api = Api(http)
        signed = await api.member_sign_in("wx-e2e:13811112222", gid("Store", store))
        member_token = signed["tokens"]["accessToken"]
        ws = await websockets.connect(f"ws://{url}/graphql", subprotocols=[Subprotocol("graphql-transport-ws")])
        try:
            await ws.send(
                json.dumps(
                    {"type": "connection_init", "payload": {"authorization": f"Bearer {await api.token('sz01.clerk')}"}}
                )
            )
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            await ws.send(
                json.dumps(
                    {
                        "id": "o",
                        "type": "subscribe",
                        "payload": {
                            "query": "subscription($s: ID!) { orderEvents(storeId: $s) { orderId status } }",
                            "variables": {"s": gid("Store", store)},
                        },
                    }
                )
            )
            await asyncio.sleep(0.3)
            quote = (
                await api.post(
                    "query($s: ID!, $k: ID!) { quote(input: {storeId: $s, lines: [{skuId: $k, quantity: 2}]}) { total lines { unitPrice adjustments { rule } } } }",
                    {"s": gid("Store", store), "k": gid("Sku", sku)},
                    token=member_token,
                )
            ).json()
            assert quote["data"]["quote"]["total"] == 5600
            placed = (
                await api.post(
                    PLACE, {"s": gid("Store", store), "k": gid("Sku", sku), "q": 2, "key": "e2e-1"}, token=member_token
                )
            ).json()
            order = placed["data"]["placeOrder"]["order"]
            assert order["status"] == "CREATED" and placed["data"]["placeOrder"]["payment"]["provider"] == "sandbox"
            order_id = pk(order["id"])
            headers, body = state.payment_providers["sandbox"].notification(
                provider_ref=f"ORD{order_id:012d}", amount=order["payable"]
            )
            assert (await http.post("/payments/notify/sandbox", content=body, headers=headers)).json() == {
                "code": "SUCCESS"
            }
            event = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert event["payload"]["data"]["orderEvents"] == {"orderId": order["id"], "status": "PAID"}
            mine = (
                await api.post("{ myOrders { edges { node { status pickupCode pickupQr } } } }", token=member_token)
            ).json()
            paid = mine["data"]["myOrders"]["edges"][0]["node"]
            assert paid["status"] == "PAID" and paid["pickupQr"].endswith(paid["pickupCode"])
            ready = await api.gql(
                "mutation($id: ID!) { markOrderReady(input: {id: $id}) { order { status } } }",
                {"id": order["id"]},
                as_="sz01.clerk",
            )
            assert ready["data"]["markOrderReady"]["order"]["status"] == "READY"
            done = await api.gql(
                'mutation($c: String!) { verifyPickup(input: {code: $c, idempotencyKey: "hand-over-1"}) { errors { code } order { status } } }',
                {"c": paid["pickupCode"]},
                as_="sz01.clerk",
            )
            assert done["data"]["verifyPickup"]["order"]["status"] == "COMPLETED"
            # The tablet saw each step as it happened (myOrderUpdates carries the same events to the member).
            later = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(2)]
            assert [e["payload"]["data"]["orderEvents"]["status"] for e in later] == ["READY", "COMPLETED"]
        finally:
            await ws.close()
        async with state.sessionmaker() as session:
            tz = (await session.get(Store, store)).timezone
        today = datetime.now(ZoneInfo(tz)).date().isoformat()
        day = await api.gql(
            "query($s: ID!, $d: Date!) { settlement(storeId: $s, date: $d) { closed figures } }",
            {"s": gid("Store", store), "d": today},
            as_="hq.analyst",
        )
    figures = day["data"]["settlement"]["figures"]
    assert figures["takings"]["WECHAT_PAY"] == 5600 and figures["net"] == 5600 and figures["discounts"] == 0
    async with state.sessionmaker() as session:
        member = await session.get(Member, order_id and (await session.get(Order, order_id)).member_id)
        level = await session.scalar(select(StockLevel).where(StockLevel.sku_id == sku, StockLevel.store_id == store))
    assert (level.on_hand, level.reserved) == (8, 0)
    assert member.points_balance == 56 and member.total_spend == 5600


async def test_a_short_store_says_which_lines_and_the_quote_points_to_the_nearest_stores_that_have_them(
    api, state, chain
):
    library = await make_library(state, products=1, skus_per_product=2)
    a, b = library.sku_ids
    await list_in_store(state, chain.stores["SH02"], [a, b], on_hand=1)
    await list_in_store(state, chain.stores["SH01"], [a, b], on_hand=9)  # 2.4 km away
    await list_in_store(state, chain.stores["SH04"], [a, b], on_hand=9)  # 5.5 km away
    await list_in_store(state, chain.stores["SH03"], [a], on_hand=9)  # lacks b
    token = await api.token("member:shorty")
    lines = [{"skuId": gid("Sku", a), "quantity": 1}, {"skuId": gid("Sku", b), "quantity": 3}]
    quote = await api.post(
        "query($s: ID!, $l: [CartLineInput!]!) { quote(input: {storeId: $s, lines: $l}) { lines { available } alternativeStores { code } } }",
        {"s": gid("Store", chain.stores["SH02"]), "l": lines},
        token=token,
    )
    data = quote.json()["data"]["quote"]
    assert [x["available"] for x in data["lines"]] == [True, False]
    assert [s["code"] for s in data["alternativeStores"]] == ["SH01", "SH04"]
    placed = await api.post(
        'mutation($s: ID!, $l: [CartLineInput!]!) { placeOrder(input: {storeId: $s, lines: $l, idempotencyKey: "s-1"}) { errors { code } unavailableSkuIds order { id } } }',
        {"s": gid("Store", chain.stores["SH02"]), "l": lines},
        token=token,
    )
    assert placed.json()["data"]["placeOrder"] == {
        "errors": [{"code": "OUT_OF_STOCK"}],
        "unavailableSkuIds": [gid("Sku", b)],
        "order": None,
    }


@pytest.mark.postgres_too
async def test_counter_sales_and_online_orders_racing_for_the_last_units_never_oversell(state, chain):
    from models import PaymentMethod
    from services.orders import pos
    from tests.factories import HQ

    store = chain.stores["HZ02"]
    sku = await _given_sku(state, store, on_hand=20, price=1000)
    members = [await _member(state) for _ in range(5)]

    async def online(i: int) -> bool:
        try:
            await _place(state, members[i % 5], store, sku, f"on-{i}")
            return True
        except DomainError:
            return False

    async def counter(i: int) -> bool:
        try:
            async with write_transaction(state.sessionmaker) as session:
                await pos.checkout(
                    session,
                    HQ,
                    pos.Checkout(store, f"pos-{i}", [CartLine(sku, 1)], [pos.Tender(PaymentMethod.CASH, 1000)]),
                )
            return True
        except DomainError:
            return False

    results = await asyncio.gather(*(online(i) if i % 2 else counter(i) for i in range(60)))
    assert sum(results) == 20
    async with state.sessionmaker() as session:
        level = await session.scalar(select(StockLevel).where(StockLevel.sku_id == sku, StockLevel.store_id == store))
        ledger = (
            await session.execute(
                select(func.sum(StockMovement.quantity), func.sum(StockMovement.reserved_delta)).where(
                    StockMovement.sku_id == sku, StockMovement.store_id == store
                )
            )
        ).one()
    assert level.on_hand - level.reserved == 0 and (level.on_hand, level.reserved) == tuple(ledger)


async def test_an_expiry_reaches_the_members_live_updates_and_the_unpaid_lifetime_is_a_setting(api, state, chain):
    from services.access.identity import ExternalIdentity
    from services.members.accounts import member_for_identity
    from services.org.settings import update_settings

    store = chain.stores["SZ02"]
    sku = await _given_sku(state, store, on_hand=3)
    async with write_transaction(state.sessionmaker) as session:
        await update_settings(session, unpaid_order_minutes=5)
        member, _ = await member_for_identity(session, state.cipher, ExternalIdentity("local", "live-1"), store_id=None)
    order_id = await _place(state, member.id, store, sku, "live")
    async with state.sessionmaker() as session:
        order = await session.get(Order, order_id)
    assert timedelta(minutes=4) < order.expires_at - order.created_at <= timedelta(minutes=5)
    async with running_server(create_app(state=state)) as url:
        ws = await websockets.connect(f"ws://{url}/graphql", subprotocols=[Subprotocol("graphql-transport-ws")])
        try:
            await ws.send(
                json.dumps(
                    {
                        "type": "connection_init",
                        "payload": {"authorization": f"Bearer {await api.token('member:live-1')}"},
                    }
                )
            )
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            await ws.send(
                json.dumps(
                    {
                        "id": "m",
                        "type": "subscribe",
                        "payload": {"query": "subscription { myOrderUpdates { orderId status } }"},
                    }
                )
            )
            await asyncio.sleep(0.3)
            await jobs.run_due(state.sessionmaker, utcnow() + timedelta(minutes=6), broker=state.broker)
            message = json.loads(await asyncio.wait_for(ws.recv(), 5))
        finally:
            await ws.close()
    assert message["payload"]["data"]["myOrderUpdates"] == {"orderId": gid("Order", order_id), "status": "CANCELLED"}

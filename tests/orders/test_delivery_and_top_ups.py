"""Delivery orders (fee, range, states, the address kept secret), provider refunds, and online top-ups."""

from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from models import BalanceLot, Member, OnlineTopUp, Order, StockLevel, Store, TopUpStatus
from services.orders import settlement
from tests.conftest import gid, pk
from tests.factories import list_in_store, make_library

NEAR_SH01 = {
    "contactName": "李雷",
    "phone": "13912345678",
    "address": "南京西路1700号 12楼",
    "lat": 31.2260,
    "lng": 121.4480,
}
FAR = {**NEAR_SH01, "lat": 31.30, "lng": 121.60}  # about 17 km away

QUOTE = """query($s: ID!, $l: [CartLineInput!]!) { quote(input: {storeId: $s, lines: $l, fulfilment: DELIVERY}) {
  subtotal deliveryFee total pointsUsable } }"""
PLACE = """mutation($s: ID!, $l: [CartLineInput!]!, $key: String!, $d: DeliveryAddressInput) {
  placeOrder(input: {storeId: $s, lines: $l, idempotencyKey: $key, fulfilment: DELIVERY, delivery: $d}) {
    errors { code field } order { id status payable deliveryFee pickupCode delivery { contactName phone address } } } }"""
DELIVERY = "query($id: ID!) { node(id: $id) { ... on Order { status delivery { phone address } } } }"


async def _listed(state, store_id: int, price: int, on_hand: int = 20) -> int:
    library = await make_library(state, products=1, skus_per_product=1, price=price)
    await list_in_store(state, store_id, library.sku_ids, on_hand=on_hand)
    return library.sku_ids[0]


async def _notify(api, state, ref: str, amount: int):
    headers, body = state.payment_providers["sandbox"].notification(provider_ref=ref, amount=amount)
    return await api.http.post("/payments/notify/sandbox", content=body, headers=headers)


def _lines(sku: int, qty: int) -> list[dict[str, object]]:
    return [{"skuId": gid("Sku", sku), "quantity": qty}]


async def test_the_delivery_fee_is_quoted_and_waived_over_the_threshold(api, state, chain):
    store = gid("Store", chain.stores["SH01"])
    sku = await _listed(state, chain.stores["SH01"], price=1500)
    token = await api.token("member:fee")
    small = (await api.post(QUOTE, {"s": store, "l": _lines(sku, 1)}, token=token)).json()["data"]["quote"]
    large = (await api.post(QUOTE, {"s": store, "l": _lines(sku, 4)}, token=token)).json()["data"]["quote"]
    assert small == {"subtotal": 1500, "deliveryFee": 600, "total": 2100, "pointsUsable": 0}
    assert large["deliveryFee"] == 0 and large["total"] == 6000


async def test_an_address_out_of_range_is_refused_and_writes_nothing(api, state, chain):
    sku = await _listed(state, chain.stores["SH01"], price=1500)
    token = await api.token("member:far")
    variables: dict[str, object] = {"s": gid("Store", chain.stores["SH01"]), "l": _lines(sku, 1), "key": "far-1"}
    far = (await api.post(PLACE, {**variables, "d": FAR}, token=token)).json()["data"]["placeOrder"]
    missing = (await api.post(PLACE, {**variables, "key": "far-2"}, token=token)).json()["data"]["placeOrder"]
    bad_phone = (
        await api.post(PLACE, {**variables, "key": "far-3", "d": {**NEAR_SH01, "phone": "12"}}, token=token)
    ).json()
    assert far["errors"] == [{"code": "OUT_OF_DELIVERY_RANGE", "field": "delivery"}]
    assert missing["errors"] == [{"code": "INVALID_INPUT", "field": "delivery"}]
    assert bad_phone["data"]["placeOrder"]["errors"] == [{"code": "INVALID_INPUT", "field": "delivery.phone"}]
    async with state.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == 0
        level = await session.scalar(select(StockLevel).where(StockLevel.sku_id == sku))
    assert level.reserved == 0


@pytest.mark.postgres_too
async def test_a_delivery_order_is_paid_dispatched_and_received_with_its_address_kept_secret(api, state, chain):
    sh01 = chain.stores["SH01"]
    sku = await _listed(state, sh01, price=1500)
    token = await api.token("member:deliver")
    placed = await api.post(
        PLACE, {"s": gid("Store", sh01), "l": _lines(sku, 2), "key": "d-1", "d": NEAR_SH01}, token=token
    )
    order = placed.json()["data"]["placeOrder"]["order"]
    assert order["payable"] == 3600 and order["deliveryFee"] == 600 and order["pickupCode"] is None
    assert order["delivery"] == {"contactName": "李雷", "phone": "13912345678", "address": "南京西路1700号 12楼"}
    order_id = pk(order["id"])
    async with state.sessionmaker() as session:
        sealed = (await session.get(Order, order_id)).delivery_enc
    assert b"13912345678" not in sealed and "南京西路".encode() not in sealed
    assert (await _notify(api, state, f"ORD{order_id:012d}", 3600)).json() == {"code": "SUCCESS"}

    ready = await api.gql(
        "mutation($id: ID!) { markOrderReady(input: {id: $id}) { errors { code } } }",
        {"id": order["id"]},
        as_="sh01.clerk",
    )
    assert ready["data"]["markOrderReady"]["errors"] == [{"code": "INVALID_TRANSITION"}]
    dispatch = "mutation($id: ID!) { dispatchOrder(input: {id: $id}) { errors { code } order { status } } }"
    other = await api.gql(dispatch, {"id": order["id"]}, as_="sh02.clerk")
    assert other["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    early = await api.gql(
        "mutation($id: ID!) { confirmDelivery(input: {id: $id}) { errors { code } } }",
        {"id": order["id"]},
        as_="member:deliver",
    )
    assert early["data"]["confirmDelivery"]["errors"] == [{"code": "INVALID_TRANSITION"}]
    out = await api.gql(dispatch, {"id": order["id"]}, as_="sh01.clerk")
    assert out["data"]["dispatchOrder"] == {"errors": [], "order": {"status": "DELIVERING"}}

    seen_by_store = (await api.gql(DELIVERY, {"id": order["id"]}, as_="sh01.clerk"))["data"]["node"]
    seen_by_hq = (await api.gql(DELIVERY, {"id": order["id"]}, as_="hq.analyst"))["data"]["node"]
    assert seen_by_store["delivery"]["phone"] == "13912345678" and seen_by_hq["delivery"]["phone"] == "139****5678"
    assert (await api.gql(DELIVERY, {"id": order["id"]}, as_="sh02.manager"))["data"]["node"] is None
    stranger = await api.gql(
        "mutation($id: ID!) { confirmDelivery(input: {id: $id}) { errors { code } } }",
        {"id": order["id"]},
        as_="member:someone-else",
    )
    assert stranger["data"]["confirmDelivery"]["errors"] == [{"code": "NOT_FOUND"}]
    received = await api.gql(
        "mutation($id: ID!) { confirmDelivery(input: {id: $id}) { errors { code } order { status lines { pickedUp } } } }",
        {"id": order["id"]},
        as_="member:deliver",
    )
    assert received["data"]["confirmDelivery"]["order"] == {"status": "COMPLETED", "lines": [{"pickedUp": 2}]}
    async with state.sessionmaker() as session:
        member = await session.scalar(
            select(Member).join(Order, Order.member_id == Member.id).where(Order.id == order_id)
        )
        store = await session.get(Store, sh01)
        figures = await settlement.compute(session, store, datetime.now(ZoneInfo(store.timezone)).date())
    # Points and lifetime spend count the goods, not the delivery fee.
    assert member.points_balance == 30 and member.total_spend == 3000
    assert figures["deliveryFees"] == 600 and figures["takings"]["WECHAT_PAY"] == 3600 and figures["net"] == 3600


async def test_a_mini_program_refund_goes_back_through_the_provider_with_the_fee_and_only_once(api, state, chain):
    sh01 = chain.stores["SH01"]
    sku = await _listed(state, sh01, price=1500)
    token = await api.token("member:refund")
    placed = await api.post(
        PLACE, {"s": gid("Store", sh01), "l": _lines(sku, 2), "key": "r-1", "d": NEAR_SH01}, token=token
    )
    order = placed.json()["data"]["placeOrder"]["order"]
    ref = f"ORD{pk(order['id']):012d}"
    await _notify(api, state, ref, 3600)
    refund = """mutation($idempotencyKey: String!, $id: ID!, $l: [CartLineInput!]) { refundOrder(input: {idempotencyKey: $idempotencyKey, id: $id, lines: $l}) {
      errors { code } refund { amount byMethod pointsTakenBack } order { status } } }"""
    first = await api.gql(refund, {"id": order["id"], "l": _lines(sku, 1)}, as_="sh01.manager")
    assert first["data"]["refundOrder"]["refund"] == {
        "amount": 1500,
        "byMethod": {"WECHAT_PAY": 1500},
        "pointsTakenBack": 15,
    }
    rest = await api.gql(refund, {"id": order["id"]}, as_="sh01.manager")
    # The last of the goods takes the delivery fee back with it.
    assert rest["data"]["refundOrder"]["refund"]["amount"] == 2100
    assert rest["data"]["refundOrder"]["order"]["status"] == "REFUNDED"
    again = await api.gql(refund, {"id": order["id"]}, as_="sh01.manager")
    assert again["data"]["refundOrder"]["errors"] == [{"code": "INVALID_TRANSITION"}]
    provider = state.payment_providers["sandbox"]
    assert sorted(provider.refunds[ref].values()) == [1500, 2100] and sum(provider.refunds[ref].values()) == 3600
    async with state.sessionmaker() as session:
        member = await session.scalar(select(Member).join(Order, Order.member_id == Member.id))
        level = await session.scalar(select(StockLevel).where(StockLevel.sku_id == sku))
    assert (member.points_balance, member.total_spend) == (0, 0) and (level.on_hand, level.reserved) == (20, 0)


async def test_a_refused_provider_refund_changes_nothing(api, state, chain):
    sh01 = chain.stores["SH01"]
    sku = await _listed(state, sh01, price=1500)
    token = await api.token("member:refused")
    placed = await api.post(
        PLACE, {"s": gid("Store", sh01), "l": _lines(sku, 1), "key": "x-1", "d": NEAR_SH01}, token=token
    )
    order = placed.json()["data"]["placeOrder"]["order"]
    ref = f"ORD{pk(order['id']):012d}"
    await _notify(api, state, ref, 2100)
    state.payment_providers["sandbox"].prepaid[ref] = 100  # the provider believes less was paid
    refused = await api.gql(
        "mutation($idempotencyKey: String!, $id: ID!) { refundOrder(input: {idempotencyKey: $idempotencyKey, id: $id}) { errors { code } } }",
        {"id": order["id"]},
        as_="sh01.manager",
    )
    assert refused["data"]["refundOrder"]["errors"] == [{"code": "PAYMENT_REFUND_REFUSED"}]
    async with state.sessionmaker() as session:
        still = await session.get(Order, pk(order["id"]))
        level = await session.scalar(select(StockLevel).where(StockLevel.sku_id == sku))
    assert still.status.value == "PAID" and level.on_hand == 19


TOP_UP = """mutation($key: String!, $plan: ID, $amount: Int, $s: ID) { topUpOnline(input: {idempotencyKey: $key,
  planId: $plan, amount: $amount, storeId: $s}) { errors { code field } topUp { id amount bonus status }
  payment { provider params } } }"""


@pytest.mark.postgres_too
async def test_an_online_top_up_is_credited_once_from_the_providers_notification(api, state, chain):
    hz01 = chain.stores["HZ01"]
    plan = (
        await api.gql(
            'mutation { createTopUpPlan(input: {name: "充500送50", payAmount: 50000, bonusAmount: 5000})'
            " { plan { id } } }",
            as_="hq.admin",
        )
    )["data"]["createTopUpPlan"]["plan"]["id"]
    variables = {"key": "top-1", "plan": plan, "s": gid("Store", hz01)}
    started = (await api.gql(TOP_UP, variables, as_="member:topper"))["data"]["topUpOnline"]
    assert started["topUp"]["amount"] == 50000 and started["topUp"]["bonus"] == 5000
    assert started["topUp"]["status"] == "PENDING" and started["payment"]["params"]["amount"] == "50000"
    again = (await api.gql(TOP_UP, variables, as_="member:topper"))["data"]["topUpOnline"]
    assert again["topUp"]["id"] == started["topUp"]["id"]
    ref = f"TOP{pk(started['topUp']['id']):012d}"
    wrong = await _notify(api, state, ref, 40000)
    assert wrong.json()["message"] == "PAYMENT_AMOUNT_MISMATCH"
    answers = await asyncio.gather(*(_notify(api, state, ref, 50000) for _ in range(5)))
    assert [a.json() for a in answers] == [{"code": "SUCCESS"}] * 5
    me = await api.gql(
        "{ me { ... on MemberViewer { member { storedValue { principal bonus } } } } }", as_="member:topper"
    )
    assert me["data"]["me"]["member"]["storedValue"] == {"principal": 50000, "bonus": 5000}
    async with state.sessionmaker() as session:
        top_up = await session.get(OnlineTopUp, pk(started["topUp"]["id"]))
        lots = (await session.scalars(select(BalanceLot))).all()
        store = await session.get(Store, hz01)
        figures = await settlement.compute(session, store, datetime.now(ZoneInfo(store.timezone)).date())
    assert top_up.status is TopUpStatus.PAID
    assert [(lot.issuer_store_id, lot.principal_left, lot.bonus_left) for lot in lots] == [(hz01, 50000, 5000)]
    assert figures["storedValueSold"] == {"principal": 50000, "bonus": 5000}
    paid_again = (await api.gql(TOP_UP, variables, as_="member:topper"))["data"]["topUpOnline"]
    assert paid_again["topUp"]["status"] == "PAID" and paid_again["payment"] is None


async def test_online_top_up_input_is_checked(api, state, chain):
    neither = (await api.gql(TOP_UP, {"key": "n-1"}, as_="member:checker"))["data"]["topUpOnline"]
    too_much = (await api.gql(TOP_UP, {"key": "n-2", "amount": 10**9}, as_="member:checker"))["data"]["topUpOnline"]
    staff = await api.gql(TOP_UP, {"key": "n-3", "amount": 100}, as_="sh01.clerk")
    assert neither["errors"] == [{"code": "INVALID_INPUT", "field": "planId"}]
    assert too_much["errors"] == [{"code": "INVALID_INPUT", "field": "amount"}]
    assert staff["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    async with state.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(OnlineTopUp)) == 0

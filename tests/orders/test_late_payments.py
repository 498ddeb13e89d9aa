"""Money that arrives when it should not: late and duplicate payments are acknowledged, recorded, refunded once;
an ended order's provider payment is closed; a lost answer is paid again; counter top-ups say how they were paid."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select, update

from app import create_app
from models import Job, Member, Order, OrderStatus, Payment, PaymentStatus, utcnow
from resolvers.state import build_state
from services.platform import jobs
from services.platform.errors import DomainError, ErrorCode
from services.platform.payments import SandboxProvider
from tests.api.test_e2e_http import running_server
from tests.conftest import Api, count_statements, gid, pk
from tests.factories import list_in_store, make_library

PLACE = """mutation($s: ID!, $k: ID!, $q: Int!, $key: String!) { placeOrder(input: {storeId: $s,
  lines: [{skuId: $k, quantity: $q}], idempotencyKey: $key}) {
  errors { code field } order { id status payable } payment { provider params } } }"""
CANCEL = "mutation($id: ID!) { cancelMyOrder(input: {id: $id}) { errors { code } order { status } } }"
PAY = "mutation($id: ID!) { payOrder(input: {id: $id}) { errors { code field } order { id } payment { params } } }"
PAYMENTS = """query($id: ID!) { node(id: $id) { ... on Order { status
  payments { id method amount state providerReference providerTransactionId paidAt refundedAt } } } }"""
LATE = """query($s: ID, $r: Boolean) { latePayments(storeId: $s, refunded: $r) {
  edges { node { id amount state order { id status } } } } }"""
SETTLEMENT = "query($s: ID!, $d: Date!) { settlement(storeId: $s, date: $d) { figures } }"


async def _sku(state, store_id: int, price: int = 1500) -> int:
    library = await make_library(state, products=1, skus_per_product=1, price=price)
    await list_in_store(state, store_id, library.sku_ids, on_hand=20)
    return library.sku_ids[0]


async def _place(api, who: str, store_id: int, sku: int, key: str, qty: int = 1) -> dict[str, Any]:
    body = await api.gql(PLACE, {"s": gid("Store", store_id), "k": gid("Sku", sku), "q": qty, "key": key}, as_=who)
    placed: dict[str, Any] = body["data"]["placeOrder"]
    assert placed["errors"] == [], placed
    return placed


def _ref(order_gid: str) -> str:
    return f"ORD{pk(order_gid):012d}"


async def _deliver(api, headers: dict[str, str], body: bytes) -> httpx.Response:
    response: httpx.Response = await api.http.post("/payments/notify/sandbox", content=body, headers=headers)
    return response


async def _payments(state, order_id: int) -> list[Payment]:
    async with state.sessionmaker() as session:
        return list(await session.scalars(select(Payment).where(Payment.order_id == order_id).order_by(Payment.id)))


def _today(tz: str = "Asia/Shanghai") -> str:
    return datetime.now(ZoneInfo(tz)).date().isoformat()


@pytest.mark.postgres_too
async def test_a_payment_that_lands_after_cancel_is_acknowledged_recorded_and_refunded_once(api, state, chain):
    sh01 = chain.stores["SH01"]
    sandbox = state.payment_providers["sandbox"]
    placed = await _place(api, "member:late", sh01, await _sku(state, sh01), "late-1", qty=2)
    order_id, ref = pk(placed["order"]["id"]), _ref(placed["order"]["id"])
    headers, body = sandbox.notification(provider_ref=ref, amount=3000, txn="T-LATE")  # paid, still in flight
    cancelled = await api.gql(CANCEL, {"id": placed["order"]["id"]}, as_="member:late")
    assert cancelled["data"]["cancelMyOrder"]["order"]["status"] == "CANCELLED"

    answers = [await _deliver(api, headers, body) for _ in range(3)]  # the provider retries until it hears SUCCESS
    assert [(a.status_code, a.json()) for a in answers] == [(200, {"code": "SUCCESS"})] * 3
    [late] = [p for p in await _payments(state, order_id) if p.provider]
    assert (late.status, late.amount, late.provider_txn) == (PaymentStatus.LATE, 3000, "T-LATE")
    async with state.sessionmaker() as session:
        assert (await session.get(Order, order_id)).status is OrderStatus.CANCELLED
        assert (
            await session.scalar(select(func.count()).select_from(Job).where(Job.kind == "payments.refund_late")) == 1
        )

    later = utcnow() + timedelta(seconds=1)
    await asyncio.gather(
        *(jobs.run_due(state.sessionmaker, later, providers=state.payment_providers) for _ in range(2))
    )
    await jobs.run_due(state.sessionmaker, later + timedelta(minutes=5), providers=state.payment_providers)
    [late] = [p for p in await _payments(state, order_id) if p.provider]
    assert late.status is PaymentStatus.REFUNDED_LATE and late.refunded_at is not None
    assert sandbox.refunds[ref] == {f"L{late.id}": 3000}

    seen = await api.gql(PAYMENTS, {"id": placed["order"]["id"]}, as_="member:late")
    shown = seen["data"]["node"]["payments"]
    assert [
        (p["method"], p["amount"], p["state"], p["providerReference"], p["providerTransactionId"]) for p in shown
    ] == [("WECHAT_PAY", 3000, "REFUNDED_LATE", ref, "T-LATE")]
    assert shown[0]["paidAt"] and shown[0]["refundedAt"]


@pytest.mark.postgres_too
async def test_a_duplicate_payment_is_refunded_and_the_order_is_paid_once(api, state, chain):
    sh01 = chain.stores["SH01"]
    sandbox = state.payment_providers["sandbox"]
    placed = await _place(api, "member:twice", sh01, await _sku(state, sh01), "twice-1")
    order_id, ref = pk(placed["order"]["id"]), _ref(placed["order"]["id"])
    first = sandbox.notification(provider_ref=ref, amount=1500, txn="T-A")
    second = sandbox.notification(provider_ref=ref, amount=1500, txn="T-B")  # paid again on another phone
    answers = await asyncio.gather(*(_deliver(api, *n) for n in (first, second, first, second)))
    assert [a.json() for a in answers] == [{"code": "SUCCESS"}] * 4
    await jobs.run_due(state.sessionmaker, utcnow() + timedelta(seconds=1), providers=state.payment_providers)
    provider_payments = [p for p in await _payments(state, order_id) if p.provider]
    assert {p.status for p in provider_payments} == {PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED_LATE}
    assert len(provider_payments) == 2
    duplicate = next(p for p in provider_payments if p.status is PaymentStatus.REFUNDED_LATE)
    assert sandbox.refunds[ref] == {f"L{duplicate.id}": 1500}
    async with state.sessionmaker() as session:
        order = await session.get(Order, order_id)
        member = await session.get(Member, order.member_id)
    assert order.status is OrderStatus.PAID and member.points_balance == 15 and member.total_spend == 1500

    # HQ lists it; another store's staff see nothing of it; the member sees both payments on the order.
    hq = (await api.gql(LATE, {}, as_="hq.admin"))["data"]["latePayments"]["edges"]
    assert [(e["node"]["amount"], e["node"]["state"], e["node"]["order"]["id"]) for e in hq] == [
        (1500, "REFUNDED_LATE", placed["order"]["id"])
    ]
    pending = await api.gql(LATE, {"r": False}, as_="hq.admin")
    assert pending["data"]["latePayments"]["edges"] == []
    assert len((await api.gql(LATE, {}, as_="sh01.manager"))["data"]["latePayments"]["edges"]) == 1
    assert (await api.gql(LATE, {}, as_="sh02.manager"))["data"]["latePayments"]["edges"] == []
    other_store = await api.gql(LATE, {"s": gid("Store", sh01)}, as_="sh02.manager")
    assert other_store["data"]["latePayments"]["edges"] == []
    member_view = await api.gql(PAYMENTS, {"id": placed["order"]["id"]}, as_="member:twice")
    assert [p["state"] for p in member_view["data"]["node"]["payments"]] == ["PAID", "REFUNDED_LATE"]
    payment_id = member_view["data"]["node"]["payments"][1]["id"]
    node = "query($id: ID!) { node(id: $id) { ... on Payment { amount state order { id } } } }"
    mine = await api.gql(node, {"id": payment_id}, as_="member:twice")
    assert mine["data"]["node"] == {"amount": 1500, "state": "REFUNDED_LATE", "order": {"id": placed["order"]["id"]}}
    assert (await api.gql(node, {"id": payment_id}, as_="member:someone-else"))["data"]["node"] is None
    assert (await api.gql(node, {"id": payment_id}, as_="sh02.clerk"))["data"]["node"] is None

    # The settlement counts the duplicate in (takings) and out (refunds) today.
    figures = (await api.gql(SETTLEMENT, {"s": gid("Store", sh01), "d": _today()}, as_="hq.admin"))["data"]
    figures = figures["settlement"]["figures"]
    assert figures["takings"]["WECHAT_PAY"] == 3000 and figures["refunds"]["WECHAT_PAY"] == 1500
    assert figures["latePayments"] == {"received": 1500, "refunded": 1500}
    assert figures["net"] == 1500


async def test_cancelling_or_expiring_closes_the_provider_payment_so_it_cannot_be_paid(api, state, chain):
    sh01 = chain.stores["SH01"]
    sandbox = state.payment_providers["sandbox"]
    sku = await _sku(state, sh01)
    cancelled = await _place(api, "member:close", sh01, sku, "close-1")
    expiring = await _place(api, "member:close", sh01, sku, "close-2")
    await api.gql(CANCEL, {"id": cancelled["order"]["id"]}, as_="member:close")
    await jobs.run_due(state.sessionmaker, utcnow() + timedelta(minutes=16), providers=state.payment_providers)
    for placed in (cancelled, expiring):
        ref = _ref(placed["order"]["id"])
        assert ref in sandbox.closed
        with pytest.raises(DomainError) as refused:
            sandbox.notification(provider_ref=ref, amount=1500)
        assert refused.value.code is ErrorCode.ORDER_NOT_PAYABLE
    async with state.sessionmaker() as session:
        assert (await session.get(Order, pk(expiring["order"]["id"]))).status is OrderStatus.CANCELLED


async def test_a_provider_that_cannot_close_now_is_closed_by_a_job(api, state, chain):
    sh01 = chain.stores["SH01"]
    sandbox = state.payment_providers["sandbox"]
    placed = await _place(api, "member:retry-close", sh01, await _sku(state, sh01), "rc-1")
    sandbox.time_out_next = 1
    cancelled = await api.gql(CANCEL, {"id": placed["order"]["id"]}, as_="member:retry-close")
    assert cancelled["data"]["cancelMyOrder"]["order"]["status"] == "CANCELLED"
    assert _ref(placed["order"]["id"]) not in sandbox.closed
    await jobs.run_due(state.sessionmaker, utcnow() + timedelta(seconds=1), providers=state.payment_providers)
    assert _ref(placed["order"]["id"]) in sandbox.closed


async def test_a_lost_answer_is_paid_again_by_replay_or_pay_order_until_the_order_ends(api, state, chain):
    sh01 = chain.stores["SH01"]
    sku = await _sku(state, sh01)
    placed = await _place(api, "member:again", sh01, sku, "again-1")
    replay = await _place(api, "member:again", sh01, sku, "again-1")
    assert replay["order"]["id"] == placed["order"]["id"]
    assert replay["payment"]["params"]["prepayId"] == placed["payment"]["params"]["prepayId"]
    again = (await api.gql(PAY, {"id": placed["order"]["id"]}, as_="member:again"))["data"]["payOrder"]
    assert again["errors"] == [] and again["payment"]["params"]["prepayId"] == placed["payment"]["params"]["prepayId"]
    assert again["payment"]["params"]["amount"] == "1500"

    stranger = (await api.gql(PAY, {"id": placed["order"]["id"]}, as_="member:stranger"))["data"]["payOrder"]
    assert stranger == {"errors": [{"code": "NOT_FOUND", "field": "id"}], "order": None, "payment": None}
    staff = await api.gql(PAY, {"id": placed["order"]["id"]}, as_="sh01.clerk")
    assert staff["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    # Past its time (the expiry job not yet run) it cannot be paid again; nor once cancelled, nor by a replay.
    async with state.sessionmaker() as session, session.begin():
        await session.execute(
            update(Order)
            .where(Order.id == pk(placed["order"]["id"]))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    late = (await api.gql(PAY, {"id": placed["order"]["id"]}, as_="member:again"))["data"]["payOrder"]
    assert late["errors"] == [{"code": "ORDER_NOT_PAYABLE", "field": "id"}]
    other = await _place(api, "member:again", sh01, sku, "again-2")
    await api.gql(CANCEL, {"id": other["order"]["id"]}, as_="member:again")
    ended = (await api.gql(PAY, {"id": other["order"]["id"]}, as_="member:again"))["data"]["payOrder"]
    assert ended["errors"] == [{"code": "ORDER_NOT_PAYABLE", "field": "id"}]
    assert (await _place(api, "member:again", sh01, sku, "again-2"))["payment"] is None


async def test_paying_through_re_issued_parameters_pays_the_order_once(api, state, chain):
    sh01 = chain.stores["SH01"]
    sandbox = state.payment_providers["sandbox"]
    placed = await _place(api, "member:once", sh01, await _sku(state, sh01), "once-1")
    await api.gql(PAY, {"id": placed["order"]["id"]}, as_="member:once")
    paid = await _deliver(api, *sandbox.notification(provider_ref=_ref(placed["order"]["id"]), amount=1500, txn="X"))
    assert paid.json() == {"code": "SUCCESS"}
    shown = (await api.gql(PAYMENTS, {"id": placed["order"]["id"]}, as_="member:once"))["data"]["node"]
    assert shown["status"] == "PAID" and [p["state"] for p in shown["payments"]] == ["PAID"]
    after = (await api.gql(PAY, {"id": placed["order"]["id"]}, as_="member:once"))["data"]["payOrder"]
    assert after["errors"] == [{"code": "ORDER_NOT_PAYABLE", "field": "id"}]


TOP_UP = """mutation($m: ID!, $a: Int, $p: ID, $k: String!, $t: [TenderInput!]!) { topUpStoredValue(input: {memberId: $m,
  amount: $a, planId: $p, idempotencyKey: $k, tenders: $t}) { errors { code field } member { storedValue { total } } } }"""


async def test_counter_top_up_tenders_must_add_up_and_land_in_the_takings(api, state, chain):
    sh01 = chain.stores["SH01"]
    registered = await api.gql(
        'mutation($s: ID!) { registerMember(input: {phone: "13700137000", storeId: $s}) { member { id } } }',
        {"s": gid("Store", sh01)},
        as_="sh01.clerk",
    )
    member = registered["data"]["registerMember"]["member"]["id"]
    base = {"m": member, "k": "tu-1"}
    short = await api.gql(TOP_UP, {**base, "a": 10_000, "t": [{"method": "CASH", "amount": 9_000}]}, as_="sh01.clerk")
    assert short["data"]["topUpStoredValue"]["errors"] == [{"code": "INVALID_INPUT", "field": "tenders"}]
    sv = await api.gql(
        TOP_UP,
        {**base, "k": "tu-2", "a": 10_000, "t": [{"method": "STORED_VALUE", "amount": 10_000}]},
        as_="sh01.clerk",
    )
    assert sv["data"]["topUpStoredValue"]["errors"] == [{"code": "INVALID_INPUT", "field": "tenders"}]
    none = await api.gql(TOP_UP, {**base, "k": "tu-3", "a": 10_000, "t": []}, as_="sh01.clerk")
    assert none["data"]["topUpStoredValue"]["errors"] == [{"code": "INVALID_INPUT", "field": "tenders"}]

    tenders = [{"method": "CASH", "amount": 6_000}, {"method": "CARD", "amount": 4_000}]
    done = await api.gql(TOP_UP, {**base, "k": "tu-4", "a": 10_000, "t": tenders}, as_="sh01.clerk")
    retry = await api.gql(TOP_UP, {**base, "k": "tu-4", "a": 10_000, "t": tenders}, as_="sh01.clerk")
    assert done["data"]["topUpStoredValue"]["member"]["storedValue"]["total"] == 10_000
    assert retry["data"]["topUpStoredValue"] == done["data"]["topUpStoredValue"]
    other = await api.gql(
        TOP_UP, {**base, "k": "tu-4", "a": 10_000, "t": [{"method": "CASH", "amount": 10_000}]}, as_="sh01.clerk"
    )
    assert [e["code"] for e in other["data"]["topUpStoredValue"]["errors"]] == ["IDEMPOTENCY_KEY_REUSED"]
    plan = await api.gql(
        TOP_UP,
        {**base, "k": "tu-5", "p": gid("TopUpPlan", 1), "t": [{"method": "ALIPAY", "amount": 20_000}]},
        as_="sh01.clerk",
    )
    assert plan["data"]["topUpStoredValue"]["member"]["storedValue"]["total"] == 10_000 + 21_000

    figures = (await api.gql(SETTLEMENT, {"s": gid("Store", sh01), "d": _today()}, as_="hq.admin"))["data"]
    figures = figures["settlement"]["figures"]
    assert figures["takings"]["CASH"] == 6_000 and figures["takings"]["CARD"] == 4_000
    assert figures["takings"]["ALIPAY"] == 20_000
    assert figures["topUpTakings"] == {"CASH": 6_000, "CARD": 4_000, "WECHAT_PAY": 0, "ALIPAY": 20_000}
    assert figures["storedValueSold"] == {"principal": 30_000, "bonus": 1_000} and figures["net"] == 0


async def test_order_payments_take_the_same_statements_for_2_and_12_orders(api, state, chain):
    sh01 = chain.stores["SH01"]
    sku = await _sku(state, sh01)
    doc = "{ myOrders(first: 50) { edges { node { id payments { id method amount state } } } } }"
    counts = []
    for n, who in ((2, "member:few"), (12, "member:many")):
        for i in range(n):
            await _place(api, who, sh01, sku, f"{who}-{i}")
        token = await api.token(who)
        with count_statements(state.engine) as counter:
            body = (await api.post(doc, token=token)).json()
        assert len(body["data"]["myOrders"]["edges"]) == n
        assert all(len(e["node"]["payments"]) == 1 for e in body["data"]["myOrders"]["edges"])
        counts.append(counter.count)
    assert counts[0] == counts[1]


@pytest.mark.postgres_too
async def test_over_a_real_server_a_late_payment_is_refunded_by_the_running_apps_job(state, chain):
    fast = build_state(replace(state.settings, jobs_interval_s=0.2))
    sandbox = fast.payment_providers["sandbox"]
    assert isinstance(sandbox, SandboxProvider)
    async with (
        running_server(create_app(state=fast), lifespan="on") as url,
        httpx.AsyncClient(base_url=f"http://{url}") as http,
    ):
        api = Api(http)
        sh01 = chain.stores["SH01"]
        placed = await _place(api, "member:e2e-late", sh01, await _sku(state, sh01), "e2e-1")
        headers, body = sandbox.notification(provider_ref=_ref(placed["order"]["id"]), amount=1500, txn="E2E")
        await api.gql(CANCEL, {"id": placed["order"]["id"]}, as_="member:e2e-late")
        assert (await http.post("/payments/notify/sandbox", content=body, headers=headers)).json() == {
            "code": "SUCCESS"
        }
        states: list[str] = []
        for _ in range(100):
            shown = await api.gql(PAYMENTS, {"id": placed["order"]["id"]}, as_="member:e2e-late")
            states = [p["state"] for p in shown["data"]["node"]["payments"]]
            if states == ["REFUNDED_LATE"]:
                break
            await asyncio.sleep(0.1)
        assert states == ["REFUNDED_LATE"]
        assert sum(sandbox.refunds[_ref(placed["order"]["id"])].values()) == 1500


async def test_a_late_refund_whose_answer_is_lost_is_retried_and_moves_the_money_once(api, state, chain):
    sh01 = chain.stores["SH01"]
    sandbox = state.payment_providers["sandbox"]
    assert isinstance(sandbox, SandboxProvider)
    placed = await _place(api, "member:lost", sh01, await _sku(state, sh01), "lost-1")
    ref = _ref(placed["order"]["id"])
    headers, body = sandbox.notification(provider_ref=ref, amount=1500, txn="T-LOST")
    await api.gql(CANCEL, {"id": placed["order"]["id"]}, as_="member:lost")
    assert (await _deliver(api, headers, body)).json() == {"code": "SUCCESS"}
    sandbox.time_out_next, sandbox.time_out_after_done = 1, True  # the provider refunds, the answer is lost
    now = utcnow() + timedelta(seconds=1)
    await jobs.run_due(state.sessionmaker, now, providers=state.payment_providers)
    [late] = [p for p in await _payments(state, pk(placed["order"]["id"])) if p.provider]
    assert late.status is PaymentStatus.LATE  # not yet marked: the job rolled back and waits to retry
    await jobs.run_due(state.sessionmaker, now + timedelta(hours=1), providers=state.payment_providers)
    [late] = [p for p in await _payments(state, pk(placed["order"]["id"])) if p.provider]
    assert late.status is PaymentStatus.REFUNDED_LATE
    assert sandbox.refunds[ref] == {f"L{late.id}": 1500}
    async with state.sessionmaker() as session:
        job = await session.scalar(select(Job).where(Job.kind == "payments.refund_late"))
    assert job.status.value == "DONE" and job.attempts == 2

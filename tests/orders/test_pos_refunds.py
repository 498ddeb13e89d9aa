"""The counter and refunds: a sale completes at once and once; a refund undoes exactly what it did."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from models import BalanceEntry, Member, Order, OrderStatus, PointsEntry, StockLevel, StockMovement
from services.members import stored_value
from services.members.accounts import relate
from services.platform.db import write_transaction
from tests.conftest import gid
from tests.factories import list_in_store, make_library

CHECKOUT = """mutation($key: String!, $k: ID!, $q: Int!, $t: [TenderInput!]!, $m: ID, $p: Int) {
  posCheckout(input: {clientOrderId: $key, lines: [{skuId: $k, quantity: $q}], tenders: $t, memberId: $m, usePoints: $p}) {
    errors { code field } order { id status channel payable storedValueUsed pointsValue } } }"""
REFUND = """mutation($idempotencyKey: String!, $id: ID!, $lines: [CartLineInput!], $restock: Boolean) {
  refundOrder(input: {idempotencyKey: $idempotencyKey, id: $id, lines: $lines, restock: $restock}) {
    errors { code field } refund { amount byMethod restocked pointsTakenBack } order { status } } }"""


async def _given(state, chain, *, on_hand=10, price=2000, balance=0, points=0):
    library = await make_library(state, products=1, skus_per_product=1, price=price)
    store = chain.stores["SH01"]
    await list_in_store(state, store, library.sku_ids, on_hand=on_hand)
    async with write_transaction(state.sessionmaker) as session:
        member = Member(name="老顾客", level_id=1, points_balance=0)
        session.add(member)
        await session.flush()
        await relate(session, member.id, store)
        if balance:
            await stored_value.top_up(
                session, member.id, principal=balance, bonus=0, store_id=store, ref_type="seed", ref_id=None
            )
        if points:
            from services.members import points as points_service

            await points_service.adjust(session, member.id, points, note="seed", staff_id=None)
    return library.sku_ids[0], member.id, store


async def _snapshot(state, sku, member_id, store):
    async with state.sessionmaker() as session:
        level = await session.scalar(select(StockLevel).where(StockLevel.sku_id == sku, StockLevel.store_id == store))
        member = await session.get(Member, member_id)
    return {
        "on_hand": level.on_hand,
        "points": member.points_balance,
        "principal": member.balance_principal,
        "spend": member.total_spend,
    }


@pytest.mark.postgres_too
async def test_a_counter_sale_with_mixed_tenders_completes_once_even_when_retried(api, state, chain):
    sku, member_id, store = await _given(state, chain, balance=1000, points=500)
    variables = {
        "key": "tablet-3-0042",
        "k": gid("Sku", sku),
        "q": 2,
        "m": gid("Member", member_id),
        "p": 300,
        "t": [{"method": "CASH", "amount": 2700}, {"method": "STORED_VALUE", "amount": 1000}],
    }
    results = await asyncio.gather(*(api.gql(CHECKOUT, variables, as_="sh01.clerk") for _ in range(3)))
    orders = {r["data"]["posCheckout"]["order"]["id"] for r in results}
    assert len(orders) == 1
    order = results[0]["data"]["posCheckout"]["order"]
    assert order == {
        "id": order["id"],
        "status": "COMPLETED",
        "channel": "POS",
        "payable": 2700,
        "storedValueUsed": 1000,
        "pointsValue": 300,
    }
    after = await _snapshot(state, sku, member_id, store)
    # 500 - 300 redeemed + 37 earned on the 37 yuan paid in money.
    assert after == {"on_hand": 8, "points": 237, "principal": 0, "spend": 4000}
    wrong = await api.gql(
        CHECKOUT, {**variables, "key": "tablet-3-0043", "t": [{"method": "CASH", "amount": 100}]}, as_="sh01.clerk"
    )
    assert wrong["data"]["posCheckout"]["errors"][0]["code"] == "INVALID_INPUT"


async def test_a_full_refund_reverses_exactly_what_the_sale_did(api, state, chain):
    sku, member_id, store = await _given(state, chain, balance=1000, points=500)
    before = await _snapshot(state, sku, member_id, store)
    sale = await api.gql(
        CHECKOUT,
        {
            "key": "r-1",
            "k": gid("Sku", sku),
            "q": 2,
            "m": gid("Member", member_id),
            "p": 300,
            "t": [{"method": "CARD", "amount": 2700}, {"method": "STORED_VALUE", "amount": 1000}],
        },
        as_="sh01.clerk",
    )
    order_id = sale["data"]["posCheckout"]["order"]["id"]
    refunded = await api.gql(REFUND, {"id": order_id}, as_="sh01.manager")
    assert refunded["data"]["refundOrder"]["refund"] == {
        "amount": 4000,
        "byMethod": {"CARD": 2700, "STORED_VALUE": 1000, "POINTS": 300},
        "restocked": True,
        "pointsTakenBack": 37,
    }
    assert refunded["data"]["refundOrder"]["order"]["status"] == "REFUNDED"
    assert await _snapshot(state, sku, member_id, store) == before
    again = await api.gql(REFUND, {"id": order_id}, as_="sh01.manager")
    assert again["data"]["refundOrder"]["errors"][0]["code"] == "INVALID_TRANSITION"
    async with state.sessionmaker() as session:
        points_sum = await session.scalar(
            select(func.sum(PointsEntry.points)).where(PointsEntry.member_id == member_id)
        )
        sv_sum = await session.scalar(
            select(func.sum(BalanceEntry.principal)).where(BalanceEntry.member_id == member_id)
        )
        stock_sum = await session.scalar(select(func.sum(StockMovement.quantity)).where(StockMovement.sku_id == sku))
    assert (points_sum, sv_sum, stock_sum) == (before["points"], before["principal"], before["on_hand"])


async def test_a_partial_refund_by_line_without_goods_coming_back(api, state, chain):
    sku, member_id, store = await _given(state, chain)
    sale = await api.gql(
        CHECKOUT,
        {"key": "p-1", "k": gid("Sku", sku), "q": 3, "t": [{"method": "CASH", "amount": 6000}]},
        as_="sh01.clerk",
    )
    order_id = sale["data"]["posCheckout"]["order"]["id"]
    part = await api.gql(
        REFUND,
        {"id": order_id, "lines": [{"skuId": gid("Sku", sku), "quantity": 1}], "restock": False},
        as_="sh01.manager",
    )
    assert part["data"]["refundOrder"]["refund"]["byMethod"] == {"CASH": 2000}
    assert part["data"]["refundOrder"]["order"]["status"] == "PARTIALLY_REFUNDED"
    too_many = await api.gql(
        REFUND, {"id": order_id, "lines": [{"skuId": gid("Sku", sku), "quantity": 3}]}, as_="sh01.manager"
    )
    assert too_many["data"]["refundOrder"]["errors"] == [{"code": "INVALID_INPUT", "field": "lines"}]
    rest = await api.gql(REFUND, {"id": order_id}, as_="hq.admin")
    assert rest["data"]["refundOrder"]["refund"]["byMethod"] == {"CASH": 4000}
    assert (await _snapshot(state, sku, member_id, store))["on_hand"] == 7 + 2  # only the last two came back


async def test_store_b_cannot_refund_store_a_orders_and_clerks_cannot_refund(api, state, chain):
    sku, _, _ = await _given(state, chain)
    sale = await api.gql(
        CHECKOUT,
        {"key": "s-1", "k": gid("Sku", sku), "q": 1, "t": [{"method": "CASH", "amount": 2000}]},
        as_="sh01.clerk",
    )
    order_id = sale["data"]["posCheckout"]["order"]["id"]
    for who in ("sh02.manager", "sh01.clerk", "hq.analyst"):
        body = await api.gql(REFUND, {"id": order_id}, as_=who)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", who
    async with state.sessionmaker() as session:
        assert (await session.scalar(select(Order.status))) is OrderStatus.COMPLETED

"""Settlement: every store's day equals its payments minus its refunds; a closed day never changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from models import Member, Payment, PaymentMethod, PaymentStatus, Refund
from services.members import stored_value
from services.members.accounts import relate
from services.orders import pos
from services.platform.db import write_transaction
from services.pricing.engine import CartLine
from tests.conftest import gid
from tests.factories import HQ, list_in_store, make_library

YESTERDAY_NOON = datetime(2026, 11, 21, 4, 0, tzinfo=UTC)  # noon in Shanghai
SETTLEMENT = "query($s: ID!, $d: Date!) { settlement(storeId: $s, date: $d) { closed figures } }"


async def _brute_force(state, store_id: int, start: datetime, end: datetime) -> int:
    async with state.sessionmaker() as session:
        paid = await session.scalar(
            select(func.coalesce(func.sum(Payment.amount), 0)).where(
                Payment.store_id == store_id,
                Payment.status == PaymentStatus.SUCCEEDED,
                Payment.method != PaymentMethod.POINTS,
                Payment.paid_at >= start,
                Payment.paid_at < end,
            )
        )
        refunds = (
            await session.scalars(
                select(Refund).where(Refund.store_id == store_id, Refund.created_at >= start, Refund.created_at < end)
            )
        ).all()
    refunded: int = sum(v for r in refunds for k, v in r.by_method.items() if k != "POINTS")
    return int(paid) - refunded


@pytest.mark.postgres_too
async def test_settlement_matches_payments_minus_refunds_and_a_closed_day_stays_closed(api, state, chain):
    library = await make_library(state, products=1, skus_per_product=1, price=1000)
    sku = library.sku_ids[0]
    sh01, hz01 = chain.stores["SH01"], chain.stores["HZ01"]
    for store in (sh01, hz01):
        await list_in_store(state, store, [sku], on_hand=50)
    async with write_transaction(state.sessionmaker) as session:
        member = Member(name="跨店会员", level_id=1)
        session.add(member)
        await session.flush()
        await relate(session, member.id, sh01)
        await stored_value.top_up(
            session, member.id, principal=5000, bonus=500, store_id=hz01, ref_type="seed", ref_id=None
        )
        sales = [
            (sh01, "a", 2, [pos.Tender(PaymentMethod.CASH, 2000)], None),
            (
                sh01,
                "b",
                3,
                [pos.Tender(PaymentMethod.CARD, 1000), pos.Tender(PaymentMethod.STORED_VALUE, 2000)],
                member.id,
            ),
            (hz01, "c", 1, [pos.Tender(PaymentMethod.WECHAT_PAY, 1000)], None),
        ]
        orders = {}
        for store, key, qty, tenders, member_id in sales:
            order = await pos.checkout(
                session, HQ, pos.Checkout(store, key, [CartLine(sku, qty)], tenders, member_id), now=YESTERDAY_NOON
            )
            orders[key] = order.id
    day = date(2026, 11, 21)
    start, end = YESTERDAY_NOON - timedelta(hours=12), YESTERDAY_NOON + timedelta(hours=12)
    body = await api.gql(SETTLEMENT, {"s": gid("Store", sh01), "d": day.isoformat()}, as_="hq.analyst")
    figures = body["data"]["settlement"]["figures"]
    assert (
        figures["takings"]["CASH"] == 2000
        and figures["takings"]["CARD"] == 1000
        and figures["takings"]["STORED_VALUE"] == 2000
    )
    assert figures["net"] == 5000 == await _brute_force(state, sh01, start, end)
    assert figures["storedValueByIssuer"] == {str(hz01): {"principal": 2000, "bonus": 0}}
    hz = (await api.gql(SETTLEMENT, {"s": gid("Store", hz01), "d": day.isoformat()}, as_="hq.analyst"))["data"][
        "settlement"
    ]["figures"]
    assert hz["net"] == 1000 == await _brute_force(state, hz01, start, end)

    closed = await api.gql(
        "mutation($s: ID!, $d: Date!) { closeSettlement(input: {storeId: $s, date: $d}) { errors { code } settlement { closed figures } } }",
        {"s": gid("Store", sh01), "d": day.isoformat()},
        as_="hq.admin",
    )
    assert closed["data"]["closeSettlement"]["settlement"]["figures"] == figures
    refund = await api.gql(
        "mutation($idempotencyKey: String!, $id: ID!) { refundOrder(input: {idempotencyKey: $idempotencyKey, id: $id}) { errors { code } refund { amount } } }",
        {"id": gid("Order", orders["a"])},
        as_="sh01.manager",
    )
    assert refund["data"]["refundOrder"]["refund"]["amount"] == 2000
    after = (await api.gql(SETTLEMENT, {"s": gid("Store", sh01), "d": day.isoformat()}, as_="sh01.manager"))["data"][
        "settlement"
    ]
    assert after == {"closed": True, "figures": figures}
    # The refund falls into the day it happened (the real today), not into the closed day.
    now = datetime.now(UTC)
    todays = await api.gql(
        SETTLEMENT, {"s": gid("Store", sh01), "d": (now + timedelta(hours=8)).date().isoformat()}, as_="hq.analyst"
    )
    assert todays["data"]["settlement"]["figures"]["refunds"]["CASH"] == 2000
    other = await api.gql(SETTLEMENT, {"s": gid("Store", sh01), "d": day.isoformat()}, as_="sh02.manager")
    assert other["errors"][0]["extensions"]["code"] == "FORBIDDEN"

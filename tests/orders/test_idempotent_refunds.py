"""Money moves exactly once, and a refund explains itself (issue #14, items 1, 5 and 6).

Every mutation that moves value takes a required idempotency key; a refund replayed, even ten times at once,
moves money once; the same key with another request moves nothing. A refund goes back to each tender in
proportion to what it paid (largest remainder), unless the cashier chooses; the preview shows exactly that.
"""

from __future__ import annotations

import asyncio

import pytest
from graphql import GraphQLNonNull, GraphQLScalarType
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from models import Member, PaymentMethod, Refund, StockLevel, StoreListing
from schema import schema
from services.members import stored_value
from services.members.accounts import relate
from services.orders import refunds
from services.platform.db import write_transaction
from tests.conftest import count_statements, gid, pk
from tests.factories import list_in_store, make_library

# Mutations that move money, stock, points, stored value, coupons or cards: each needs a required key.
VALUE_MOVING = {
    "receiveStock",
    "exchangeAtCounter",
    "adjustStock",
    "submitStocktake",
    "requestTransfer",
    "shipTransfer",
    "receiveTransfer",
    "requestReplenishment",
    "receivePurchase",
    "topUpStoredValue",
    "adjustPoints",
    "placeOrder",
    "topUpOnline",
    "posCheckout",
    "refundOrder",
    "claimCoupon",
    "issueCoupons",
    "openGroupBuy",
    "joinGroupBuy",
    "exchangePoints",
    "verifyPickup",
    "completeFollowUp",
    "resolveTicket",
    "sellCard",
    "buyCard",
    "refundCard",
    "redeemGiftCard",
    "sendMessage",  # no value, but a retried send must not message members twice
}
# The rest, each with why a retry cannot move value twice (or why nothing of value moves).
NOT_VALUE_MOVING = {
    **dict.fromkeys(
        ["login", "refreshToken", "logout", "memberSignIn", "changeMyPassword", "resetStaffPassword"],
        "sessions and credentials, no value",
    ),
    **dict.fromkeys(
        [
            "createStore",
            "updateStore",
            "setStoreStatus",
            "createStaff",
            "updateStaff",
            "setStaffActive",
            "createRole",
            "updateRole",
            "createCategory",
            "updateCategory",
            "createProduct",
            "updateProduct",
            "addSku",
            "updateSku",
            "pushPrice",
            "importCatalogCsv",
            "updateChainSettings",
            "adoptSkus",
            "setListingPrice",
            "setListingsOnShelf",
            "setLowStockThreshold",
            "setStockBounds",
            "createMemberLevel",
            "updateMemberLevel",
            "setLevelPrice",
            "createTopUpPlan",
            "createMemberTag",
            "tagMembers",
            "createCampaign",
            "endCampaign",
            "createCouponTemplate",
            "endCouponTemplate",
            "createPointsMallItem",
            "setMemberLevel",
            "createCardProduct",
        ],
        "sets terms, prices or master data (a replay sets the same again); no balance moves",
    ),
    **dict.fromkeys(
        ["identifyMember", "registerMember", "updateMyProfile", "revealMemberPhone"],
        "member identity and profile; no balance moves (registering twice finds the same phone)",
    ),
    **dict.fromkeys(
        [
            "decideTransfer",
            "cancelTransfer",
            "cancelMyOrder",
            "markOrderPreparing",
            "markOrderReady",
            "dispatchOrder",
            "confirmDelivery",
        ],
        "a conditional status change: a replay finds the new status and is INVALID_TRANSITION, moving nothing",
    ),
    "payOrder": "re-issues the same pay parameters (same out-trade-no and amount) for an unpaid order; the "
    "provider takes the money at most once per order, so a replay moves nothing",
    "acceptReferral": "once per member by rule (REFERRAL_NOT_ALLOWED on a second try)",
    "deleteMyAccount": "once: the account and its sessions end, so a replay is UNAUTHENTICATED",
    "closeSettlement": "one settlement per store and day (unique), frozen figures; moves no value",
    "createFollowUps": "makes call tasks, once per key (it takes one) and once per member and batch (unique); no value",
    "createFollowUpRule": "sets a rule the daily job applies (one task per rule and event, unique); no value moves",
    "revealFollowUpPhone": "shows a number (audited); nothing changes",
    "submitRating": "once per order (DUPLICATE on a second try); no value moves",
    **dict.fromkeys(
        ["fileComplaint", "addToMyTicket", "replyToTicket", "startTicket", "escalateTicket"],
        "a ticket and its entries: words and a status change (INVALID_TRANSITION on a replay); no value moves",
    ),
    "shareGiftCard": "shows the gift card's share code (the same one again until it is claimed); moves nothing",
    **dict.fromkeys(
        ["defineMemberAttribute", "updateMemberAttribute", "createMessageTemplate", "updateMessageTemplate"],
        "HQ's definitions: a code is unique (DUPLICATE on a second create), an edit sets the same values again",
    ),
    **dict.fromkeys(
        ["setMemberAttributes", "setMyAttributes", "setMessageConsent", "clearMyBrowsingHistory"],
        "sets a member's values or consents to what was sent (a replay sets the same); no value moves",
    ),
    "recordProductViews": "one view per member, product and minute (unique, insert-or-ignore); no value moves",
    "revealMemberAttribute": "shows a value (audited); nothing changes",
    **dict.fromkeys(
        ["savePageTemplate", "saveStorePage", "submitStorePage"],
        "saves a draft to what was sent, or submits it (INVALID_TRANSITION on a replay); no value moves",
    ),
    **dict.fromkeys(
        ["publishPageTemplate", "rollBackPageTemplate"],
        "publishes the draft or a copy of version N: a replay publishes the same content again; no value moves",
    ),
    "decideStorePage": "decides a submitted page once (a replay finds it no longer submitted); no value moves",
}


def _key_field(type_: object) -> str | None:
    fields = getattr(type_, "fields", {})
    for name in ("idempotencyKey", "clientOrderId"):
        field = fields.get(name)
        if field is not None and isinstance(field.type, GraphQLNonNull):
            inner = field.type.of_type
            if isinstance(inner, GraphQLScalarType) and inner.name == "String":
                return name
    return None


def test_every_mutation_that_moves_value_requires_an_idempotency_key():
    mutation_type = schema._schema.mutation_type
    assert mutation_type is not None
    mutations = mutation_type.fields
    unclassified = set(mutations) - VALUE_MOVING - set(NOT_VALUE_MOVING)
    assert not unclassified, f"classify these mutations as value-moving or not (with why): {sorted(unclassified)}"
    assert not VALUE_MOVING & set(NOT_VALUE_MOVING)
    assert not (VALUE_MOVING | set(NOT_VALUE_MOVING)) - set(mutations), "the lists name mutations that are gone"
    missing = []
    for name in sorted(VALUE_MOVING):
        arg = mutations[name].args.get("input")
        input_type = arg.type.of_type if arg is not None and isinstance(arg.type, GraphQLNonNull) else None
        if input_type is None or _key_field(input_type) is None:
            missing.append(name)
    assert missing == [], f"these move value without a required idempotencyKey: {missing}"


# ---------------------------------------------------------------------------------------------------------------

CHECKOUT = """mutation($key: String!, $lines: [CartLineInput!]!, $t: [TenderInput!]!, $m: ID) {
  posCheckout(input: {clientOrderId: $key, lines: $lines, tenders: $t, memberId: $m}) {
    errors { code field } order { id payable storedValueUsed } } }"""
REFUND = """mutation($idempotencyKey: String!, $id: ID!, $lines: [CartLineInput!], $t: [RefundTenderInput!]) {
  refundOrder(input: {idempotencyKey: $idempotencyKey, id: $id, lines: $lines, tenders: $t}) {
    errors { code field }
    refund { id amount tenders { method amount } storedValue lines { quantity amount sku { id } } }
    order { status lines { quantity refundedQuantity refundableQuantity } } } }"""
PREVIEW = """query($id: ID!, $lines: [CartLineInput!], $t: [RefundTenderInput!]) {
  refundPreview(input: {id: $id, lines: $lines, tenders: $t}) {
    amount tenders { method amount } storedValue completesOrder lines { quantity amount } } }"""


async def _shop(state, chain, *, prices=(1757, 4043), sv=3000):
    """Two SKUs at these prices in SH01, and a member holding `sv` fen of stored value there."""
    library = await make_library(state, products=len(prices), skus_per_product=1)
    store = chain.stores["SH01"]
    await list_in_store(state, store, library.sku_ids, on_hand=10)
    async with write_transaction(state.sessionmaker) as session:
        for sku, price in zip(library.sku_ids, prices, strict=True):
            await session.execute(
                update(StoreListing)
                .where(StoreListing.store_id == store, StoreListing.sku_id == sku)
                .values(price=price)
            )
        member = Member(name="老顾客", level_id=1, points_balance=0)
        session.add(member)
        await session.flush()
        await relate(session, member.id, store)
        await stored_value.top_up(
            session, member.id, principal=sv, bonus=0, store_id=store, ref_type="seed", ref_id=None
        )
    return library.sku_ids, member.id, store


async def _sell(api, skus, member_id, *, cash, sv, key):
    sale = await api.gql(
        CHECKOUT,
        {
            "key": key,
            "m": gid("Member", member_id),
            "lines": [{"skuId": gid("Sku", s), "quantity": 1} for s in skus],
            "t": [{"method": "CASH", "amount": cash}, {"method": "STORED_VALUE", "amount": sv}],
        },
        as_="sh01.clerk",
    )
    assert sale["data"]["posCheckout"]["errors"] == [], sale
    return sale["data"]["posCheckout"]["order"]["id"]


async def _mixed_sale(api, state, chain):
    """A counter sale of two SKUs (1,757 + 4,043 = 5,800 fen) paid 2,800 cash + 3,000 stored value."""
    skus, member_id, store = await _shop(state, chain)
    order_id = await _sell(api, skus, member_id, cash=2800, sv=3000, key="sale-1")
    return order_id, skus, member_id, store


async def _money(state, order_id, member_id, sku, store):
    async with state.sessionmaker() as session:
        rows = (await session.scalars(select(Refund).where(Refund.order_id == pk(order_id)))).all()
        member = await session.get(Member, member_id)
        on_hand = await session.scalar(
            select(StockLevel.on_hand).where(StockLevel.sku_id == sku, StockLevel.store_id == store)
        )
    return {
        "refunds": len(rows),
        "refunded": sum(r.amount for r in rows),
        "principal": member.balance_principal,
        "on_hand": on_hand,
    }


@pytest.mark.postgres_too
async def test_the_stated_rule_1757_of_2800_cash_and_3000_stored_value(api, state, chain):
    order_id, skus, member_id, store = await _mixed_sale(api, state, chain)
    one = [{"skuId": gid("Sku", skus[0]), "quantity": 1}]
    preview = await api.gql(PREVIEW, {"id": order_id, "lines": one}, as_="sh01.manager")
    # 1757 x 2800/5800 = 848.2, 1757 x 3000/5800 = 908.8: the fen left over goes to the larger remainder.
    assert preview["data"]["refundPreview"] == {
        "amount": 1757,
        "tenders": [{"method": "CASH", "amount": 848}, {"method": "STORED_VALUE", "amount": 909}],
        "storedValue": 909,
        "completesOrder": False,
        "lines": [{"quantity": 1, "amount": 1757}],
    }
    assert (await _money(state, order_id, member_id, skus[0], store))["refunds"] == 0  # a preview moves nothing
    made = await api.gql(REFUND, {"id": order_id, "lines": one, "idempotencyKey": "r-1757"}, as_="sh01.manager")
    refund = made["data"]["refundOrder"]["refund"]
    assert refund["tenders"] == preview["data"]["refundPreview"]["tenders"]
    assert refund["amount"] == 1757 and refund["storedValue"] == 909
    assert made["data"]["refundOrder"]["order"]["lines"] == [
        {"quantity": 1, "refundedQuantity": 1, "refundableQuantity": 0},
        {"quantity": 1, "refundedQuantity": 0, "refundableQuantity": 1},
    ]
    assert (await _money(state, order_id, member_id, skus[0], store))["principal"] == 909
    # The rest: what each tender has left (1952 cash, 2091 stored value), exactly.
    rest = await api.gql(REFUND, {"id": order_id}, as_="sh01.manager")
    assert rest["data"]["refundOrder"]["refund"]["tenders"] == [
        {"method": "CASH", "amount": 1952},
        {"method": "STORED_VALUE", "amount": 2091},
    ]
    assert rest["data"]["refundOrder"]["order"]["status"] == "REFUNDED"
    assert (await _money(state, order_id, member_id, skus[0], store))["principal"] == 3000


async def test_the_cashier_may_choose_the_tenders_within_what_each_paid(api, state, chain):
    order_id, skus, member_id, store = await _mixed_sale(api, state, chain)
    one = [{"skuId": gid("Sku", skus[0]), "quantity": 1}]
    too_much = await api.gql(
        REFUND, {"id": order_id, "lines": one, "t": [{"method": "CASH", "amount": 2801}]}, as_="sh01.manager"
    )
    assert too_much["data"]["refundOrder"]["errors"] == [{"code": "INVALID_INPUT", "field": "tenders"}]
    short = await api.gql(
        REFUND, {"id": order_id, "lines": one, "t": [{"method": "CASH", "amount": 1000}]}, as_="sh01.manager"
    )
    assert short["data"]["refundOrder"]["errors"] == [{"code": "INVALID_INPUT", "field": "tenders"}]
    assert (await _money(state, order_id, member_id, skus[0], store))["refunds"] == 0
    cash = await api.gql(
        REFUND, {"id": order_id, "lines": one, "t": [{"method": "CASH", "amount": 1757}]}, as_="sh01.manager"
    )
    assert cash["data"]["refundOrder"]["refund"]["tenders"] == [{"method": "CASH", "amount": 1757}]


@pytest.mark.postgres_too
async def test_a_refund_replayed_ten_times_at_once_moves_money_once(api, state, chain):
    order_id, skus, member_id, store = await _mixed_sale(api, state, chain)
    before = await _money(state, order_id, member_id, skus[0], store)
    variables = {"id": order_id, "lines": [{"skuId": gid("Sku", skus[0]), "quantity": 1}], "idempotencyKey": "tab-9"}
    answers = await asyncio.gather(*(api.gql(REFUND, variables, as_="sh01.manager") for _ in range(10)))
    assert [a["data"]["refundOrder"]["errors"] for a in answers] == [[]] * 10, answers
    assert len({a["data"]["refundOrder"]["refund"]["id"] for a in answers}) == 1
    after = await _money(state, order_id, member_id, skus[0], store)
    assert after == {
        "refunds": 1,
        "refunded": 1757,
        "principal": before["principal"] + 909,
        "on_hand": before["on_hand"] + 1,
    }
    # The same key with another request: refused, nothing moves.
    other = {**variables, "lines": [{"skuId": gid("Sku", skus[1]), "quantity": 1}]}
    reused = await api.gql(REFUND, other, as_="sh01.manager")
    assert reused["data"]["refundOrder"]["errors"] == [{"code": "IDEMPOTENCY_KEY_REUSED", "field": "idempotencyKey"}]
    assert await _money(state, order_id, member_id, skus[0], store) == after


async def test_refunds_are_nodes_on_the_order_and_loaded_in_constant_statements(api, state, chain):
    order_ids = []
    skus, member_id, _ = await _shop(state, chain, prices=(1000, 2000), sv=4000)
    for i in range(4):
        order_id = await _sell(api, skus, member_id, cash=2000 + 100 * i, sv=1000 - 100 * i, key=f"sale-{i}")
        made = await api.gql(
            REFUND, {"id": order_id, "lines": [{"skuId": gid("Sku", skus[0]), "quantity": 1}]}, as_="sh01.manager"
        )
        order_ids.append((order_id, made["data"]["refundOrder"]["refund"]["id"]))
    node = await api.gql(
        "query($id: ID!) { node(id: $id) { ... on Refund { id amount order { id } } } }",
        {"id": order_ids[0][1]},
        as_="sh01.manager",
    )
    assert node["data"]["node"] == {"id": order_ids[0][1], "amount": 1000, "order": {"id": order_ids[0][0]}}
    hidden = await api.gql("query($id: ID!) { node(id: $id) { id } }", {"id": order_ids[0][1]}, as_="sh02.manager")
    assert hidden["data"]["node"] is None  # another store's refund is like one that does not exist
    query = """query($s: ID!, $n: Int!) { orders(storeId: $s, first: $n) { edges { node { id
      lines { refundedQuantity refundableQuantity } refunds { id amount tenders { method amount } staff { id } } } } } }"""
    counts = {}
    token = await api.token("sh01.manager")
    for n in (1, 4):
        with count_statements(state.engine) as counter:
            body = (await api.post(query, {"s": gid("Store", chain.stores["SH01"]), "n": n}, token=token)).json()
        assert "errors" not in body, body
        edges = body["data"]["orders"]["edges"]
        assert len(edges) == n and all(len(e["node"]["refunds"]) == 1 for e in edges)
        counts[n] = counter.count
    assert counts[1] == counts[4], counts


# The rule as a property: shares add up, no tender ever gets back more than it paid over all refunds. ------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    paid=st.dictionaries(st.sampled_from(refunds.TENDERS), st.integers(1, 500_000), min_size=1, max_size=6),
    cuts=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6),
    point_value=st.sampled_from([1, 10]),
)
def test_every_split_adds_up_and_no_tender_gets_back_more_than_it_paid(paid, cuts, point_value):
    if PaymentMethod.POINTS in paid:
        paid[PaymentMethod.POINTS] *= point_value  # points pay in whole points
    left = dict(paid)
    for cut in cuts:
        amount = int(sum(left.values()) * cut)
        shares = refunds.split(amount, left, point_value)
        assert sum(shares.values()) == amount
        assert all(0 < v <= left[m] for m, v in shares.items())
        for m, v in shares.items():
            left[m] -= v
    assert all(v >= 0 for v in left.values())


@pytest.mark.parametrize(
    ("amount", "left", "expected"),
    [
        (1757, {"CASH": 2800, "STORED_VALUE": 3000}, {"CASH": 848, "STORED_VALUE": 909}),
        (1, {"CASH": 100, "STORED_VALUE": 100}, {"CASH": 1}),  # a tie: the earlier tender takes the fen
        (100, {"CARD": 50, "POINTS": 50}, {"CARD": 50, "POINTS": 50}),
        (25, {"CASH": 50, "POINTS": 50}, {"CASH": 15, "POINTS": 10}),  # points at 10 fen: 12 fen -> 1 point
        (50, {"CASH": 1, "POINTS": 100}, {"POINTS": 50}),  # no room in cash: up to 5 whole points
        (3, {"WECHAT_PAY": 1, "ALIPAY": 1, "CASH": 1}, {"WECHAT_PAY": 1, "ALIPAY": 1, "CASH": 1}),
    ],
)
def test_the_split_to_the_fen(amount, left, expected):
    point_value = 10 if "POINTS" in left and amount in (25, 50) else 1
    got = refunds.split(amount, {PaymentMethod(k): v for k, v in left.items()}, point_value)
    assert {m.value: v for m, v in got.items()} == expected


# The other value-moving mutations that gained a key: a replay answers the first result and moves nothing. ----------

ADJUST_POINTS = """mutation($idempotencyKey: String!, $m: ID!, $p: Int!) {
  adjustPoints(input: {idempotencyKey: $idempotencyKey, memberId: $m, points: $p, note: "补偿"}) {
    errors { code field } member { pointsBalance } } }"""
CLAIM = """mutation($idempotencyKey: String!, $t: ID!) {
  claimCoupon(input: {idempotencyKey: $idempotencyKey, templateId: $t}) { errors { code field } coupon { id } } }"""
ISSUE = """mutation($idempotencyKey: String!, $t: ID!, $m: [ID!]) {
  issueCoupons(input: {idempotencyKey: $idempotencyKey, templateId: $t, memberIds: $m}) { errors { code field } issued } }"""
REQUEST_T = """mutation($idempotencyKey: String!, $from: ID!, $to: ID!, $lines: [StockLineInput!]!) {
  requestTransfer(input: {idempotencyKey: $idempotencyKey, fromStoreId: $from, toStoreId: $to, lines: $lines}) {
    errors { code field } transfer { id status } } }"""
SHIP_T = """mutation($idempotencyKey: String!, $id: ID!) {
  shipTransfer(input: {idempotencyKey: $idempotencyKey, id: $id}) { errors { code field } transfer { id status } } }"""
RECEIVE_T = """mutation($idempotencyKey: String!, $id: ID!, $lines: [StockLineInput!]) {
  receiveTransfer(input: {idempotencyKey: $idempotencyKey, id: $id, lines: $lines}) {
    errors { code field } transfer { id status } } }"""
REUSED = [{"code": "IDEMPOTENCY_KEY_REUSED", "field": "idempotencyKey"}]


@pytest.mark.postgres_too
async def test_points_adjusted_twice_with_one_key_move_once(api, state, chain):
    _, member_id, _ = await _shop(state, chain)
    variables = {"m": gid("Member", member_id), "p": 100, "idempotencyKey": "hq-adj-1"}
    answers = await asyncio.gather(*(api.gql(ADJUST_POINTS, variables, as_="hq.admin") for _ in range(3)))
    assert [a["data"]["adjustPoints"]["member"]["pointsBalance"] for a in answers] == [100] * 3
    reused = await api.gql(ADJUST_POINTS, {**variables, "p": 200}, as_="hq.admin")
    assert reused["data"]["adjustPoints"]["errors"] == REUSED
    async with state.sessionmaker() as session:
        assert (await session.get(Member, member_id)).points_balance == 100


@pytest.mark.postgres_too
async def test_coupons_claimed_and_issued_with_one_key_are_given_once(api, state, chain):
    from models import CouponKind, MemberCoupon
    from tests.marketing_givens import template

    claimable = await template(state, CouponKind.AMOUNT_OFF, amount_off=200, per_member_limit=5)
    variables = {"t": gid("CouponTemplate", claimable), "idempotencyKey": "tap-1"}
    first, again = [await api.gql(CLAIM, variables, as_="member:claimer") for _ in range(2)]
    assert first["data"]["claimCoupon"]["coupon"]["id"] == again["data"]["claimCoupon"]["coupon"]["id"]
    other = await template(state, CouponKind.AMOUNT_OFF, amount_off=300, per_member_limit=5)
    reused = await api.gql(CLAIM, {**variables, "t": gid("CouponTemplate", other)}, as_="member:claimer")
    assert reused["data"]["claimCoupon"]["errors"] == REUSED
    _, member_id, _ = await _shop(state, chain)
    issue = {"t": gid("CouponTemplate", claimable), "m": [gid("Member", member_id)], "idempotencyKey": "batch-1"}
    issued = [await api.gql(ISSUE, issue, as_="hq.admin") for _ in range(2)]
    assert [r["data"]["issueCoupons"]["issued"] for r in issued] == [1, 1]
    async with state.sessionmaker() as session:
        held = (await session.scalars(select(MemberCoupon.template_id).order_by(MemberCoupon.id))).all()
    assert sorted(held) == [claimable, claimable]  # one claimed, one issued; nothing of `other`


@pytest.mark.postgres_too
async def test_a_transfer_requested_shipped_and_received_with_replayed_keys_moves_stock_once(api, state, chain):
    library = await make_library(state, products=1, skus_per_product=1)
    sku = library.sku_ids[0]
    sh01, sh02 = chain.stores["SH01"], chain.stores["SH02"]
    await list_in_store(state, sh01, [sku], on_hand=20)
    await list_in_store(state, sh02, [sku], on_hand=1)
    ask = {
        "from": gid("Store", sh01),
        "to": gid("Store", sh02),
        "lines": [{"skuId": gid("Sku", sku), "quantity": 8}],
        "idempotencyKey": "ask-1",
    }
    asked = [await api.gql(REQUEST_T, ask, as_="sh02.manager") for _ in range(2)]
    tid = asked[0]["data"]["requestTransfer"]["transfer"]["id"]
    assert asked[1]["data"]["requestTransfer"]["transfer"]["id"] == tid
    decide = "mutation($id: ID!) { decideTransfer(input: {id: $id, approve: true}) { errors { code } } }"
    assert (await api.gql(decide, {"id": tid}, as_="hq.admin"))["data"]["decideTransfer"]["errors"] == []
    shipped = await asyncio.gather(
        *(api.gql(SHIP_T, {"id": tid, "idempotencyKey": "ship-1"}, as_="sh01.manager") for _ in range(3))
    )
    assert [s["data"]["shipTransfer"]["transfer"]["status"] for s in shipped] == ["SHIPPED"] * 3
    got = {"id": tid, "idempotencyKey": "recv-1"}
    received = [await api.gql(RECEIVE_T, got, as_="sh02.manager") for _ in range(2)]
    assert [r["data"]["receiveTransfer"]["transfer"]["status"] for r in received] == ["RECEIVED"] * 2
    reused = await api.gql(RECEIVE_T, {**got, "lines": [{"skuId": gid("Sku", sku), "quantity": 7}]}, as_="sh02.manager")
    assert reused["data"]["receiveTransfer"]["errors"] == REUSED
    async with state.sessionmaker() as session:
        levels = dict(
            (
                await session.execute(select(StockLevel.store_id, StockLevel.on_hand).where(StockLevel.sku_id == sku))
            ).all()
        )
    assert levels == {sh01: 12, sh02: 9}


async def test_refunds_line_by_line_give_every_tender_back_exactly_what_it_paid(api, state, chain):
    skus, member_id, _ = await _shop(state, chain, prices=(1757, 4043, 999), sv=3000)
    from services.members import points as points_service

    async with write_transaction(state.sessionmaker) as session:
        await points_service.adjust(session, member_id, 500, note="seed", staff_id=None)
    sale = await api.gql(
        """mutation($lines: [CartLineInput!]!, $t: [TenderInput!]!, $m: ID) {
      posCheckout(input: {clientOrderId: "three", lines: $lines, tenders: $t, memberId: $m, usePoints: 300}) {
        errors { code field } order { id } } }""",
        {
            "m": gid("Member", member_id),
            "lines": [{"skuId": gid("Sku", s), "quantity": 1} for s in skus],
            "t": [{"method": "CASH", "amount": 3499}, {"method": "STORED_VALUE", "amount": 3000}],
        },
        as_="sh01.clerk",
    )
    assert sale["data"]["posCheckout"]["errors"] == [], sale
    order_id = sale["data"]["posCheckout"]["order"]["id"]
    back: dict[str, int] = {}
    for step in ([skus[0]], [skus[2]], None):
        lines = None if step is None else [{"skuId": gid("Sku", s), "quantity": 1} for s in step]
        preview = (await api.gql(PREVIEW, {"id": order_id, "lines": lines}, as_="sh01.manager"))["data"]
        made = await api.gql(REFUND, {"id": order_id, "lines": lines}, as_="sh01.manager")
        refund = made["data"]["refundOrder"]["refund"]
        assert (
            refund["tenders"] == preview["refundPreview"]["tenders"]
            and refund["amount"] == (preview["refundPreview"]["amount"])
        )
        assert sum(t["amount"] for t in refund["tenders"]) == refund["amount"]
        for t in refund["tenders"]:
            back[t["method"]] = back.get(t["method"], 0) + t["amount"]
    assert back == {"CASH": 3499, "STORED_VALUE": 3000, "POINTS": 300}
    async with state.sessionmaker() as session:
        assert (await session.get(Member, member_id)).balance_principal == 3000

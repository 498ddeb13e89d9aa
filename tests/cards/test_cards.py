"""Cards (卡项) over HTTP, by role: HQ defines them, a counter or the mini-program sells them, any valid store's
counter uses them (the price engine lets a card pay its lines), the issuing store refunds what is left pro rata, a
job expires them, a gift card goes to another member once; settlement clears between stores; scope holds."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from models import CardEntry, CardSale, MemberCard, PointsEntry, utcnow
from services.cards import cards as card_service
from services.integrity import check_database
from services.platform.db import write_transaction
from tests.conftest import count_statements, gid, pk
from tests.factories import list_in_store, make_library

CREATE = """mutation($input: CreateCardProductInput!) { createCardProduct(input: $input) {
  errors { code field } product { id kind price uses perDayLimit } } }"""
SELL = """mutation($m: ID!, $p: ID!, $s: ID, $t: [TenderInput!]!, $idempotencyKey: String!) {
  sellCard(input: {memberId: $m, productId: $p, storeId: $s, tenders: $t, idempotencyKey: $idempotencyKey}) {
    errors { code field } card { id kind status unitsLeft valueLeft issuer { code } } } }"""
IDENTIFY = """mutation($c: String, $s: ID) { identifyMember(input: {code: $c, storeId: $s}) {
  errors { code } member { id } } }"""
CODE = "{ myMemberCode { code } }"
QUOTE = """query($s: ID!, $l: [CartLineInput!]!, $m: ID, $c: [ID!]) {
  quote(input: {storeId: $s, lines: $l, memberId: $m, cardIds: $c}) { total cardPaid cardUses { units amount } } }"""
CHECKOUT = """mutation($s: ID, $l: [CartLineInput!]!, $t: [TenderInput!]!, $m: ID, $c: [ID!], $key: String!) {
  posCheckout(input: {storeId: $s, clientOrderId: $key, lines: $l, tenders: $t, memberId: $m, cardIds: $c}) {
    errors { code field } order { id payable } } }"""
CARD = """query($id: ID!) { node(id: $id) { ... on MemberCard { unitsLeft valueLeft status
  history { kind units value store { code } issuer { code } } } } }"""
SETTLEMENT = """query($s: ID!, $d: Date!) { settlement(storeId: $s, date: $d) { figures } }"""
REFUND = """mutation($id: ID!, $m: PaymentMethod!, $s: ID, $idempotencyKey: String!) {
  refundCard(input: {cardId: $id, method: $m, storeId: $s, idempotencyKey: $idempotencyKey}) {
    errors { code field } amount method card { status unitsLeft valueLeft } } }"""
USES = """query($s: ID!) { cardUses(storeId: $s) { edges { node { kind units store { code } } } } }"""
pytestmark = pytest.mark.postgres_too

MY_CARDS = """query($left: Boolean!) { myCards(withUsesLeft: $left, first: 100) { edges { node {
  id kind unitsLeft product { name } issuer { code } history { kind units store { code } } } } } }"""


def _lines(*pairs: tuple[int, int]) -> list[dict[str, object]]:
    return [{"skuId": gid("Sku", sku), "quantity": qty} for sku, qty in pairs]


async def _given(api, state, chain):
    """Coffee (1500) and cake (2000) listed in SH01, SH02 and HZ01; HQ's 10-coffee card (10,000 fen)."""
    library = await make_library(state, products=2, skus_per_product=1, price=1500)
    coffee, cake = library.sku_ids
    for code in ("SH01", "SH02", "HZ01"):
        await list_in_store(state, chain.stores[code], library.sku_ids, on_hand=50)
    async with write_transaction(state.sessionmaker) as session:
        from models import StoreListing

        await session.execute(update(StoreListing).where(StoreListing.sku_id == cake).values(price=2000))
    product = await _product(api, name="十杯咖啡", kind="COUNT", price=10_000, uses=10, skuIds=[gid("Sku", coffee)])
    return coffee, cake, product


async def _product(api, **fields):
    spec = {"validityDays": 365, **fields}
    made = await api.gql(CREATE, {"input": spec}, as_="hq.admin")
    assert made["data"]["createCardProduct"]["errors"] == [], made
    return made["data"]["createCardProduct"]["product"]["id"]


async def _member_at(api, chain, who: str, *codes: str) -> str:
    """The member signs in at the first store; each other store's clerk identifies them by the member code."""
    signed = await api.member_sign_in(who.removeprefix("member:"), gid("Store", chain.stores[codes[0]]))
    api.tokens[who] = signed["tokens"]["accessToken"]
    for code in codes[1:]:
        member_code = (await api.gql(CODE, as_=who))["data"]["myMemberCode"]["code"]
        found = await api.gql(
            IDENTIFY, {"c": member_code, "s": gid("Store", chain.stores[code])}, as_=f"{code.lower()}.clerk"
        )
        assert found["data"]["identifyMember"]["errors"] == []
    member_id: str = signed["member"]["id"]
    return member_id


async def _sell(api, chain, member, product, store="SH01", amount=10_000, key=None, as_=None):
    variables = {
        "m": member,
        "p": product,
        "s": gid("Store", chain.stores[store]),
        "t": [{"method": "CASH", "amount": amount}],
    }
    if key:
        variables["idempotencyKey"] = key
    return (await api.gql(SELL, variables, as_=as_ or f"{store.lower()}.clerk"))["data"]["sellCard"]


def _today(chain_store_tz: str = "Asia/Shanghai") -> str:
    return datetime.now(ZoneInfo(chain_store_tz)).date().isoformat()


async def test_hq_defines_card_products_and_store_staff_cannot(api, state, chain):
    library = await make_library(state, products=1, skus_per_product=1)
    spec = {"name": "月卡", "kind": "PERIOD", "price": 30_000, "perDayLimit": 1, "validityDays": 30}
    spec["skuIds"] = [gid("Sku", library.sku_ids[0])]
    made = await api.gql(CREATE, {"input": spec}, as_="hq.operator")
    refused = await api.gql(CREATE, {"input": spec}, as_="sh01.manager")
    invalid = await api.gql(CREATE, {"input": {**spec, "perDayLimit": None}}, as_="hq.admin")
    assert made["data"]["createCardProduct"]["product"]["kind"] == "PERIOD"
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert invalid["data"]["createCardProduct"]["errors"] == [{"code": "INVALID_INPUT", "field": "perDayLimit"}]


async def test_a_card_bought_in_one_store_pays_in_another_and_settlement_clears_between_them(api, state, chain):
    coffee, cake, product = await _given(api, state, chain)
    member = await _member_at(api, chain, "member:commuter", "SH01", "SH02")
    sold = await _sell(api, chain, member, product, key="sell-1")
    again = await _sell(api, chain, member, product, key="sell-1")
    card = sold["card"]
    assert sold["errors"] == [] and again["card"] == card
    assert card["unitsLeft"] == 10 and card["valueLeft"] == 10_000 and card["issuer"]["code"] == "SH01"

    sh02 = gid("Store", chain.stores["SH02"])
    lines = _lines((coffee, 2), (cake, 1))
    quoted = await api.gql(QUOTE, {"s": sh02, "l": lines, "m": member, "c": [card["id"]]}, as_="sh02.clerk")
    assert quoted["data"]["quote"] == {"total": 5000, "cardPaid": 3000, "cardUses": [{"units": 2, "amount": 3000}]}
    variables = {"s": sh02, "l": lines, "m": member, "c": [card["id"]], "key": "sale-1"}
    short = await api.gql(CHECKOUT, {**variables, "t": [{"method": "CASH", "amount": 5000}]}, as_="sh02.clerk")
    assert short["data"]["posCheckout"]["errors"] == [{"code": "INVALID_INPUT", "field": "tenders"}]
    variables["t"] = [{"method": "CASH", "amount": 2000}]
    sale = await api.gql(CHECKOUT, variables, as_="sh02.clerk")
    replay = await api.gql(CHECKOUT, variables, as_="sh02.clerk")
    assert sale["data"]["posCheckout"]["order"]["payable"] == 2000
    assert replay["data"]["posCheckout"]["order"] == sale["data"]["posCheckout"]["order"]

    mine = (await api.gql(CARD, {"id": card["id"]}, as_="member:commuter"))["data"]["node"]
    assert (mine["unitsLeft"], mine["valueLeft"], mine["status"]) == (8, 8000, "ACTIVE")
    assert [(h["kind"], h["units"], h["value"], h["store"]["code"], h["issuer"]["code"]) for h in mine["history"]] == [
        ("USE", -2, -2000, "SH02", "SH01"),
        ("ISSUE", 10, 10_000, "SH01", "SH01"),
    ]
    at_sh02 = (await api.gql(CARD, {"id": card["id"]}, as_="sh02.clerk"))["data"]["node"]
    assert [h["kind"] for h in at_sh02["history"]] == ["USE"]  # the sale at SH01 is not SH02's to see
    async with state.sessionmaker() as session:
        earned = await session.scalar(select(func.sum(PointsEntry.points)).where(PointsEntry.ref_type == "order"))
        entries = await session.scalar(select(func.count()).select_from(CardEntry))
        sales = await session.scalar(select(func.count()).select_from(CardSale))
    assert earned == 20 and entries == 2 and sales == 1  # points on the 2000 cash only: the card's use earns none

    day = _today()
    sh01_day = await api.gql(SETTLEMENT, {"s": gid("Store", chain.stores["SH01"]), "d": day}, as_="hq.admin")
    sh02_day = await api.gql(SETTLEMENT, {"s": sh02, "d": day}, as_="hq.admin")
    sh01_fig, sh02_fig = sh01_day["data"]["settlement"]["figures"], sh02_day["data"]["settlement"]["figures"]
    assert sh01_fig["takings"]["CASH"] == 10_000 and sh01_fig["net"] == 0
    assert sh01_fig["cards"]["sold"] == 10_000 and sh01_fig["cards"]["clearing"] == -2000
    assert sh02_fig["cards"]["usedByIssuer"] == {str(chain.stores["SH01"]): 2000}
    assert sh02_fig["cards"]["clearing"] == 2000 and sh02_fig["net"] == 2000


async def test_store_staff_see_only_card_uses_at_their_own_counter(api, state, chain):
    coffee, _cake, product = await _given(api, state, chain)
    member = await _member_at(api, chain, "member:scoped", "SH01", "SH02")
    card = (await _sell(api, chain, member, product))["card"]
    variables = {"s": gid("Store", chain.stores["SH02"]), "l": _lines((coffee, 1)), "m": member, "c": [card["id"]]}
    await api.gql(CHECKOUT, {**variables, "t": [], "key": "k1"}, as_="sh02.clerk")
    sh02 = gid("Store", chain.stores["SH02"])
    own = (await api.gql(USES, {"s": sh02}, as_="sh02.clerk"))["data"]["cardUses"]["edges"]
    other = await api.gql(USES, {"s": sh02}, as_="sh01.manager")
    hq = (await api.gql(USES, {"s": sh02}, as_="hq.admin"))["data"]["cardUses"]["edges"]
    assert [e["node"] for e in own] == [{"kind": "USE", "units": -1, "store": {"code": "SH02"}}] and hq == own
    assert other["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    stranger = await api.gql(CARD, {"id": card["id"]}, as_="member:stranger")
    hz = await api.gql(CARD, {"id": card["id"]}, as_="hz01.clerk")
    assert stranger["data"]["node"] is None and hz["data"]["node"] is None


async def test_a_card_bought_online_is_issued_once_when_the_payment_arrives(api, state, chain):
    _coffee, _cake, product = await _given(api, state, chain)
    await _member_at(api, chain, "member:online", "SH01")
    buy = """mutation($p: ID!, $s: ID!, $idempotencyKey: String!) { buyCard(input: {productId: $p, storeId: $s,
      idempotencyKey: $idempotencyKey}) { errors { code } sale { id status amount cardId } payment { provider } } }"""
    variables = {"p": product, "s": gid("Store", chain.stores["SH02"]), "idempotencyKey": "buy-1"}
    started = (await api.gql(buy, variables, as_="member:online"))["data"]["buyCard"]
    assert started["sale"]["status"] == "PENDING" and started["payment"]["provider"] == "sandbox"
    ref = f"CRD{pk(started['sale']['id']):012d}"
    for _ in range(2):
        headers, body = state.payment_providers["sandbox"].notification(provider_ref=ref, amount=10_000)
        assert (await api.http.post("/payments/notify/sandbox", content=body, headers=headers)).json() == {
            "code": "SUCCESS"
        }
    mine = (await api.gql(MY_CARDS, {"left": True}, as_="member:online"))["data"]["myCards"]["edges"]
    assert [(e["node"]["unitsLeft"], e["node"]["issuer"]["code"]) for e in mine] == [(10, "SH02")]
    again = (await api.gql(buy, variables, as_="member:online"))["data"]["buyCard"]
    assert again["sale"]["status"] == "PAID" and again["payment"] is None and again["sale"]["cardId"]
    export = (await api.gql("{ myDataExport }", as_="member:online"))["data"]["myDataExport"]
    assert [(c["unitsLeft"], [m["kind"] for m in c["moves"]]) for c in export["cards"]] == [(10, ["ISSUE"])]


async def test_unused_uses_are_refunded_pro_rata_once_at_the_issuing_store(api, state, chain):
    coffee, _cake, product = await _given(api, state, chain)
    member = await _member_at(api, chain, "member:refund", "SH01")
    card = (await _sell(api, chain, member, product))["card"]
    variables = {"s": gid("Store", chain.stores["SH01"]), "l": _lines((coffee, 3)), "m": member, "c": [card["id"]]}
    await api.gql(CHECKOUT, {**variables, "t": [], "key": "use-3"}, as_="sh01.clerk")
    refund = {"id": card["id"], "m": "CASH", "idempotencyKey": "r-1"}
    elsewhere = await api.gql(REFUND, {**refund, "s": gid("Store", chain.stores["SH02"])}, as_="sh02.manager")
    assert elsewhere["data"]["refundCard"]["errors"] == [{"code": "NOT_FOUND", "field": "cardId"}]
    done = (await api.gql(REFUND, refund, as_="sh01.manager"))["data"]["refundCard"]
    again = (await api.gql(REFUND, refund, as_="sh01.manager"))["data"]["refundCard"]
    other_key = (await api.gql(REFUND, {**refund, "idempotencyKey": "r-2"}, as_="sh01.manager"))["data"]["refundCard"]
    assert done["amount"] == 7000 and done["card"] == {"status": "REFUNDED", "unitsLeft": 0, "valueLeft": 0}
    assert again == done and other_key["errors"] == [{"code": "CARD_NOT_USABLE", "field": "cardId"}]
    figures = await api.gql(SETTLEMENT, {"s": gid("Store", chain.stores["SH01"]), "d": _today()}, as_="hq.admin")
    day = figures["data"]["settlement"]["figures"]
    assert day["refunds"]["CASH"] == 7000 and day["net"] == 0  # a card bought back is a liability paid, not sales


async def test_a_period_card_keeps_to_its_city_and_its_uses_a_day(api, state, chain):
    coffee, _cake, _count_card = await _given(api, state, chain)
    month = await _product(
        api,
        name="杭州月卡",
        kind="PERIOD",
        price=30_000,
        perDayLimit=1,
        validityDays=30,
        city="杭州",
        skuIds=[gid("Sku", coffee)],
    )
    member = await _member_at(api, chain, "member:period", "HZ01", "SH02")
    refused = await _sell(api, chain, member, month, store="SH02", amount=30_000)
    assert refused["errors"] == [{"code": "CARD_NOT_USABLE", "field": "storeId"}]
    card = (await _sell(api, chain, member, month, store="HZ01", amount=30_000))["card"]
    assert card["unitsLeft"] == 30
    sh02 = {"s": gid("Store", chain.stores["SH02"]), "l": _lines((coffee, 1)), "m": member, "c": [card["id"]]}
    not_here = await api.gql(QUOTE, sh02, as_="sh02.clerk")
    assert not_here["data"] is None and not_here["errors"][0]["extensions"]["reason"] == "CARD_NOT_USABLE"
    hz01 = {**sh02, "s": gid("Store", chain.stores["HZ01"]), "l": _lines((coffee, 2))}
    first = await api.gql(CHECKOUT, {**hz01, "t": [{"method": "CASH", "amount": 1500}], "key": "d1"}, as_="hz01.clerk")
    second = await api.gql(CHECKOUT, {**hz01, "t": [{"method": "CASH", "amount": 1500}], "key": "d2"}, as_="hz01.clerk")
    assert first["data"]["posCheckout"]["errors"] == []
    assert second["data"]["posCheckout"]["errors"] == [{"code": "CARD_LIMIT_REACHED", "field": "cardIds[0]"}]


async def test_a_gift_card_goes_to_another_member_once(api, state, chain):
    _coffee, _cake, _ = await _given(api, state, chain)
    gift = await _product(api, name="礼品卡", kind="GIFT", price=20_000, faceValue=20_000)
    giver = await _member_at(api, chain, "member:giver", "SH01")
    await _member_at(api, chain, "member:friend", "SH01")
    await _member_at(api, chain, "member:third", "SH01")
    card = (await _sell(api, chain, giver, gift, amount=20_000))["card"]
    share = "mutation($id: ID!) { shareGiftCard(input: {cardId: $id}) { errors { code } card { shareCode } } }"
    code = (await api.gql(share, {"id": card["id"]}, as_="member:giver"))["data"]["shareGiftCard"]["card"]["shareCode"]
    assert code and len(code) == 12
    redeem = """mutation($c: String!, $idempotencyKey: String!) { redeemGiftCard(input: {code: $c,
      idempotencyKey: $idempotencyKey}) { errors { code } card { id unitsLeft gifted shareCode } } }"""
    got = (await api.gql(redeem, {"c": code, "idempotencyKey": "g1"}, as_="member:friend"))["data"]["redeemGiftCard"]
    replay = (await api.gql(redeem, {"c": code, "idempotencyKey": "g1"}, as_="member:friend"))["data"]
    twice = (await api.gql(redeem, {"c": code, "idempotencyKey": "g2"}, as_="member:friend"))["data"]
    third = (await api.gql(redeem, {"c": code, "idempotencyKey": "g3"}, as_="member:third"))["data"]
    assert got["card"] == {"id": card["id"], "unitsLeft": 20_000, "gifted": True, "shareCode": None}
    assert replay["redeemGiftCard"] == got
    assert twice["redeemGiftCard"]["errors"] == third["redeemGiftCard"]["errors"] == [{"code": "GIFT_CODE_INVALID"}]
    giver_cards = (await api.gql(MY_CARDS, {"left": False}, as_="member:giver"))["data"]["myCards"]["edges"]
    friend = (await api.gql(MY_CARDS, {"left": True}, as_="member:friend"))["data"]["myCards"]["edges"]
    assert giver_cards == [] and [e["node"]["id"] for e in friend] == [card["id"]]
    assert [h["kind"] for h in friend[0]["node"]["history"]] == ["GIFT_IN"]  # the giver's moves stay the giver's


async def test_the_daily_job_expires_what_is_left_once(api, state, chain):
    _coffee, _cake, product = await _given(api, state, chain)
    member = await _member_at(api, chain, "member:late", "SH01")
    card = (await _sell(api, chain, member, product))["card"]
    async with write_transaction(state.sessionmaker) as session:
        soon = utcnow() + timedelta(days=10)
        await session.execute(update(MemberCard).where(MemberCard.id == pk(card["id"])).values(expires_at=soon))
        assert await card_service.expiring_cards(session, 30) == [(pk(member), pk(card["id"]), "十杯咖啡", soon)]
    later = utcnow() + timedelta(days=11)
    for _ in range(2):
        async with write_transaction(state.sessionmaker) as session:
            await card_service.expire(session, later)
    seen = (await api.gql(CARD, {"id": card["id"]}, as_="member:late"))["data"]["node"]
    assert seen["status"] == "EXPIRED" and seen["unitsLeft"] == 0
    assert [h["kind"] for h in seen["history"]] == ["EXPIRE", "ISSUE"]
    async with state.sessionmaker() as session:
        checks = {c.name: c for c in await check_database(session)}
    assert checks["cards = ledger"].ok and checks["cards = ledger"].rows == 1


async def test_hq_card_report_sums_clearing_to_zero_and_shows_the_liability(api, state, chain):
    coffee, _cake, product = await _given(api, state, chain)
    member = await _member_at(api, chain, "member:report", "SH01", "SH02")
    card = (await _sell(api, chain, member, product))["card"]
    variables = {"s": gid("Store", chain.stores["SH02"]), "l": _lines((coffee, 4)), "m": member, "c": [card["id"]]}
    await api.gql(CHECKOUT, {**variables, "t": [], "key": "r4"}, as_="sh02.clerk")
    report = """{ cardReport { store { code } soldCount soldValue uses usedValue outstandingValue clearing } }"""
    rows = (await api.gql(report, as_="hq.admin"))["data"]["cardReport"]
    by_store = {r["store"]["code"]: r for r in rows}
    assert sum(r["clearing"] for r in rows) == 0
    assert by_store["SH01"] | {"store": None} == {
        "store": None,
        "soldCount": 1,
        "soldValue": 10_000,
        "uses": 0,
        "usedValue": 0,
        "outstandingValue": 6000,
        "clearing": -4000,
    }
    assert (by_store["SH02"]["uses"], by_store["SH02"]["usedValue"], by_store["SH02"]["clearing"]) == (4, 4000, 4000)
    manager = (await api.gql(report, as_="sh02.manager"))["data"]["cardReport"]
    assert manager == [by_store["SH02"]]  # summed over SH02's rows only, the same figures as HQ's row


async def test_a_members_cards_take_the_same_statements_for_10_and_100(api, state, chain):
    _coffee, _cake, product = await _given(api, state, chain)
    member = await _member_at(api, chain, "member:many", "SH01")
    counts = []
    for n in (10, 100):
        async with write_transaction(state.sessionmaker) as session:
            from models import CardProduct
            from services.cards import ledger

            made = await session.get(CardProduct, pk(product))
            assert made is not None
            for _ in range(n - (0 if n == 10 else 10)):
                await ledger.issue(
                    session, made, member_id=pk(member), store_id=chain.stores["SH01"], ref_type="test", ref_id=0
                )
        with count_statements(state.engine) as counter:
            got = await api.gql(MY_CARDS, {"left": True}, as_="member:many")
        assert len(got["data"]["myCards"]["edges"]) == n
        counts.append(counter.count)
    assert counts[0] == counts[1]


async def test_refunding_goods_a_card_paid_for_gives_the_uses_back_to_the_card_and_money_to_the_money(
    api, state, chain
):
    coffee, cake, product = await _given(api, state, chain)
    member = await _member_at(api, chain, "member:returns", "SH01")
    card = (await _sell(api, chain, member, product))["card"]
    lines = _lines((coffee, 2), (cake, 1))
    variables = {"s": gid("Store", chain.stores["SH01"]), "l": lines, "m": member, "c": [card["id"]]}
    sale = await api.gql(
        CHECKOUT, {**variables, "t": [{"method": "CASH", "amount": 2000}], "key": "mixed"}, as_="sh01.clerk"
    )
    order = sale["data"]["posCheckout"]["order"]["id"]
    refund = """mutation($id: ID!, $l: [CartLineInput!], $idempotencyKey: String!) { refundOrder(input: {id: $id,
      lines: $l, idempotencyKey: $idempotencyKey}) { errors { code field } refund { amount byMethod } } }"""
    one_coffee = {"id": order, "l": _lines((coffee, 1)), "idempotencyKey": "back-1"}
    first = (await api.gql(refund, one_coffee, as_="sh01.manager"))["data"]["refundOrder"]
    again = (await api.gql(refund, one_coffee, as_="sh01.manager"))["data"]["refundOrder"]
    assert first == again and first["refund"] == {"amount": 0, "byMethod": {}}  # the card paid: no money back
    seen = (await api.gql(CARD, {"id": card["id"]}, as_="member:returns"))["data"]["node"]
    assert (seen["unitsLeft"], seen["valueLeft"]) == (9, 9000)
    assert [h["kind"] for h in seen["history"]] == ["RETURN", "USE", "ISSUE"]
    rest = {"id": order, "l": None, "idempotencyKey": "back-2"}
    last = (await api.gql(refund, rest, as_="sh01.manager"))["data"]["refundOrder"]
    assert last["refund"] == {"amount": 2000, "byMethod": {"CASH": 2000}}  # the cake was paid in cash
    seen = (await api.gql(CARD, {"id": card["id"]}, as_="member:returns"))["data"]["node"]
    assert (seen["unitsLeft"], seen["valueLeft"], seen["status"]) == (10, 10_000, "ACTIVE")
    async with state.sessionmaker() as session:
        checks = {c.name: c for c in await check_database(session)}
    assert checks["cards = ledger"].ok


async def test_a_card_whose_product_says_so_earns_points_for_the_goods_it_pays(api, state, chain):
    coffee, _cake, _count_card = await _given(api, state, chain)
    earning = await _product(
        api, name="积分卡", kind="COUNT", price=5000, uses=5, skuIds=[gid("Sku", coffee)], earnsPointsOnUse=True
    )
    member = await _member_at(api, chain, "member:earner", "SH01")
    card = (await _sell(api, chain, member, earning, amount=5000))["card"]
    variables = {"s": gid("Store", chain.stores["SH01"]), "l": _lines((coffee, 2)), "m": member, "c": [card["id"]]}
    sale = await api.gql(CHECKOUT, {**variables, "t": [], "key": "earn-1"}, as_="sh01.clerk")
    assert sale["data"]["posCheckout"]["errors"] == []
    async with state.sessionmaker() as session:
        earned = await session.scalar(select(func.sum(PointsEntry.points)).where(PointsEntry.ref_type == "card"))
    assert earned == 30  # the 3000 fen of coffee the card paid, at the chain's rate

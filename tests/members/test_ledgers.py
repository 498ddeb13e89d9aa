"""积分明细 / 余额明细: the member's points and stored-value history, for the member and for staff in scope."""

from __future__ import annotations

import pytest

from models import Member
from services.members import points, stored_value
from services.members.accounts import relate
from services.platform.db import write_transaction
from tests.conftest import count_statements, gid, pk
from tests.factories import list_in_store, make_library

MY_LEDGERS = """query($n: Int, $a: String) { me { ... on MemberViewer { member {
  pointsBalance storedValue { principal bonus }
  pointsLedger(first: $n, after: $a) { edges { cursor node { kind points reason balanceAfter at store { code } order { id } } }
    pageInfo { hasNextPage endCursor } }
  storedValueLedger(first: 10) { edges { node { kind principal bonus amount reason balanceAfter { principal bonus total }
    store { code } issuer { code } order { id } } } } } } } }"""

STAFF_LEDGERS = """query($m: ID!) { node(id: $m) { ... on Member {
  pointsLedger(first: 10) { edges { node { points balanceAfter reason } } }
  storedValueLedger(first: 10) { edges { node { amount balanceAfter { total } } } } } } }"""

CHECKOUT = """mutation($key: String!, $k: ID!, $m: ID, $p: Int, $t: [TenderInput!]!) {
  posCheckout(input: {clientOrderId: $key, lines: [{skuId: $k, quantity: 1}], tenders: $t, memberId: $m, usePoints: $p}) {
    errors { code field } order { id } } }"""


async def _member_with_history(api, state, chain, code: str = "ledger-alice:13800138111") -> tuple[int, str]:
    """A signed-in member known at SH01 with points adjusted, earned and spent, and two top-ups."""
    signed = await api.member_sign_in(code)
    member_id = pk(signed["member"]["id"])
    sh01, hz01 = chain.stores["SH01"], chain.stores["HZ01"]
    async with write_transaction(state.sessionmaker) as session:
        await relate(session, member_id, sh01)
        await points.adjust(session, member_id, 500, note="Welcome gift", staff_id=None)
        await stored_value.top_up(
            session, member_id, principal=3000, bonus=300, store_id=hz01, ref_type="counter_top_up", ref_id=None
        )
    return member_id, signed["tokens"]["accessToken"]


@pytest.mark.postgres_too
async def test_a_member_reads_their_points_and_stored_value_history_with_the_balance_after_each_row(api, state, chain):
    member_id, token = await _member_with_history(api, state, chain)
    library = await make_library(state, products=1, skus_per_product=1, price=2000)
    await list_in_store(state, chain.stores["SH01"], library.sku_ids, on_hand=5)
    sale = await api.gql(
        CHECKOUT,
        {
            "key": "ledger-1",
            "k": gid("Sku", library.sku_ids[0]),
            "m": gid("Member", member_id),
            "p": 200,
            "t": [{"method": "CASH", "amount": 800}, {"method": "STORED_VALUE", "amount": 1000}],
        },
        as_="sh01.clerk",
    )
    assert sale["data"]["posCheckout"]["errors"] == [], sale
    order_id = sale["data"]["posCheckout"]["order"]["id"]

    body = (await api.post(MY_LEDGERS, {"n": 10}, token=token)).json()
    assert "errors" not in body, body
    member = body["data"]["me"]["member"]
    rows = [e["node"] for e in member["pointsLedger"]["edges"]]
    # Newest first: earned on the 18 yuan paid in cash and stored value, redeemed 200, the welcome gift.
    assert [(r["kind"], r["points"], r["balanceAfter"]) for r in rows] == [
        ("EARN", 18, 318),
        ("REDEEM", -200, 300),
        ("ADJUST", 500, 500),
    ]
    assert rows[0]["balanceAfter"] == member["pointsBalance"]
    assert rows[2]["reason"] == "Welcome gift" and rows[2]["order"] is None and rows[2]["store"] is None
    assert rows[0]["order"] == {"id": order_id} and rows[0]["store"] == {"code": "SH01"}
    sv = [e["node"] for e in member["storedValueLedger"]["edges"]]
    assert [(r["kind"], r["principal"], r["bonus"], r["amount"]) for r in sv] == [
        ("SPEND", -1000, 0, -1000),
        ("TOP_UP", 3000, 300, 3300),
    ]
    assert (
        sv[0]["balanceAfter"]
        == {"principal": 2000, "bonus": 300, "total": 2300}
        == {**member["storedValue"], "total": 2300}
    )
    assert (
        sv[0]["store"] == {"code": "SH01"} and sv[0]["issuer"] == {"code": "HZ01"} and sv[0]["order"]["id"] == order_id
    )
    assert sv[1]["reason"] == "Topped up at the counter" and sv[1]["balanceAfter"]["total"] == 3300


async def test_a_later_page_keeps_the_running_balance_of_the_whole_history(api, state, chain):
    member_id, token = await _member_with_history(api, state, chain)
    async with write_transaction(state.sessionmaker) as session:
        for i in range(1, 6):
            await points.adjust(session, member_id, i * 10, note=f"bonus {i}", staff_id=None)
    seen: list[tuple[int, int]] = []
    after = None
    while True:
        body = (await api.post(MY_LEDGERS, {"n": 2, "a": after}, token=token)).json()
        ledger = body["data"]["me"]["member"]["pointsLedger"]
        seen += [(e["node"]["points"], e["node"]["balanceAfter"]) for e in ledger["edges"]]
        if not ledger["pageInfo"]["hasNextPage"]:
            break
        after = ledger["pageInfo"]["endCursor"]
    assert seen == [(50, 650), (40, 600), (30, 560), (20, 530), (10, 510), (500, 500)]
    bad = (await api.post(MY_LEDGERS, {"n": 2, "a": "nope"}, token=token)).json()
    assert bad["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "reason": "INVALID_INPUT", "field": "after"}
    too_many = (await api.post(MY_LEDGERS, {"n": 101}, token=token)).json()
    assert too_many["errors"][0]["extensions"]["field"] == "first"


async def test_staff_with_member_read_see_members_in_scope_and_nothing_of_others(api, state, chain):
    member_id, _ = await _member_with_history(api, state, chain)
    variables = {"m": gid("Member", member_id)}
    for who in ("hq.admin", "sh01.manager"):
        body = await api.gql(STAFF_LEDGERS, variables, as_=who)
        assert "errors" not in body, (who, body)
        node = body["data"]["node"]
        assert [e["node"] for e in node["pointsLedger"]["edges"]] == [
            {"points": 500, "balanceAfter": 500, "reason": "Welcome gift"}
        ]
        assert node["storedValueLedger"]["edges"][0]["node"] == {"amount": 3300, "balanceAfter": {"total": 3300}}
    # Another store's manager: the member does not exist for them.
    assert (await api.gql(STAFF_LEDGERS, variables, as_="hz02.manager"))["data"]["node"] is None
    # Another member: neither.
    other = await api.member_sign_in("ledger-bob:13800138222")
    assert (await api.post(STAFF_LEDGERS, variables, token=other["tokens"]["accessToken"])).json()["data"][
        "node"
    ] is None


async def test_a_clerk_who_identified_a_member_cannot_read_their_ledgers(api, state, chain):
    """identifyMember gives a clerk the member; their history needs member.read (FORBIDDEN, not someone's data)."""
    await _member_with_history(api, state, chain)
    doc = """mutation($p: String) { identifyMember(input: {phone: $p}) { errors { code }
      member { pointsBalance pointsLedger(first: 5) { edges { node { points } } } } } }"""
    body = await api.gql(doc, {"p": "13800138111"}, as_="sh01.clerk")
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
    assert body["errors"][0]["path"][-1] == "pointsLedger"


HQ_LEDGERS = """query($n: Int!) { members(first: $n) { edges { node { id
  pointsLedger(first: 5) { edges { node { points balanceAfter store { code } order { id } } } }
  storedValueLedger(first: 5) { edges { node { amount issuer { code } } } } } } } }"""


async def test_ledgers_of_a_page_of_members_take_the_same_statements_for_3_and_30_members(api, state, chain):
    async with write_transaction(state.sessionmaker) as session:
        for i in range(30):
            member = Member(name=f"m{i}", level_id=1)
            session.add(member)
            await session.flush()
            for j in range(3):
                await points.adjust(session, member.id, 10 + j, note="seed", staff_id=None)
            await stored_value.top_up(
                session,
                member.id,
                principal=1000,
                bonus=0,
                store_id=chain.stores["SH01"],
                ref_type="counter_top_up",
                ref_id=None,
            )
    token = await api.token("hq.admin")
    counts = {}
    for n in (3, 30):
        with count_statements(state.engine) as counter:
            body = (await api.post(HQ_LEDGERS, {"n": n}, token=token)).json()
        assert "errors" not in body, body
        edges = body["data"]["members"]["edges"]
        assert len(edges) == n
        assert all(len(e["node"]["pointsLedger"]["edges"]) == 3 for e in edges)
        assert all(e["node"]["storedValueLedger"]["edges"][0]["node"]["issuer"] == {"code": "SH01"} for e in edges)
        counts[n] = counter.count
    assert counts[3] == counts[30], counts

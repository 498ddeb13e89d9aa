"""统一订单管理: HQ sees every store's orders, filtered; a store only its own through the same field; the CSV; an
order's timeline (who did what, when); a page of orders with timelines costs the same statements at 10 and 100."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import update

from models import Member, Order, PaymentMethod, RoleScope
from services.access.permissions import BUILTIN_ROLES
from services.access.scope import Viewer, ViewerKind
from services.orders import lifecycle as orders
from services.orders import listing, pos
from services.platform.config import CHAIN_TZ
from services.platform.db import write_transaction
from services.pricing.engine import CartLine
from tests.conftest import count_statements, gid, pk
from tests.factories import list_in_store, make_library

LIST = """query($f: OrderFilterInput, $n: Int) { orders(filter: $f, first: $n) {
  edges { node { id number total status channel fulfilment store { code } } } pageInfo { hasNextPage } } }"""
CSV = "query($f: OrderFilterInput) { ordersCsv(filter: $f) }"


@dataclass
class Given:
    stores: dict[str, str]  # code -> global id
    member: str
    ids: dict[str, str]  # name -> Order global id


def _clerk(chain, store: str) -> Viewer:
    """The store's demo clerk, as the POS sale's viewer (so the sale is theirs in the timeline)."""
    perms = next(r.permissions for r in BUILTIN_ROLES if r.code == "CLERK")
    return Viewer(
        kind=ViewerKind.STAFF,
        staff_id=chain.staff[f"{store.lower()}.clerk"],
        role_code="CLERK",
        role_scope=RoleScope.STORE,
        store_id=chain.stores[store],
        permissions=perms,
    )


async def _given(state, chain) -> Given:
    """Four orders in two cities:
    web_sh01  SH01 (上海) mini-program pickup, paid, member 138****5678, 1500, placed 2026-01-11 00:30 chain time
    pos_sh01  SH01 counter sale, 2 units, 3000, completed
    web_hz01  HZ01 (杭州) mini-program pickup, unpaid, same member, 3 units, 4500, placed 2026-01-10 23:30 chain time
    pos_hz01  HZ01 counter sale, 1 unit, 1500, then refunded in full
    """
    library = await make_library(state, products=1, skus_per_product=1, price=1500)
    sku = library.sku_ids[0]
    sh01, hz01 = chain.stores["SH01"], chain.stores["HZ01"]
    for store in (sh01, hz01):
        await list_in_store(state, store, [sku], on_hand=50)
    async with write_transaction(state.sessionmaker) as session:
        member = Member(name="顾客", level_id=1, phone_prefix="138", phone_last4="5678")
        session.add(member)
        await session.flush()
        as_member = Viewer(kind=ViewerKind.MEMBER, member_id=member.id)
        provider = state.payment_providers["sandbox"]
        web_sh01 = (
            await orders.place_order(session, as_member, provider, orders.PlaceOrder(sh01, [CartLine(sku, 1)], "w1"))
        ).order
        await orders.mark_paid(session, web_sh01.id, web_sh01.created_at)
        web_hz01 = (
            await orders.place_order(session, as_member, provider, orders.PlaceOrder(hz01, [CartLine(sku, 3)], "w2"))
        ).order
        pos_sh01 = await pos.checkout(
            session,
            _clerk(chain, "SH01"),
            pos.Checkout(sh01, "c1", [CartLine(sku, 2)], [pos.Tender(PaymentMethod.CASH, 3000)]),
        )
        pos_hz01 = await pos.checkout(
            session,
            _clerk(chain, "HZ01"),
            pos.Checkout(hz01, "c2", [CartLine(sku, 1)], [pos.Tender(PaymentMethod.CASH, 1500)]),
        )
        for order, local in ((web_sh01, datetime(2026, 1, 11, 0, 30)), (web_hz01, datetime(2026, 1, 10, 23, 30))):
            at = local.replace(tzinfo=CHAIN_TZ)
            await session.execute(update(Order).where(Order.id == order.id).values(created_at=at))
        ids = {"web_sh01": web_sh01.id, "pos_sh01": pos_sh01.id, "web_hz01": web_hz01.id, "pos_hz01": pos_hz01.id}
    return Given(
        stores={"SH01": gid("Store", sh01), "HZ01": gid("Store", hz01)},
        member=gid("Member", member.id),
        ids={k: gid("Order", v) for k, v in ids.items()},
    )


async def _refund(api, given: Given) -> None:
    body = await api.gql(
        'mutation($id: ID!) { refundOrder(input: {idempotencyKey: "r-hz", id: $id}) { errors { code } order { status } } }',
        {"id": given.ids["pos_hz01"]},
        as_="hz01.manager",
    )
    assert body["data"]["refundOrder"] == {"errors": [], "order": {"status": "REFUNDED"}}, body


async def _names(api, given: Given, who: str, f: dict[str, Any] | None) -> set[str]:
    body = await api.gql(LIST, {"f": f, "n": 100}, as_=who)
    assert "errors" not in body, body
    by_id = {v: k for k, v in given.ids.items()}
    return {by_id[e["node"]["id"]] for e in body["data"]["orders"]["edges"] if e["node"]["id"] in by_id}


EVERYTHING = {"web_sh01", "pos_sh01", "web_hz01", "pos_hz01"}


@pytest.mark.parametrize("who", ["hq.admin", "hq.analyst"])
async def test_hq_sees_every_store_and_each_filter_narrows(api, state, chain, who):
    given = await _given(state, chain)
    await _refund(api, given)
    cases: list[tuple[dict[str, Any] | None, set[str]]] = [
        (None, EVERYTHING),
        ({"storeIds": [given.stores["HZ01"]]}, {"web_hz01", "pos_hz01"}),
        ({"storeIds": [given.stores["SH01"], given.stores["HZ01"]]}, EVERYTHING),
        ({"city": "上海"}, {"web_sh01", "pos_sh01"}),
        ({"city": "杭州"}, {"web_hz01", "pos_hz01"}),
        ({"city": "北京"}, set()),
        # Whole days in the chain's time: 2026-01-10 23:30 (15:30 UTC) is the 10th, 2026-01-11 00:30 the 11th.
        ({"from": "2026-01-10", "to": "2026-01-10"}, {"web_hz01"}),
        ({"from": "2026-01-11", "to": "2026-01-11"}, {"web_sh01"}),
        ({"from": "2026-01-10", "to": "2026-01-11"}, {"web_hz01", "web_sh01"}),
        ({"from": "2026-02-01"}, {"pos_sh01", "pos_hz01"}),
        ({"statuses": ["CREATED"]}, {"web_hz01"}),
        ({"statuses": ["PAID", "COMPLETED"]}, {"web_sh01", "pos_sh01"}),
        ({"statuses": ["REFUNDED"]}, {"pos_hz01"}),
        ({"channel": "POS"}, {"pos_sh01", "pos_hz01"}),
        ({"channel": "MINI_PROGRAM"}, {"web_sh01", "web_hz01"}),
        ({"fulfilment": "PICKUP"}, {"web_sh01", "web_hz01"}),
        ({"fulfilment": "IN_STORE"}, {"pos_sh01", "pos_hz01"}),
        ({"memberId": given.member}, {"web_sh01", "web_hz01"}),
        ({"minTotal": 3000}, {"pos_sh01", "web_hz01"}),
        ({"maxTotal": 1500}, {"web_sh01", "pos_hz01"}),
        ({"minTotal": 3000, "maxTotal": 4000}, {"pos_sh01"}),
        ({"hasRefund": True}, {"pos_hz01"}),
        ({"hasRefund": False}, {"web_sh01", "pos_sh01", "web_hz01"}),
        ({"city": "杭州", "channel": "MINI_PROGRAM", "statuses": ["CREATED"]}, {"web_hz01"}),
    ]
    for f, expected in cases:
        assert await _names(api, given, who, f) == expected, f


async def test_the_list_pages_newest_first_and_reports_each_order(api, state, chain):
    given = await _given(state, chain)
    first = await api.gql(LIST, {"f": {"storeIds": [given.stores["SH01"]]}, "n": 1}, as_="hq.admin")
    page = first["data"]["orders"]
    assert page["pageInfo"]["hasNextPage"] is True
    assert page["edges"][0]["node"] == {
        "id": given.ids["pos_sh01"],
        "number": f"ORD{pk(given.ids['pos_sh01']):012d}",
        "total": 3000,
        "status": "COMPLETED",
        "channel": "POS",
        "fulfilment": "IN_STORE",
        "store": {"code": "SH01"},
    }
    too_many = await api.gql(LIST, {"n": 101}, as_="hq.admin")
    assert too_many["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    backwards = await api.gql(LIST, {"f": {"from": "2026-01-12", "to": "2026-01-11"}}, as_="hq.admin")
    assert backwards["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    for far in ({"to": "9999-12-31"}, {"from": "0001-01-01"}):
        assert (await api.gql(LIST, {"f": far}, as_="hq.admin"))["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize("who", ["sh01.manager", "sh01.clerk"])
async def test_store_staff_see_only_their_store_even_when_naming_another(api, state, chain, who):
    given = await _given(state, chain)
    mine = {"web_sh01", "pos_sh01"}
    assert await _names(api, given, who, None) == mine
    assert await _names(api, given, who, {"storeIds": [given.stores["HZ01"]]}) == set()
    assert await _names(api, given, who, {"storeIds": [given.stores["HZ01"], given.stores["SH01"]]}) == mine
    assert await _names(api, given, who, {"city": "杭州"}) == set()
    assert await _names(api, given, who, {"memberId": given.member}) == {"web_sh01"}
    # The tablet's older argument still names its own store, and refuses another's.
    own = await api.gql(
        "query($s: ID!) { orders(storeId: $s) { edges { node { id } } } }", {"s": given.stores["SH01"]}, as_=who
    )
    assert {e["node"]["id"] for e in own["data"]["orders"]["edges"]} == {given.ids[k] for k in mine}
    other = await api.gql(
        "query($s: ID!) { orders(storeId: $s) { edges { node { id } } } }", {"s": given.stores["HZ01"]}, as_=who
    )
    assert other["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    export = await api.gql(CSV, {"f": None}, as_=who)
    assert export["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_members_and_visitors_are_refused(api, state, chain):
    await _given(state, chain)
    member = await api.gql(LIST, {"f": None}, as_="member:hq-orders:13800138000")
    assert member["errors"][0]["extensions"]["code"] == "FORBIDDEN" and member["data"] is None
    anonymous = await api.gql(LIST, {"f": None})
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert (await api.gql(CSV, {"f": None}, as_="member:hq-orders:13800138000"))["errors"][0]["extensions"][
        "code"
    ] == "FORBIDDEN"


async def test_hq_exports_the_filtered_list_as_csv_with_personal_data_masked(api, state, chain, monkeypatch):
    given = await _given(state, chain)
    await _refund(api, given)
    body = await api.gql(CSV, {"f": {"storeIds": [given.stores["HZ01"], given.stores["SH01"]]}}, as_="hq.analyst")
    assert "errors" not in body, body
    rows = list(csv.reader(io.StringIO(body["data"]["ordersCsv"])))
    assert rows[0] == list(listing.CSV_COLUMNS)
    by_no = {r[0]: r for r in rows[1:]}
    assert len(by_no) == 4
    no = {k: f"ORD{pk(v):012d}" for k, v in given.ids.items()}
    assert by_no[no["web_hz01"]] == [
        no["web_hz01"],
        "HZ01",
        "杭州",
        "2026-01-10 23:30:00",
        "MINI_PROGRAM",
        "PICKUP",
        "CREATED",
        "138****5678",
        "3",
        "4500",
        "0",
        "0",
    ]
    assert by_no[no["web_sh01"]][1:3] == ["SH01", "上海"] and by_no[no["web_sh01"]][7] == "138****5678"
    assert by_no[no["pos_hz01"]][4:] == ["POS", "IN_STORE", "REFUNDED", "", "1", "1500", "1500", "1500"]
    assert by_no[no["pos_sh01"]][4:] == ["POS", "IN_STORE", "COMPLETED", "", "2", "3000", "3000", "0"]
    assert "5678" not in body["data"]["ordersCsv"].replace("138****5678", "")
    # Newest first, as the list.
    assert [r[0] for r in rows[1:]] == sorted(by_no, reverse=True)
    refunded = await api.gql(CSV, {"f": {"hasRefund": True}}, as_="hq.admin")
    assert [r[0] for r in list(csv.reader(io.StringIO(refunded["data"]["ordersCsv"])))[1:]] == [no["pos_hz01"]]
    monkeypatch.setattr(listing, "CSV_MAX_ROWS", 3)
    capped = await api.gql(CSV, {"f": None}, as_="hq.admin")
    assert capped["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


PLACE = """mutation($s: ID!, $k: ID!) { placeOrder(input: {storeId: $s, lines: [{skuId: $k, quantity: 2}],
  idempotencyKey: "tl-1"}) { errors { code } order { id } } }"""
TIMELINE = """query($id: ID!) { node(id: $id) { ... on Order { status timeline { kind actor status fromStatus amount
  method at staff { id } } } } }"""


async def test_the_timeline_shows_each_step_with_who_and_when(api, state, chain):
    store = chain.stores["SH01"]
    library = await make_library(state, products=1, skus_per_product=1, price=1500)
    await list_in_store(state, store, library.sku_ids, on_hand=10)
    member = "member:hq-timeline:13900001234"
    placed = await api.gql(PLACE, {"s": gid("Store", store), "k": gid("Sku", library.sku_ids[0])}, as_=member)
    oid = placed["data"]["placeOrder"]["order"]["id"]
    headers, body = state.payment_providers["sandbox"].notification(
        provider_ref=f"ORD{pk(oid):012d}", amount=3000, txn="T-tl"
    )
    assert (await api.http.post("/payments/notify/sandbox", content=body, headers=headers)).json() == {
        "code": "SUCCESS"
    }
    async with state.sessionmaker() as session:
        code = (await session.get(Order, pk(oid))).pickup_code
    hand_over = """mutation($c: String!, $key: String!, $l: [CartLineInput!]) { verifyPickup(input: {code: $c,
      idempotencyKey: $key, lines: $l}) { errors { code } order { status } } }"""
    sku = gid("Sku", library.sku_ids[0])
    first = await api.gql(hand_over, {"c": code, "key": "p1", "l": [{"skuId": sku, "quantity": 1}]}, as_="sh01.clerk")
    assert first["data"]["verifyPickup"] == {"errors": [], "order": {"status": "PAID"}}
    rest = await api.gql(hand_over, {"c": code, "key": "p2", "l": None}, as_="sh01.clerk")
    assert rest["data"]["verifyPickup"] == {"errors": [], "order": {"status": "COMPLETED"}}
    refunded = await api.gql(
        'mutation($id: ID!) { refundOrder(input: {idempotencyKey: "tl-r", id: $id}) { errors { code } } }',
        {"id": oid},
        as_="sh01.manager",
    )
    assert refunded["data"]["refundOrder"]["errors"] == []
    seen = await api.gql(TIMELINE, {"id": oid}, as_="hq.admin")
    steps = seen["data"]["node"]["timeline"]
    clerk, manager = gid("Staff", chain.staff["sh01.clerk"]), gid("Staff", chain.staff["sh01.manager"])
    assert [
        (
            s["kind"],
            s["actor"],
            s["fromStatus"],
            s["status"],
            s["amount"],
            s["method"],
            s["staff"]["id"] if s["staff"] else None,
        )
        for s in steps
    ] == [
        ("PLACED", "MEMBER", None, "CREATED", None, None, None),
        ("PAYMENT", "MEMBER", None, None, 3000, "WECHAT_PAY", None),
        ("STATUS", "MEMBER", "CREATED", "PAID", None, None, None),
        ("PICKUP", "STAFF", "PAID", "PAID", None, None, clerk),
        ("PICKUP", "STAFF", "PAID", "COMPLETED", None, None, clerk),
        ("REFUND", "STAFF", None, None, 3000, None, manager),
        ("STATUS", "STAFF", "COMPLETED", "REFUNDED", None, None, manager),
    ]
    times = [datetime.fromisoformat(s["at"]) for s in steps]
    assert times == sorted(times) and all(t.tzinfo is not None for t in times)
    # The store's own staff see the same steps; another store's see no such order.
    assert (await api.gql(TIMELINE, {"id": oid}, as_="sh01.clerk"))["data"]["node"]["timeline"][3]["kind"] == "PICKUP"
    assert (await api.gql(TIMELINE, {"id": oid}, as_="sh02.manager"))["data"]["node"] is None


async def test_hq_list_with_timelines_costs_the_same_statements_for_10_and_100_orders(api, state, chain):
    library = await make_library(state, products=1, skus_per_product=1, price=1000)
    sku = library.sku_ids[0]
    stores = [chain.stores[c] for c in ("SH01", "SH02", "HZ01", "SZ01")]
    for store in stores:
        await list_in_store(state, store, [sku], on_hand=500)
    async with write_transaction(state.sessionmaker) as session:
        member = Member(name="常客", level_id=1, phone_prefix="138", phone_last4="0000")
        session.add(member)
        await session.flush()
        viewer = Viewer(kind=ViewerKind.MEMBER, member_id=member.id)
        for i in range(100):
            placed = await orders.place_order(
                session,
                viewer,
                state.payment_providers["sandbox"],
                orders.PlaceOrder(stores[i % 4], [CartLine(sku, 1)], f"n-{i}"),
            )
            if i % 2:
                await orders.mark_paid(session, placed.order.id, placed.order.created_at)
    query = """query($n: Int!) { orders(first: $n, filter: {channel: MINI_PROGRAM}) { edges { node { id number total
      status store { code city } member { name } lines { quantity sku { barcode } }
      timeline { kind actor status fromStatus amount at staff { id } } } } } }"""
    token = await api.token("hq.admin")
    counts = {}
    for n in (10, 100):
        with count_statements(state.engine) as counter:
            body = (await api.post(query, {"n": n}, token=token)).json()
        assert "errors" not in body, body
        edges = body["data"]["orders"]["edges"]
        assert len(edges) == n and len({e["node"]["store"]["code"] for e in edges}) == 4
        # Unpaid: placed; paid (straight through mark_paid, no provider payment row): placed, then CREATED -> PAID.
        assert {tuple(s["kind"] for s in e["node"]["timeline"]) for e in edges} == {("PLACED",), ("PLACED", "STATUS")}
        counts[n] = counter.count
    assert counts[10] == counts[100], counts


async def test_a_counter_sale_timeline_names_the_clerk_and_the_refunding_manager(api, state, chain):
    given = await _given(state, chain)
    await _refund(api, given)
    seen = await api.gql(TIMELINE, {"id": given.ids["pos_hz01"]}, as_="hq.analyst")
    clerk, manager = gid("Staff", chain.staff["hz01.clerk"]), gid("Staff", chain.staff["hz01.manager"])
    steps = [
        (s["kind"], s["actor"], s["fromStatus"], s["status"], s["amount"], s["staff"]["id"] if s["staff"] else None)
        for s in seen["data"]["node"]["timeline"]
    ]
    assert steps == [
        ("PLACED", "STAFF", None, "CREATED", None, clerk),
        ("PAYMENT", "STAFF", None, None, 1500, clerk),
        ("STATUS", "STAFF", "CREATED", "PAID", None, clerk),
        ("STATUS", "STAFF", "PAID", "COMPLETED", None, clerk),
        ("REFUND", "STAFF", None, None, 1500, manager),
        ("STATUS", "STAFF", "COMPLETED", "REFUNDED", None, manager),
    ]
    # An order the expiry job cancels: the chain itself moved it.
    async with write_transaction(state.sessionmaker) as session:
        await orders.expire(session, pk(given.ids["web_hz01"]), datetime(2100, 1, 1, tzinfo=CHAIN_TZ))
    expired = await api.gql(TIMELINE, {"id": given.ids["web_hz01"]}, as_="hq.admin")
    assert [(s["kind"], s["actor"], s["status"]) for s in expired["data"]["node"]["timeline"]] == [
        ("PLACED", "MEMBER", "CREATED"),
        ("STATUS", "SYSTEM", "CANCELLED"),
    ]

"""A transfer (调拨) walks requested -> approved -> shipped -> received; each step by the right role of the right store."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import StockLevel, StockMovement
from tests.conftest import gid
from tests.factories import list_in_store, make_library

REQUEST = """mutation($idempotencyKey: String!, $from: ID!, $to: ID!, $lines: [StockLineInput!]!) {
  requestTransfer(input: {idempotencyKey: $idempotencyKey, fromStoreId: $from, toStoreId: $to, lines: $lines, note: "周末备货"}) {
    errors { code field } transfer { id status } } }"""
DECIDE = "mutation($id: ID!, $ok: Boolean!) { decideTransfer(input: {id: $id, approve: $ok}) { errors { code } transfer { status } } }"
SHIP = "mutation($idempotencyKey: String!, $id: ID!, $lines: [StockLineInput!]) { shipTransfer(input: {idempotencyKey: $idempotencyKey, id: $id, lines: $lines}) { errors { code } transfer { status } } }"
RECEIVE = """mutation($idempotencyKey: String!, $id: ID!, $lines: [StockLineInput!]) { receiveTransfer(input: {idempotencyKey: $idempotencyKey, id: $id, lines: $lines}) {
  errors { code } transfer { status lines { quantity shippedQuantity receivedQuantity difference } } } }"""
CANCEL = "mutation($id: ID!) { cancelTransfer(input: {id: $id}) { errors { code } transfer { status } } }"


def codes(body):
    return {e["extensions"]["code"] for e in body.get("errors", [])}


async def _levels(state, sku):
    async with state.sessionmaker() as session:
        rows = (await session.scalars(select(StockLevel).where(StockLevel.sku_id == sku))).all()
        moves = (await session.scalars(select(StockMovement).where(StockMovement.ref_type == "transfer"))).all()
    return {r.store_id: r.on_hand for r in rows}, [(m.store_id, m.kind.value, m.quantity) for m in moves]


async def given_sh01_has_stock(state, chain):
    library = await make_library(state, products=1, skus_per_product=1)
    sku = library.sku_ids[0]
    await list_in_store(state, chain.stores["SH01"], [sku], on_hand=20)
    await list_in_store(state, chain.stores["SH02"], [sku], on_hand=1)
    return sku


@pytest.mark.postgres_too
async def test_a_transfer_walks_every_state_and_moves_stock_out_and_in_exactly_once(api, state, chain):
    sku = await given_sh01_has_stock(state, chain)
    sh01, sh02 = chain.stores["SH01"], chain.stores["SH02"]
    lines = [{"skuId": gid("Sku", sku), "quantity": 8}]
    requested = await api.gql(
        REQUEST, {"from": gid("Store", sh01), "to": gid("Store", sh02), "lines": lines}, as_="sh02.manager"
    )
    transfer = requested["data"]["requestTransfer"]["transfer"]
    assert transfer["status"] == "REQUESTED"
    tid = transfer["id"]

    # Wrong roles and wrong stores are refused at every step.
    assert codes(await api.gql(DECIDE, {"id": tid, "ok": True}, as_="sh02.manager")) == {"FORBIDDEN"}
    assert codes(await api.gql(DECIDE, {"id": tid, "ok": True}, as_="hq.operator")) == {"FORBIDDEN"}
    approved = await api.gql(DECIDE, {"id": tid, "ok": True}, as_="hq.admin")
    assert approved["data"]["decideTransfer"]["transfer"]["status"] == "APPROVED"
    assert (await api.gql(DECIDE, {"id": tid, "ok": False}, as_="hq.admin"))["data"]["decideTransfer"]["errors"] == [
        {"code": "INVALID_TRANSITION"}
    ]
    assert codes(await api.gql(SHIP, {"id": tid}, as_="sh02.manager")) == {"FORBIDDEN"}
    assert codes(await api.gql(SHIP, {"id": tid}, as_="sh01.clerk")) == {"FORBIDDEN"}
    early = await api.gql(RECEIVE, {"id": tid}, as_="sh02.manager")  # the right store, but not shipped yet
    assert early["data"]["receiveTransfer"]["errors"] == [{"code": "INVALID_TRANSITION"}]
    levels, moves = await _levels(state, sku)
    assert levels == {sh01: 20, sh02: 1} and moves == []

    shipped = await api.gql(SHIP, {"id": tid}, as_="sh01.manager")
    assert shipped["data"]["shipTransfer"]["transfer"]["status"] == "SHIPPED"
    again = await api.gql(SHIP, {"id": tid}, as_="sh01.manager")
    assert again["data"]["shipTransfer"]["errors"] == [{"code": "INVALID_TRANSITION"}]
    assert (await api.gql(CANCEL, {"id": tid}, as_="sh02.manager"))["data"]["cancelTransfer"]["errors"] == [
        {"code": "INVALID_TRANSITION"}
    ]
    assert codes(await api.gql(RECEIVE, {"id": tid}, as_="sh01.manager")) == {"FORBIDDEN"}
    # A store at neither end does not see the transfer at all: its id behaves as one that does not exist.
    outsider = await api.gql(RECEIVE, {"id": tid}, as_="sh03.manager")
    assert outsider["data"]["receiveTransfer"]["errors"] == [{"code": "NOT_FOUND"}]
    levels, _ = await _levels(state, sku)
    assert levels == {sh01: 12, sh02: 1}

    received = await api.gql(
        RECEIVE, {"id": tid, "lines": [{"skuId": gid("Sku", sku), "quantity": 7}]}, as_="sh02.manager"
    )
    done = received["data"]["receiveTransfer"]["transfer"]
    assert done["status"] == "RECEIVED"
    assert done["lines"] == [{"quantity": 8, "shippedQuantity": 8, "receivedQuantity": 7, "difference": 1}]
    assert (await api.gql(RECEIVE, {"id": tid}, as_="sh02.manager"))["data"]["receiveTransfer"]["errors"] == [
        {"code": "INVALID_TRANSITION"}
    ]
    levels, moves = await _levels(state, sku)
    assert levels == {sh01: 12, sh02: 8}
    assert sorted(moves) == sorted([(sh01, "TRANSFER_OUT", -8), (sh02, "TRANSFER_IN", 7)])


async def test_wrong_state_receive_is_a_coded_error(api, state, chain):
    sku = await given_sh01_has_stock(state, chain)
    lines = [{"skuId": gid("Sku", sku), "quantity": 1}]
    body = await api.gql(
        REQUEST,
        {"from": gid("Store", chain.stores["SH01"]), "to": gid("Store", chain.stores["SH02"]), "lines": lines},
        as_="sh02.manager",
    )
    tid = body["data"]["requestTransfer"]["transfer"]["id"]
    assert (await api.gql(RECEIVE, {"id": tid}, as_="sh02.manager"))["data"]["receiveTransfer"]["errors"] == [
        {"code": "INVALID_TRANSITION"}
    ]


async def test_rejected_and_cancelled_transfers_move_nothing(api, state, chain):
    sku = await given_sh01_has_stock(state, chain)
    args = {
        "from": gid("Store", chain.stores["SH01"]),
        "to": gid("Store", chain.stores["SH02"]),
        "lines": [{"skuId": gid("Sku", sku), "quantity": 2}],
    }
    first = (await api.gql(REQUEST, args, as_="sh02.manager"))["data"]["requestTransfer"]["transfer"]["id"]
    second = (await api.gql(REQUEST, args, as_="hq.admin"))["data"]["requestTransfer"]["transfer"]["id"]
    assert (await api.gql(DECIDE, {"id": first, "ok": False}, as_="hq.admin"))["data"]["decideTransfer"]["transfer"][
        "status"
    ] == "REJECTED"
    assert codes(await api.gql(CANCEL, {"id": second}, as_="sh01.manager")) == {"FORBIDDEN"}
    assert (await api.gql(CANCEL, {"id": second}, as_="sh02.manager"))["data"]["cancelTransfer"]["transfer"][
        "status"
    ] == "CANCELLED"
    assert (await api.gql(SHIP, {"id": first}, as_="sh01.manager"))["data"]["shipTransfer"]["errors"] == [
        {"code": "INVALID_TRANSITION"}
    ]
    levels, moves = await _levels(state, sku)
    assert moves == [] and levels[chain.stores["SH01"]] == 20


async def test_a_store_cannot_request_stock_for_another_store_or_ship_more_than_it_has(api, state, chain):
    sku = await given_sh01_has_stock(state, chain)
    for_other = await api.gql(
        REQUEST,
        {
            "from": gid("Store", chain.stores["SH01"]),
            "to": gid("Store", chain.stores["SH03"]),
            "lines": [{"skuId": gid("Sku", sku), "quantity": 1}],
        },
        as_="sh02.manager",
    )
    assert codes(for_other) == {"FORBIDDEN"}
    big = await api.gql(
        REQUEST,
        {
            "from": gid("Store", chain.stores["SH01"]),
            "to": gid("Store", chain.stores["SH02"]),
            "lines": [{"skuId": gid("Sku", sku), "quantity": 50}],
        },
        as_="sh02.manager",
    )
    tid = big["data"]["requestTransfer"]["transfer"]["id"]
    await api.gql(DECIDE, {"id": tid, "ok": True}, as_="hq.admin")
    short = await api.gql(SHIP, {"id": tid}, as_="sh01.manager")
    assert short["data"]["shipTransfer"]["errors"] == [{"code": "OUT_OF_STOCK"}]
    listing = await api.gql(
        "query($id: ID!) { node(id: $id) { ... on Transfer { status } } }", {"id": tid}, as_="sh01.manager"
    )
    assert listing["data"]["node"]["status"] == "APPROVED"


async def test_transfer_suggestions_prefer_surplus_in_the_same_city_nearest_first(api, state, chain):
    library = await make_library(state, products=1, skus_per_product=1)
    sku = library.sku_ids[0]
    await list_in_store(state, chain.stores["SH02"], [sku], on_hand=1)  # short (line 5)
    await list_in_store(state, chain.stores["SH01"], [sku], on_hand=40)  # 2.4 km away
    await list_in_store(state, chain.stores["SH04"], [sku], on_hand=40)  # 5.5 km away
    await list_in_store(state, chain.stores["HZ01"], [sku], on_hand=400)  # another city
    await list_in_store(state, chain.stores["SH03"], [sku], on_hand=6)  # no surplus
    body = await api.gql(
        "query($s: ID!) { transferSuggestions(storeId: $s) { fromStore { code } quantity shortBy sameCity distanceKm } }",
        {"s": gid("Store", chain.stores["SH02"])},
        as_="sh02.manager",
    )
    rows = body["data"]["transferSuggestions"]
    assert [r["fromStore"]["code"] for r in rows] == ["SH01", "SH04", "HZ01"]
    assert rows[0]["sameCity"] and not rows[2]["sameCity"]
    assert rows[0]["shortBy"] == 9 and rows[0]["quantity"] == 9


async def test_suggestions_do_not_show_another_stores_count_to_store_staff(api, state, chain):
    library = await make_library(state, products=1, skus_per_product=1)
    sku = library.sku_ids[0]
    await list_in_store(state, chain.stores["SH02"], [sku], on_hand=1)
    await list_in_store(state, chain.stores["SH01"], [sku], on_hand=40)
    query = "query($s: ID!) { transferSuggestions(storeId: $s) { fromStore { code } availableThere quantity } }"
    store = await api.gql(query, {"s": gid("Store", chain.stores["SH02"])}, as_="sh02.manager")
    hq = await api.gql(query, {"s": gid("Store", chain.stores["SH02"])}, as_="hq.analyst")
    assert store["data"]["transferSuggestions"] == [
        {"fromStore": {"code": "SH01"}, "availableThere": None, "quantity": 9}
    ]
    assert hq["data"]["transferSuggestions"][0]["availableThere"] == 40

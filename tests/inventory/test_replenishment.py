"""Warehouses and replenishment, by role over HTTP: a store asks a warehouse (with the suggestion), HQ approves
with an edit, HQ ships (the warehouse's sender: HQ with stock.adjust, or staff posted at the warehouse), the
store receives one line short and one damaged, and both ledgers reconcile; another store cannot see or act on it.
Purchase receipts set the moving average cost exactly, once per key. A warehouse is invisible to members and
sells nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from models import AdjustmentReason, MovementKind, Sku, StockLevel, StockMovement
from services.inventory import replenishment, stock
from services.inventory.purchases import moving_average
from services.platform.db import write_transaction
from tests.conftest import gid, pk
from tests.factories import list_in_store, make_library

CREATE_WAREHOUSE = """mutation { createStore(input: {code: "WH-EAST", name: "华东仓", city: "上海",
  address: "嘉定区仓库路1号", lat: 31.38, lng: 121.25, kind: WAREHOUSE}) { errors { code } store { id kind status } } }"""
OPEN = "mutation($id: ID!) { setStoreStatus(input: {id: $id, status: OPEN}) { errors { code } } }"
BOUNDS = """mutation($s: ID!, $k: ID!, $min: Int, $max: Int) { setStockBounds(input: {storeId: $s, skuId: $k,
  minLevel: $min, maxLevel: $max}) { errors { code } suggestion { available minLevel maxLevel soldLast14Days quantity } } }"""
SUGGEST = (
    """query($s: ID!) { replenishmentSuggestions(storeId: $s) { sku { id } available soldLast14Days quantity } }"""
)
REQUEST = """mutation($s: ID!, $w: ID!, $idempotencyKey: String!) { requestReplenishment(input: {storeId: $s, warehouseId: $w,
  wantedDate: "2026-12-31", idempotencyKey: $idempotencyKey}) { errors { code field } transfer { id status purpose wantedDate
  lines { sku { id } quantity suggestedQuantity requestedQuantity } } } }"""
PENDING = (
    """{ transfers(filter: {status: REQUESTED, purpose: REPLENISHMENT}) { edges { node { id toStore { code } } } } }"""
)
DECIDE = """mutation($id: ID!, $lines: [StockLineInput!]) { decideTransfer(input: {id: $id, approve: true, lines: $lines}) {
  errors { code } transfer { status lines { sku { id } quantity requestedQuantity } } } }"""
SHIP = """mutation($id: ID!, $idempotencyKey: String!) { shipTransfer(input: {id: $id, idempotencyKey: $idempotencyKey}) {
  errors { code } transfer { status } } }"""
RECEIVE = """mutation($id: ID!, $idempotencyKey: String!, $lines: [StockLineInput!], $damaged: [StockLineInput!]) {
  receiveTransfer(input: {id: $id, idempotencyKey: $idempotencyKey, lines: $lines, damaged: $damaged}) { errors { code field }
  transfer { status lines { sku { id } shippedQuantity receivedQuantity damagedQuantity shortQuantity } } } }"""
CANCEL = "mutation($id: ID!) { cancelTransfer(input: {id: $id}) { errors { code } } }"
PURCHASE = """mutation($w: ID!, $lines: [PurchaseLineInput!]!, $idempotencyKey: String!) { receivePurchase(input: {warehouseId: $w,
  supplierName: "上海乳业", supplierCode: "SUP-01", lines: $lines, idempotencyKey: $idempotencyKey}) { errors { code field }
  receipt { supplierName warehouse { code } lines { sku { id } quantity unitCost onHandBefore costBefore costAfter } } } }"""


async def _warehouse(api) -> str:
    created = (await api.gql(CREATE_WAREHOUSE, as_="hq.admin"))["data"]["createStore"]
    assert created["errors"] == [] and created["store"]["kind"] == "WAREHOUSE"
    wid: str = created["store"]["id"]
    assert (await api.gql(OPEN, {"id": wid}, as_="hq.admin"))["data"]["setStoreStatus"]["errors"] == []
    return wid


async def _given(api, state, chain) -> dict[str, Any]:
    """A warehouse with 100 of A, B, C; SH01 has 10 of A (7 sold since), 2 of B and 2 of C."""
    wid = await _warehouse(api)
    library = await make_library(state, products=1, skus_per_product=3)
    a, b, c = library.sku_ids
    await list_in_store(state, chain.stores["SH01"], [a, b, c], on_hand=2)
    async with write_transaction(state.sessionmaker) as session:
        await stock.receive(session, pk(wid), [stock.Line(s, 100) for s in (a, b, c)], stock.Ref("seed"))
        await stock.receive(session, chain.stores["SH01"], [stock.Line(a, 8)], stock.Ref("seed"))
        await stock.sell(session, chain.stores["SH01"], [stock.Line(a, 7)], stock.Ref("order"))
    return {"w": wid, "s": gid("Store", chain.stores["SH01"]), "a": a, "b": b, "c": c}


def _by_sku(lines: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {pk(line["sku"]["id"]): line for line in lines}


async def _on_hand(state, store_id: int, sku_id: int) -> tuple[int, int]:
    """(the level's on hand, the sum of its movements)."""
    async with state.sessionmaker() as session:
        level = await session.scalar(
            select(StockLevel.on_hand).where(StockLevel.store_id == store_id, StockLevel.sku_id == sku_id)
        )
        moved = await session.scalar(
            select(func.sum(StockMovement.quantity)).where(
                StockMovement.store_id == store_id, StockMovement.sku_id == sku_id
            )
        )
    return int(level or 0), int(moved or 0)


def test_the_suggestion_refills_to_max_or_a_week_of_sales_once_at_the_reorder_point():
    assert replenishment.suggest_quantity(3, 5, 20, 7) == 17  # at min: up to max
    assert replenishment.suggest_quantity(6, 5, 20, 7) == 0  # above min and above 3 days of sales (2)
    assert replenishment.suggest_quantity(4, 2, 10, 56) == 24  # 3 days of sales is 12 > 4: refill to a week (28)
    assert replenishment.suggest_quantity(0, None, None, 0) == 0  # nothing known, nothing asked


async def test_a_store_requests_hq_edits_and_approves_hq_ships_the_store_receives_short_and_damaged(api, state, chain):
    g = await _given(api, state, chain)
    wid, sid, a, b = pk(g["w"]), chain.stores["SH01"], g["a"], g["b"]
    bounds = await api.gql(BOUNDS, {"s": g["s"], "k": gid("Sku", a), "min": 5, "max": 20}, as_="sh01.manager")
    assert bounds["data"]["setStockBounds"]["suggestion"] == {
        "available": 3,
        "minLevel": 5,
        "maxLevel": 20,
        "soldLast14Days": 7,
        "quantity": 17,
    }
    await api.gql(BOUNDS, {"s": g["s"], "k": gid("Sku", b), "min": 4, "max": 10}, as_="sh01.manager")
    shown = (await api.gql(SUGGEST, {"s": g["s"]}, as_="sh01.manager"))["data"]["replenishmentSuggestions"]
    assert {pk(x["sku"]["id"]): x["quantity"] for x in shown} == {a: 17, b: 8}  # C has no bounds

    asked = (await api.gql(REQUEST, {"s": g["s"], "w": g["w"]}, as_="sh01.manager"))["data"]["requestReplenishment"]
    assert asked["errors"] == []
    transfer = asked["transfer"]
    assert (transfer["status"], transfer["purpose"], transfer["wantedDate"]) == (
        "REQUESTED",
        "REPLENISHMENT",
        "2026-12-31",
    )
    lines = _by_sku(transfer["lines"])
    assert (lines[a]["quantity"], lines[a]["suggestedQuantity"], lines[b]["quantity"]) == (17, 17, 8)
    tid = transfer["id"]

    pending = (await api.gql(PENDING, as_="hq.admin"))["data"]["transfers"]["edges"]
    assert [(e["node"]["id"], e["node"]["toStore"]["code"]) for e in pending] == [(tid, "SH01")]
    decided = await api.gql(DECIDE, {"id": tid, "lines": [{"skuId": gid("Sku", a), "quantity": 15}]}, as_="hq.admin")
    approved = decided["data"]["decideTransfer"]["transfer"]
    assert approved["status"] == "APPROVED"
    assert _by_sku(approved["lines"])[a] == {"sku": {"id": gid("Sku", a)}, "quantity": 15, "requestedQuantity": 17}

    ship = {"id": tid, "idempotencyKey": "wh-ship-1"}
    assert (await api.gql(SHIP, ship, as_="hq.admin"))["data"]["shipTransfer"]["transfer"]["status"] == "SHIPPED"
    assert (await api.gql(SHIP, ship, as_="hq.admin"))["data"]["shipTransfer"]["errors"] == []  # replay: no move
    assert (await _on_hand(state, wid, a))[0] == 85 and (await _on_hand(state, wid, b))[0] == 92

    received = await api.gql(
        RECEIVE,
        {
            "id": tid,
            "idempotencyKey": "sh01-in-1",
            "lines": [{"skuId": gid("Sku", a), "quantity": 13}, {"skuId": gid("Sku", b), "quantity": 6}],
            "damaged": [{"skuId": gid("Sku", b), "quantity": 2}],
        },
        as_="sh01.manager",
    )
    done = received["data"]["receiveTransfer"]
    assert done["errors"] == [] and done["transfer"]["status"] == "RECEIVED"
    got = _by_sku(done["transfer"]["lines"])
    assert (got[a]["receivedQuantity"], got[a]["damagedQuantity"], got[a]["shortQuantity"]) == (13, 0, 2)
    assert (got[b]["receivedQuantity"], got[b]["damagedQuantity"], got[b]["shortQuantity"]) == (6, 2, 0)

    # Short A went back to the warehouse; damaged B came back and was written off there; on hand = sum of movements.
    assert await _on_hand(state, wid, a) == (87, 87)
    assert await _on_hand(state, wid, b) == (92, 92)
    assert await _on_hand(state, sid, a) == (16, 16)
    assert await _on_hand(state, sid, b) == (8, 8)
    async with state.sessionmaker() as session:
        write_off = (
            await session.execute(
                select(StockMovement.quantity, StockMovement.reason).where(
                    StockMovement.store_id == wid, StockMovement.kind == MovementKind.ADJUSTMENT
                )
            )
        ).all()
    assert [tuple(r) for r in write_off] == [(-2, AdjustmentReason.DAMAGE)]


async def test_another_stores_staff_see_and_touch_nothing_of_it(api, state, chain):
    g = await _given(api, state, chain)
    asked = await api.gql(
        "mutation($s: ID!, $w: ID!, $k: ID!, $idempotencyKey: String!) { requestReplenishment(input: {storeId: $s, warehouseId: $w,"
        " lines: [{skuId: $k, quantity: 5}], idempotencyKey: $idempotencyKey}) { errors { code } transfer { id } } }",
        {"s": g["s"], "w": g["w"], "k": gid("Sku", g["a"])},
        as_="sh01.manager",
    )
    tid = asked["data"]["requestReplenishment"]["transfer"]["id"]
    seen = await api.gql("query($id: ID!) { node(id: $id) { id } }", {"id": tid}, as_="sh02.manager")
    assert seen["data"]["node"] is None
    listed = await api.gql("{ transfers { edges { node { id } } } }", as_="sh02.manager")
    assert tid not in [e["node"]["id"] for e in listed["data"]["transfers"]["edges"]]
    assert (await api.gql(CANCEL, {"id": tid}, as_="sh02.manager"))["data"]["cancelTransfer"]["errors"] == [
        {"code": "NOT_FOUND"}
    ]
    await api.gql(DECIDE, {"id": tid}, as_="hq.admin")
    await api.gql(SHIP, {"id": tid}, as_="hq.admin")
    refused = await api.gql(RECEIVE, {"id": tid}, as_="sh02.manager")
    assert refused["data"]["receiveTransfer"]["errors"] == [{"code": "NOT_FOUND", "field": "id"}]
    # Another store asking the warehouse on SH01's behalf is refused; SH01's own ask still stands.
    other = await api.gql(REQUEST, {"s": g["s"], "w": g["w"]}, as_="sh02.manager")
    assert other.get("data") is None or other["data"]["requestReplenishment"] is None
    assert other["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_purchase_receipt_sets_the_moving_average_cost_exactly_once(api, state, chain):
    wid = await _warehouse(api)
    library = await make_library(state, products=1, skus_per_product=2)  # cost 500 fen each
    a, b = library.sku_ids
    await list_in_store(state, chain.stores["SH01"], [a, b], on_hand=10)
    await list_in_store(state, chain.stores["SH02"], [a, b], on_hand=20)
    lines = [
        {"skuId": gid("Sku", a), "quantity": 10, "unitCost": 733},
        {"skuId": gid("Sku", b), "quantity": 10, "unitCost": 502},
    ]
    first = await api.gql(PURCHASE, {"w": wid, "lines": lines, "idempotencyKey": "po-1"}, as_="hq.admin")
    receipt = first["data"]["receivePurchase"]["receipt"]
    got = _by_sku(receipt["lines"])
    # (30 x 500 + 10 x 733) / 40 = 558.25 -> 558; (30 x 500 + 10 x 502) / 40 = 500.5 -> 501 (halves up).
    assert (got[a]["onHandBefore"], got[a]["costBefore"], got[a]["costAfter"]) == (30, 500, 558)
    assert (got[b]["onHandBefore"], got[b]["costBefore"], got[b]["costAfter"]) == (30, 500, 501)
    assert moving_average(30, 500, 10, 733) == 558 and moving_average(0, 0, 5, 1234) == 1234
    assert receipt["warehouse"]["code"] == "WH-EAST"

    again = await api.gql(PURCHASE, {"w": wid, "lines": lines, "idempotencyKey": "po-1"}, as_="hq.admin")
    assert again["data"]["receivePurchase"]["receipt"] == receipt
    async with state.sessionmaker() as session:
        costs = dict((await session.execute(select(Sku.id, Sku.cost_price).where(Sku.id.in_([a, b])))).all())
    assert costs == {a: 558, b: 501}
    assert await _on_hand(state, pk(wid), a) == (10, 10)  # moved in once
    changed = await api.gql(PURCHASE, {"w": wid, "lines": lines[:1], "idempotencyKey": "po-1"}, as_="hq.admin")
    assert changed["data"]["receivePurchase"]["errors"][0]["code"] == "IDEMPOTENCY_KEY_REUSED"

    at_store = await api.gql(
        PURCHASE, {"w": gid("Store", chain.stores["SH01"]), "lines": lines, "idempotencyKey": "po-2"}, as_="hq.admin"
    )
    assert at_store["data"]["receivePurchase"]["errors"][0]["code"] == "NOT_A_WAREHOUSE"
    manager = await api.gql(PURCHASE, {"w": wid, "lines": lines, "idempotencyKey": "po-3"}, as_="sh01.manager")
    assert manager["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_warehouse_is_invisible_to_members_and_sells_nothing(api, state, chain):
    wid = await _warehouse(api)
    member = "member:wh-visitor:13800138001"
    near = await api.gql(
        "{ nearbyStores(lat: 31.38, lng: 121.25, radiusKm: 50, first: 50) { edges { node { id } } } }", as_=member
    )
    assert wid not in [e["node"]["id"] for e in near["data"]["nearbyStores"]["edges"]]
    listed = await api.gql("{ stores(first: 100) { edges { node { id } } } }", as_=member)
    assert wid not in [e["node"]["id"] for e in listed["data"]["stores"]["edges"]]
    assert (await api.gql("query($id: ID!) { store(id: $id) { id } }", {"id": wid}, as_=member))["data"][
        "store"
    ] is None
    assert (await api.gql("query($id: ID!) { store(id: $id) { id } }", {"id": wid}))["data"]["store"] is None
    staff = await api.gql("query($id: ID!) { store(id: $id) { kind } }", {"id": wid}, as_="sh01.manager")
    assert staff["data"]["store"] == {"kind": "WAREHOUSE"}  # a store picks the warehouse it asks

    library = await make_library(state, products=1, skus_per_product=1)
    sku = gid("Sku", library.sku_ids[0])
    async with write_transaction(state.sessionmaker) as session:
        await stock.receive(session, pk(wid), [stock.Line(library.sku_ids[0], 5)], stock.Ref("seed"))
    placed = await api.gql(
        "mutation($s: ID!, $k: ID!, $idempotencyKey: String!) { placeOrder(input: {storeId: $s, lines: [{skuId: $k, quantity: 1}],"
        " idempotencyKey: $idempotencyKey}) { errors { code field } order { id } } }",
        {"s": wid, "k": sku},
        as_=member,
    )
    assert placed["data"]["placeOrder"]["errors"] == [{"code": "WAREHOUSE_CANNOT_SELL", "field": "storeId"}]
    pos = await api.gql(
        'mutation($s: ID!, $k: ID!) { posCheckout(input: {clientOrderId: "wh-1", storeId: $s,'
        " lines: [{skuId: $k, quantity: 1}], tenders: [{method: CASH, amount: 1000}]}) { errors { code field } } }",
        {"s": wid, "k": sku},
        as_="hq.admin",
    )
    assert pos["data"]["posCheckout"]["errors"] == [{"code": "WAREHOUSE_CANNOT_SELL", "field": "storeId"}]
    assert await _on_hand(state, pk(wid), library.sku_ids[0]) == (5, 5)


async def test_staff_posted_at_the_warehouse_ship_it_and_the_receiving_store_may_not(api, state, chain):
    g = await _given(api, state, chain)
    made = await api.gql(
        'mutation($r: ID!, $s: ID!) { createStaff(input: {username: "wh.keeper", displayName: "仓管",'
        ' password: "demo-pass-2026", roleId: $r, storeId: $s}) { errors { code } } }',
        {"r": gid("Role", chain.roles["STORE_MANAGER"]), "s": g["w"]},
        as_="hq.admin",
    )
    assert made["data"]["createStaff"]["errors"] == []
    asked = await api.gql(
        "mutation($s: ID!, $w: ID!, $k: ID!, $idempotencyKey: String!) { requestReplenishment(input: {storeId: $s,"
        " warehouseId: $w, lines: [{skuId: $k, quantity: 5}], idempotencyKey: $idempotencyKey}) { transfer { id } } }",
        {"s": g["s"], "w": g["w"], "k": gid("Sku", g["a"])},
        as_="sh01.manager",
    )
    tid = asked["data"]["requestReplenishment"]["transfer"]["id"]
    await api.gql(DECIDE, {"id": tid}, as_="hq.admin")
    refused = await api.gql(SHIP, {"id": tid}, as_="sh01.manager")
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    shipped = await api.gql(SHIP, {"id": tid}, as_="wh.keeper")
    assert shipped["data"]["shipTransfer"]["transfer"]["status"] == "SHIPPED"
    assert await _on_hand(state, pk(g["w"]), g["a"]) == (95, 95)
    # Only damage named: the rest arrived.
    damaged = [{"skuId": gid("Sku", g["a"]), "quantity": 1}]
    received = await api.gql(RECEIVE, {"id": tid, "damaged": damaged}, as_="sh01.manager")
    line = received["data"]["receiveTransfer"]["transfer"]["lines"][0]
    assert (line["receivedQuantity"], line["damagedQuantity"], line["shortQuantity"]) == (4, 1, 0)
    assert await _on_hand(state, chain.stores["SH01"], g["a"]) == (7, 7)
    assert await _on_hand(state, pk(g["w"]), g["a"]) == (95, 95)
    # The warehouse's own staff cannot sell there either.
    pos = await api.gql(
        'mutation($s: ID!, $k: ID!) { posCheckout(input: {clientOrderId: "wh-2", storeId: $s,'
        " lines: [{skuId: $k, quantity: 1}], tenders: [{method: CASH, amount: 1000}]}) { errors { code } } }",
        {"s": g["w"], "k": gid("Sku", g["a"])},
        as_="wh.keeper",
    )
    assert pos["data"]["posCheckout"]["errors"] == [{"code": "WAREHOUSE_CANNOT_SELL"}]

"""The warehouse keeper (a built-in store-scoped role) by role over HTTP: the demo keeper, posted at the demo
warehouse, receives purchases and ships approved replenishment there and nowhere else, reads that warehouse's stock
and receipts, and can neither sell, adjust a store's stock, nor see another warehouse's receipts."""

from __future__ import annotations

from typing import Any

import pytest

from models import StoreKind, StoreStatus
from services.access.permissions import BUILTIN_ROLES, Perm
from services.inventory import replenishment, stock, transfers
from services.org import stores
from services.platform.db import write_transaction
from services.seed import WAREHOUSE_KEEPER
from tests.conftest import gid
from tests.factories import HQ, list_in_store, make_library

KEEPER = WAREHOUSE_KEEPER
PURCHASE = """mutation($w: ID!, $k: ID!, $idempotencyKey: String!) { receivePurchase(input: {warehouseId: $w,
  supplierName: "上海乳业", lines: [{skuId: $k, quantity: 6, unitCost: 450}], idempotencyKey: $idempotencyKey}) {
  errors { code field } receipt { warehouse { code } lines { quantity } } } }"""
SHIP = """mutation($id: ID!, $idempotencyKey: String!) { shipTransfer(input: {id: $id, idempotencyKey: $idempotencyKey}) {
  errors { code } transfer { status } } }"""
ADJUST = """mutation($s: ID!, $k: ID!, $idempotencyKey: String!) { adjustStock(input: {storeId: $s, reason: DAMAGE,
  idempotencyKey: $idempotencyKey, lines: [{skuId: $k, delta: -1}]}) { errors { code } } }"""
CHECKOUT = """mutation($s: ID!, $k: ID!) { posCheckout(input: {clientOrderId: "c-9", storeId: $s,
  lines: [{skuId: $k, quantity: 1}], tenders: [{method: CASH, amount: 1000}]}) { errors { code } } }"""
RECEIPTS = """query($w: ID!) { purchaseReceipts(warehouseId: $w) { edges { node { supplierName } } } }"""
LEVELS = """query($s: ID!) { store(id: $s) { stockLevels(first: 10) { edges { node { onHand } } } } }"""


async def given(state, chain) -> dict[str, Any]:
    """The demo warehouse holds 20 of a SKU SH01 lists; SH01 asked it for 5 and HQ approved; another warehouse (WH-EAST)
    holds the same SKU and has a receipt of its own."""
    library = await make_library(state, products=1, skus_per_product=1)
    sku = library.sku_ids[0]
    home = chain.stores["WHSH"]
    await list_in_store(state, chain.stores["SH01"], [sku], on_hand=1)
    async with write_transaction(state.sessionmaker) as session:
        fields = stores.StoreFields(
            code="WH-EAST",
            name="华东二仓",
            city="上海",
            address="嘉定区2号",
            lat=31.3,
            lng=121.2,
            kind=StoreKind.WAREHOUSE,
        )
        other = await stores.create_store(session, fields=fields)
        await stores.set_status(session, store_id=other.id, status=StoreStatus.OPEN)
        for w in (home, other.id):
            await stock.receive(session, w, [stock.Line(sku, 20)], stock.Ref("seed"))
        request = replenishment.Request(
            chain.stores["SH01"], home, [transfers.LineQuantity(sku, 5)], wanted_date=None, note=None
        )
        asked = await replenishment.request_once(session, HQ, request, key="keeper-given")
        await transfers.decide(session, HQ, transfer_id=asked.id, approve=True)
    return {"home": home, "other": other.id, "sku": sku, "transfer": asked.id}


def test_the_keeper_role_receives_ships_and_reads_stock_and_nothing_else():
    keeper = next(r for r in BUILTIN_ROLES if r.code == "WAREHOUSE_KEEPER")
    assert keeper.permissions == {Perm.STOCK_READ, Perm.STOCK_ADJUST, Perm.PURCHASE_RECEIVE}


async def test_the_demo_keeper_receives_and_ships_at_the_demo_warehouse(api, state, chain):
    g = await given(state, chain)
    bought = (await api.gql(PURCHASE, {"w": gid("Store", g["home"]), "k": gid("Sku", g["sku"])}, as_=KEEPER))["data"]
    assert bought["receivePurchase"]["receipt"]["warehouse"]["code"] == "WHSH"
    shipped = (await api.gql(SHIP, {"id": gid("Transfer", g["transfer"])}, as_=KEEPER))["data"]["shipTransfer"]
    assert shipped == {"errors": [], "transfer": {"status": "SHIPPED"}}
    mine = (await api.gql(RECEIPTS, {"w": gid("Store", g["home"])}, as_=KEEPER))["data"]["purchaseReceipts"]
    assert [e["node"]["supplierName"] for e in mine["edges"]] == ["上海乳业"]
    levels = (await api.gql(LEVELS, {"s": gid("Store", g["home"])}, as_=KEEPER))["data"]["store"]["stockLevels"]
    assert [e["node"]["onHand"] for e in levels["edges"]] == [20 + 6 - 5]


@pytest.mark.parametrize(
    ("what", "document", "where", "expected"),
    [
        ("purchase at another warehouse", PURCHASE, "other", "FORBIDDEN"),
        ("purchase at a store", PURCHASE, "store", "FORBIDDEN"),
        ("adjust a store's stock", ADJUST, "store", "FORBIDDEN"),
        ("adjust its warehouse's stock", ADJUST, "home", "OK"),
        ("sell at a store", CHECKOUT, "store", "FORBIDDEN"),
        ("sell at its warehouse", CHECKOUT, "home", "FORBIDDEN"),
    ],
)
async def test_the_keeper_acts_only_at_its_warehouse(api, state, chain, what, document, where, expected):
    g = await given(state, chain)
    place = {"home": g["home"], "other": g["other"], "store": chain.stores["SH01"]}[where]
    body = await api.gql(
        document, {"w": gid("Store", place), "s": gid("Store", place), "k": gid("Sku", g["sku"])}, as_=KEEPER
    )
    if expected == "OK":
        assert "errors" not in body and all(p["errors"] == [] for p in body["data"].values()), (what, body)
    else:
        assert [e["extensions"]["code"] for e in body["errors"]] == [expected], (what, body)


async def test_the_keeper_sees_no_other_warehouses_receipts_and_ships_nothing_of_theirs(api, state, chain):
    g = await given(state, chain)
    async with write_transaction(state.sessionmaker) as session:  # a transfer from WH-EAST, approved
        request = replenishment.Request(
            chain.stores["SH01"], g["other"], [transfers.LineQuantity(g["sku"], 2)], wanted_date=None, note=None
        )
        theirs = await replenishment.request_once(session, HQ, request, key="other-given")
        await transfers.decide(session, HQ, transfer_id=theirs.id, approve=True)
    await api.gql(PURCHASE, {"w": gid("Store", g["other"]), "k": gid("Sku", g["sku"])}, as_="hq.admin")
    seen = (await api.gql(RECEIPTS, {"w": gid("Store", g["other"])}, as_=KEEPER))["data"]["purchaseReceipts"]
    assert seen["edges"] == []
    shipped = await api.gql(SHIP, {"id": gid("Transfer", theirs.id)}, as_=KEEPER)
    codes = [e["extensions"]["code"] for e in shipped.get("errors", [])] or [
        e["code"] for e in shipped["data"]["shipTransfer"]["errors"]
    ]
    assert codes in (["FORBIDDEN"], ["NOT_FOUND"]), shipped

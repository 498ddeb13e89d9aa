"""Stock over the API: receipts (once per idempotency key), adjustments, stocktake, low stock, the menu, scope."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models import StockMovement
from tests.conftest import gid
from tests.factories import list_in_store, make_library

RECEIVE = """mutation($s: ID!, $lines: [StockLineInput!]!, $idempotencyKey: String!) {
  receiveStock(input: {storeId: $s, lines: $lines, idempotencyKey: $idempotencyKey}) { errors { code field } levels { onHand available } } }"""
ADJUST = """mutation($idempotencyKey: String!, $s: ID!, $lines: [StockDeltaInput!]!) {
  adjustStock(input: {idempotencyKey: $idempotencyKey, storeId: $s, lines: $lines, reason: DAMAGE, note: "摔坏"}) { errors { code } levels { onHand } } }"""


def codes(body):
    return {e["extensions"]["code"] for e in body.get("errors", [])}


@pytest.fixture
async def given(state, chain):
    library = await make_library(state, products=3, skus_per_product=2)
    await list_in_store(state, chain.stores["SH01"], library.sku_ids, on_hand=10)
    await list_in_store(state, chain.stores["SH02"], library.sku_ids[:2], on_hand=3)
    return library


@pytest.mark.postgres_too
async def test_a_receipt_retried_with_its_key_moves_stock_once(api, state, chain, given):
    variables = {
        "s": gid("Store", chain.stores["SH01"]),
        "lines": [{"skuId": gid("Sku", given.sku_ids[0]), "quantity": 5}],
        "idempotencyKey": "tablet-7-0001",
    }
    first = await api.gql(RECEIVE, variables, as_="sh01.manager")
    retry = await api.gql(RECEIVE, variables, as_="sh01.manager")
    assert first["data"]["receiveStock"]["levels"] == [{"onHand": 15, "available": 15}]
    assert retry["data"]["receiveStock"] == first["data"]["receiveStock"]
    different = await api.gql(
        RECEIVE, {**variables, "lines": [{"skuId": gid("Sku", given.sku_ids[0]), "quantity": 6}]}, as_="sh01.manager"
    )
    assert different["data"]["receiveStock"]["errors"] == [
        {"code": "IDEMPOTENCY_KEY_REUSED", "field": "idempotencyKey"}
    ]
    async with state.sessionmaker() as session:
        receipts = await session.scalar(
            select(func.count())
            .select_from(StockMovement)
            .where(StockMovement.kind == "RECEIPT", StockMovement.ref_type == "receipt")
        )
    assert receipts == 1


async def test_adjustment_below_what_is_there_is_refused(api, chain, given):
    store = gid("Store", chain.stores["SH02"])
    too_much = await api.gql(
        ADJUST, {"s": store, "lines": [{"skuId": gid("Sku", given.sku_ids[0]), "delta": -4}]}, as_="sh02.manager"
    )
    assert too_much["data"]["adjustStock"]["errors"] == [{"code": "OUT_OF_STOCK"}]
    ok = await api.gql(
        ADJUST, {"s": store, "lines": [{"skuId": gid("Sku", given.sku_ids[0]), "delta": -3}]}, as_="sh02.manager"
    )
    assert ok["data"]["adjustStock"]["levels"] == [{"onHand": 0}]


async def test_stocktake_and_low_stock(api, chain, given):
    store = gid("Store", chain.stores["SH01"])
    counts = [
        {"skuId": gid("Sku", given.sku_ids[0]), "quantity": 4},
        {"skuId": gid("Sku", given.sku_ids[1]), "quantity": 12},
    ]
    body = await api.gql(
        "mutation($idempotencyKey: String!, $s: ID!, $c: [StockLineInput!]!) { submitStocktake(input: {idempotencyKey: $idempotencyKey, storeId: $s, counts: $c}) { errors { code } differences { quantity level { onHand isLow } } } }",
        {"s": store, "c": counts},
        as_="sh01.manager",
    )
    assert body["data"]["submitStocktake"]["differences"] == [
        {"quantity": -6, "level": {"onHand": 4, "isLow": True}},
        {"quantity": 2, "level": {"onHand": 12, "isLow": False}},
    ]
    low = await api.gql(
        "query($s: ID) { lowStock(storeId: $s) { edges { node { onHand lowThreshold sku { barcode } store { code } } } } }",
        {"s": store},
        as_="sh01.clerk",
    )
    assert [e["node"]["onHand"] for e in low["data"]["lowStock"]["edges"]] == [4]
    chainwide = await api.gql("{ lowStock(first: 100) { edges { node { store { code } onHand } } } }", as_="hq.analyst")
    assert sorted(e["node"]["store"]["code"] for e in chainwide["data"]["lowStock"]["edges"]) == [
        "SH01",
        "SH02",
        "SH02",
    ]
    own_only = await api.gql("{ lowStock(first: 100) { edges { node { store { code } } } } }", as_="sh02.clerk")
    assert {e["node"]["store"]["code"] for e in own_only["data"]["lowStock"]["edges"]} == {"SH02"}
    threshold = await api.gql(
        "mutation($s: ID!, $k: ID!) { setLowStockThreshold(input: {storeId: $s, skuId: $k, threshold: 2}) { levels { lowThreshold isLow } } }",
        {"s": store, "k": gid("Sku", given.sku_ids[0])},
        as_="sh01.manager",
    )
    assert threshold["data"]["setLowStockThreshold"]["levels"] == [{"lowThreshold": 2, "isLow": False}]


async def test_the_menu_shows_prices_and_availability_never_counts(api, state, chain, given):
    store = gid("Store", chain.stores["SH02"])
    body = await api.gql(
        """query($s: ID!) { store(id: $s) { menu(first: 50) { edges { node { price availability sku { barcode product { name } } } } }
             menuCategories { category { name } itemCount } } }""",
        {"s": store},
    )
    menu = [e["node"] for e in body["data"]["store"]["menu"]["edges"]]
    assert [m["availability"] for m in menu] == ["LOW", "LOW"]
    assert body["data"]["store"]["menuCategories"] == [{"category": {"name": "咖啡"}, "itemCount": 2}]
    counts = await api.gql(
        "query($s: ID!) { store(id: $s) { menu { edges { node { sku { id } } } } stockLevels { edges { node { onHand } } } } }",
        {"s": store},
    )
    assert codes(counts) == {"UNAUTHENTICATED"}
    off = await api.gql(
        "query($s: ID!) { store(id: $s) { listings(first: 1) { edges { node { id } } } } }",
        {"s": store},
        as_="sh02.manager",
    )
    listing = off["data"]["store"]["listings"]["edges"][0]["node"]["id"]
    await api.gql(
        "mutation($id: ID!) { setListingsOnShelf(input: {ids: [$id], onShelf: false}) { errors { code } } }",
        {"id": listing},
        as_="sh02.manager",
    )
    after = await api.gql("query($s: ID!) { store(id: $s) { menu { edges { node { listingId } } } } }", {"s": store})
    assert listing not in [e["node"]["listingId"] for e in after["data"]["store"]["menu"]["edges"]]
    search = await api.gql(
        'query($s: ID!, $c: ID) { store(id: $s) { menu(categoryId: $c, search: "商品") { edges { node { price } } } } }',
        {"s": gid("Store", chain.stores["SH01"]), "c": gid("Category", given.category_ids["饮品"])},
    )
    assert len(search["data"]["store"]["menu"]["edges"]) == 4


@pytest.mark.parametrize("who", ["sh02.manager", "sh02.clerk"])
async def test_another_stores_listings_stock_and_ledger_are_out_of_reach(api, state, chain, given, who):
    a = gid("Store", chain.stores["SH01"])
    for query in (
        "query($s: ID!) { store(id: $s) { listings { edges { node { id } } } } }",
        "query($s: ID!) { store(id: $s) { stockLevels { edges { node { onHand } } } } }",
        "query($s: ID!) { stockMovements(storeId: $s) { edges { node { id } } } }",
        "query($s: ID!) { lowStock(storeId: $s) { edges { node { id } } } }",
        "query($s: ID!) { transferSuggestions(storeId: $s) { quantity } }",
    ):
        assert codes(await api.gql(query, {"s": a}, as_=who)) == {"FORBIDDEN"}, query
    own = await api.gql(
        "query($s: ID!) { stockMovements(storeId: $s, first: 1) { edges { node { id } } } store(id: $s) { listings(first: 1) { edges { node { id stock { id } } } } } }",
        {"s": a},
        as_="sh01.manager",
    )
    ids = [
        own["data"]["stockMovements"]["edges"][0]["node"]["id"],
        own["data"]["store"]["listings"]["edges"][0]["node"]["id"],
        own["data"]["store"]["listings"]["edges"][0]["node"]["stock"]["id"],
    ]
    for node_id in ids:
        assert (await api.gql("query($id: ID!) { node(id: $id) { id } }", {"id": node_id}, as_=who))["data"][
            "node"
        ] is None
        assert (await api.gql("query($id: ID!) { node(id: $id) { id } }", {"id": node_id}, as_="hq.analyst"))["data"][
            "node"
        ] == {"id": node_id}
    listing = ids[1]
    for mutation in (
        "mutation($id: ID!) { setListingPrice(input: {id: $id, price: 1000}) { errors { code } } }",
        "mutation($id: ID!) { setListingsOnShelf(input: {ids: [$id], onShelf: false}) { errors { code } } }",
    ):
        assert codes(await api.gql(mutation, {"id": listing}, as_=who)) == {"FORBIDDEN"}
    sku = gid("Sku", given.sku_ids[0])
    for mutation, line in ((RECEIVE, {"skuId": sku, "quantity": 1}), (ADJUST, {"skuId": sku, "delta": 1})):
        assert codes(await api.gql(mutation, {"s": a, "lines": [line]}, as_=who)) == {"FORBIDDEN"}

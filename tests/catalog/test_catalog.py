"""The product library, HQ policy and store listings: one library, priced inside HQ's band."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models import Product, Sku, StoreListing
from tests.conftest import gid, table_counts
from tests.factories import allow_store_products, list_in_store, make_library

CREATE_PRODUCT = """mutation($cat: ID!, $skus: [SkuInput!]!, $store: ID) {
  createProduct(input: {name: "拿铁", categoryId: $cat, skus: $skus, storeId: $store,
                images: ["https://img.example.com/latte.png"]}) {
    errors { code field } product { id name skus { barcode basePrice spec { name value } priceBand { min max } } } } }"""
ADOPT = """mutation($store: ID!, $items: [AdoptItemInput!]!) { adoptSkus(input: {storeId: $store, items: $items}) {
  errors { code field } listings { id price onShelf sku { barcode } } } }"""


@pytest.mark.postgres_too
async def test_hq_creates_a_product_with_skus_and_stores_adopt_them_in_one_action(api, state, chain):
    library = await make_library(state, products=1, skus_per_product=1)
    body = await api.gql(
        CREATE_PRODUCT,
        {
            "cat": gid("Category", library.category_ids["咖啡"]),
            "skus": [
                {
                    "barcode": "6901234567001",
                    "basePrice": 2800,
                    "costPrice": 900,
                    "spec": [{"name": "size", "value": "M"}],
                },
                {
                    "barcode": "6901234567002",
                    "basePrice": 3200,
                    "costPrice": 1000,
                    "spec": [{"name": "size", "value": "L"}],
                },
            ],
        },
        as_="hq.operator",
    )
    product = body["data"]["createProduct"]["product"]
    assert [s["priceBand"] for s in product["skus"]] == [{"min": 2240, "max": 3360}, {"min": 2560, "max": 3840}]
    skus = (
        await api.gql("query($id: ID!) { node(id: $id) { ... on Product { skus { id } } } }", {"id": product["id"]})
    )["data"]["node"]["skus"]
    adopted = await api.gql(
        ADOPT,
        {
            "store": gid("Store", chain.stores["SH01"]),
            "items": [{"skuId": skus[0]["id"]}, {"skuId": skus[1]["id"], "price": 3500}],
        },
        as_="sh01.manager",
    )
    listings = adopted["data"]["adoptSkus"]["listings"]
    assert [(x["price"], x["onShelf"]) for x in listings] == [(2800, True), (3500, True)]


async def test_price_outside_the_band_and_adopting_twice_are_coded_and_write_nothing(api, state, chain):
    library = await make_library(state, products=1, skus_per_product=2, price=1000)
    sku_a, sku_b = (gid("Sku", s) for s in library.sku_ids)
    store = gid("Store", chain.stores["SH01"])
    await api.token("sh01.manager")
    before = await table_counts(state)
    too_high = await api.gql(
        ADOPT, {"store": store, "items": [{"skuId": sku_a}, {"skuId": sku_b, "price": 1201}]}, as_="sh01.manager"
    )
    assert too_high["data"]["adoptSkus"]["errors"] == [{"code": "PRICE_OUT_OF_BAND", "field": "items[1].price"}]
    twice = await api.gql(ADOPT, {"store": store, "items": [{"skuId": sku_a}, {"skuId": sku_a}]}, as_="sh01.manager")
    assert twice["data"]["adoptSkus"]["errors"] == [{"code": "ALREADY_LISTED", "field": "items[1].skuId"}]
    assert await table_counts(state) == before
    ok = await api.gql(ADOPT, {"store": store, "items": [{"skuId": sku_a, "price": 800}]}, as_="sh01.manager")
    listing_id = ok["data"]["adoptSkus"]["listings"][0]["id"]
    again = await api.gql(ADOPT, {"store": store, "items": [{"skuId": sku_a}]}, as_="sh01.manager")
    assert again["data"]["adoptSkus"]["errors"][0]["code"] == "ALREADY_LISTED"
    low = await api.gql(
        "mutation($id: ID!) { setListingPrice(input: {id: $id, price: 799}) { errors { code } listing { price } } }",
        {"id": listing_id},
        as_="sh01.manager",
    )
    assert low["data"]["setListingPrice"] == {"errors": [{"code": "PRICE_OUT_OF_BAND"}], "listing": None}


async def test_hq_widens_the_band_and_pushes_a_price_to_every_store(api, state, chain):
    library = await make_library(state, products=1, skus_per_product=1, price=1000)
    sku = library.sku_ids[0]
    for code in ("SH01", "HZ01", "SZ02"):
        await list_in_store(state, chain.stores[code], [sku])
    settings = await api.gql(
        "mutation { updateChainSettings(input: {priceBandPercent: 50}) { settings { priceBandPercent } } }",
        as_="hq.admin",
    )
    assert settings["data"]["updateChainSettings"]["settings"]["priceBandPercent"] == 50
    pushed = await api.gql(
        "mutation($id: ID!) { pushPrice(input: {skuId: $id, price: 1290}) { errors { code } storesUpdated sku { basePrice } } }",
        {"id": gid("Sku", sku)},
        as_="hq.operator",
    )
    assert pushed["data"]["pushPrice"] == {"errors": [], "storesUpdated": 3, "sku": {"basePrice": 1290}}
    async with state.sessionmaker() as session:
        assert set((await session.scalars(select(StoreListing.price).where(StoreListing.sku_id == sku))).all()) == {
            1290
        }


@pytest.mark.postgres_too
async def test_a_barcode_that_exists_already_is_refused(api, state):
    library = await make_library(state, products=1, skus_per_product=1)
    await api.token("hq.admin")
    before = await table_counts(state)
    body = await api.gql(
        CREATE_PRODUCT,
        {"cat": gid("Category", library.category_ids["食品"]), "skus": [{"barcode": "6900000000", "basePrice": 100}]},
        as_="hq.admin",
    )
    assert body["data"]["createProduct"]["errors"] == [{"code": "DUPLICATE", "field": "skus[0].barcode"}]
    assert await table_counts(state) == before


async def test_cost_price_is_only_for_catalog_view_cost(api, state):
    library = await make_library(state, products=1, skus_per_product=1)
    query = "query($id: ID!) { node(id: $id) { ... on Sku { basePrice costPrice } } }"
    variables = {"id": gid("Sku", library.sku_ids[0])}
    analyst = await api.gql(query, variables, as_="hq.analyst")
    assert analyst["data"]["node"] == {"basePrice": 1000, "costPrice": 500}
    for who in ("sh01.clerk", "sh01.manager", None):
        body = await api.gql(query, variables, as_=who)
        assert body["data"]["node"]["costPrice"] is None and body["errors"][0]["extensions"]["code"] in {
            "FORBIDDEN",
            "UNAUTHENTICATED",
        }


async def test_store_own_products_need_hq_policy_and_stay_in_their_store(api, state, chain):
    library = await make_library(state, products=1, skus_per_product=1)
    variables = {
        "cat": gid("Category", library.category_ids["食品"]),
        "store": gid("Store", chain.stores["SH01"]),
        "skus": [{"barcode": "SH01-0001", "basePrice": 1500}],
    }
    refused = await api.gql(CREATE_PRODUCT, variables, as_="sh01.manager")
    assert refused["data"]["createProduct"]["errors"] == [{"code": "NOT_ALLOWED_BY_POLICY", "field": "storeId"}]
    await allow_store_products(state)
    created = await api.gql(CREATE_PRODUCT, variables, as_="sh01.manager")
    product_id = created["data"]["createProduct"]["product"]["id"]
    query = "query($id: ID!) { node(id: $id) { id } }"
    assert (await api.gql(query, {"id": product_id}, as_="sh01.clerk"))["data"]["node"] is not None
    assert (await api.gql(query, {"id": product_id}, as_="hq.analyst"))["data"]["node"] is not None
    for who in ("sh02.manager", "member:m1", None):
        assert (await api.gql(query, {"id": product_id}, as_=who))["data"]["node"] is None, who
    other_store = await api.gql(
        CREATE_PRODUCT, {**variables, "store": gid("Store", chain.stores["SH02"])}, as_="sh01.manager"
    )
    assert other_store["errors"][0]["extensions"]["code"] == "FORBIDDEN"


MENU = """query($s: ID!) { store(id: $s) { menu(first: 10) { edges { node { price availability
  sku { barcode product { name } } } } } } }"""


@pytest.mark.postgres_too
async def test_a_menu_item_shows_its_sku_to_those_who_may_see_the_product_and_its_availability_to_all(
    api, state, chain
):
    """The menu's page reads each item's SKU, product and stock level itself (no loader): the store's own product is
    listed, but only its store's staff and HQ see what it is; sold out, low and in stock read from its level."""
    library = await make_library(state, products=2, skus_per_product=1)
    await list_in_store(state, chain.stores["SH01"], library.sku_ids[:1], on_hand=50)
    await list_in_store(state, chain.stores["SH01"], library.sku_ids[1:], on_hand=2)
    await allow_store_products(state)
    variables = {
        "cat": gid("Category", library.category_ids["食品"]),
        "store": gid("Store", chain.stores["SH01"]),
        "skus": [{"barcode": "SH01-0001", "basePrice": 1500}],
    }
    created = await api.gql(CREATE_PRODUCT, variables, as_="sh01.manager")
    assert created["data"]["createProduct"]["errors"] == []
    async with state.sessionmaker() as session:
        own_sku = await session.scalar(select(Sku.id).where(Sku.barcode == "SH01-0001"))
    await list_in_store(state, chain.stores["SH01"], [own_sku])  # listed, none in stock

    async def menu(who: str | None) -> list[tuple[str, str | None]]:
        body = await api.gql(MENU, {"s": gid("Store", chain.stores["SH01"])}, as_=who)
        assert "errors" not in body, body
        return [
            (e["node"]["availability"], e["node"]["sku"] and e["node"]["sku"]["product"]["name"])
            for e in body["data"]["store"]["menu"]["edges"]
        ]

    assert await menu("sh01.clerk") == [("IN_STOCK", "商品0"), ("LOW", "商品1"), ("SOLD_OUT", "拿铁")]
    assert await menu("hq.admin") == [("IN_STOCK", "商品0"), ("LOW", "商品1"), ("SOLD_OUT", "拿铁")]
    for who in ("member:m1", None, "sh02.manager"):
        assert await menu(who) == [("IN_STOCK", "商品0"), ("LOW", "商品1"), ("SOLD_OUT", None)], who


@pytest.mark.postgres_too
async def test_products_search_by_name_barcode_and_category_subtree(api, state):
    library = await make_library(state, products=4, skus_per_product=1)
    query = "query($f: ProductFilterInput) { products(first: 50, filter: $f) { edges { node { name } } } }"

    async def names(f):
        return [e["node"]["name"] for e in (await api.gql(query, {"f": f}))["data"]["products"]["edges"]]

    assert await names({"search": "商品1"}) == ["商品1"]
    assert await names({"barcode": "6900000200"}) == ["商品2"]
    assert await names({"categoryId": gid("Category", library.category_ids["饮品"])}) == ["商品0", "商品2"]
    assert len(await names(None)) == 4


CSV_GOOD = """product,category,barcode,spec,base_price,cost_price,min_price,max_price,status,description,images
美式,饮品/咖啡,6909990000011,size=M;temperature=hot,18.00,5.50,,,ACTIVE,经典美式,https://img.example.com/a.png
美式,饮品/咖啡,6909990000012,size=L;temperature=hot,21.00,6.00,,,ACTIVE,经典美式,
可颂,食品/烘焙,6909990000021,,12.50,4,10.00,15.00,ACTIVE,,
"""


async def test_catalog_csv_imports_exports_and_round_trips(api, state):
    body = await api.gql(
        "mutation($c: String!) { importCatalogCsv(input: {csv: $c}) { errors { code } rowErrors { row } productsCreated skusCreated skusUpdated } }",
        {"c": CSV_GOOD},
        as_="hq.admin",
    )
    assert body["data"]["importCatalogCsv"] == {
        "errors": [],
        "rowErrors": [],
        "productsCreated": 2,
        "skusCreated": 3,
        "skusUpdated": 0,
    }
    exported = (await api.gql("{ catalogCsv }", as_="hq.admin"))["data"]["catalogCsv"]
    assert "6909990000011" in exported and "饮品/咖啡" in exported and "5.50" in exported
    again = await api.gql(
        "mutation($c: String!) { importCatalogCsv(input: {csv: $c}) { errors { code } skusCreated skusUpdated } }",
        {"c": exported},
        as_="hq.admin",
    )
    assert again["data"]["importCatalogCsv"] == {"errors": [], "skusCreated": 0, "skusUpdated": 3}
    without_cost = (await api.gql("{ catalogCsv }", as_="hq.operator"))["data"]["catalogCsv"]
    assert "5.50" in without_cost  # the operator holds catalog.view_cost too


async def test_a_csv_with_bad_rows_reports_every_row_and_writes_nothing(api, state):
    bad = CSV_GOOD + (
        "坏行,饮品,6909990000011,,1.00,,,,,,\n"  # same barcode as row 2
        ",饮品,6909990000031,,2.00,,,,,,\n"  # no product
        "贵,饮品,6909990000041,,12.345,,,,,,\n"  # three decimals
        "状态,饮品,6909990000051,,2.00,,,,MAYBE,,\n"
    )
    await api.token("hq.admin")
    before = await table_counts(state)
    body = await api.gql(
        "mutation($c: String!) { importCatalogCsv(input: {csv: $c}) { errors { code field } rowErrors { row column message } skusCreated } }",
        {"c": bad},
        as_="hq.admin",
    )
    result = body["data"]["importCatalogCsv"]
    assert result["errors"] == [{"code": "CSV_INVALID", "field": "csv"}]
    assert [(e["row"], e["column"]) for e in result["rowErrors"]] == [
        (5, "barcode"),
        (6, "product"),
        (7, "base_price"),
        (8, "status"),
    ]
    assert await table_counts(state) == before
    async with state.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Sku)) == 0
        assert await session.scalar(select(func.count()).select_from(Product)) == 0

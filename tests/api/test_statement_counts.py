"""The number of SQL statements depends on a query's depth, not on how many stores it returns."""

from __future__ import annotations

import re

import pytest

from models import Staff, Store, StoreStatus
from tests.conftest import count_statements

DEEP = "query($n: Int!) { stores(first: $n) { edges { node { code staff { username role { name } } manager { username } } } } }"


async def _grow_chain_to(state, chain, total: int) -> None:
    async with state.sessionmaker() as session, session.begin():
        for i in range(len(chain.stores), total):
            store = Store(
                code=f"X{i:03d}",
                name=f"Store {i}",
                city="上海",
                address="addr",
                lat=31.0,
                lng=121.0,
                status=StoreStatus.OPEN,
                hours=[],
            )
            session.add(store)
            await session.flush()
            for suffix, role in (("manager", "STORE_MANAGER"), ("clerk", "CLERK")):
                session.add(
                    Staff(
                        username=f"x{i:03d}.{suffix}",
                        display_name=suffix,
                        password_hash="x",
                        role_id=chain.roles[role],
                        store_id=store.id,
                    )
                )


async def _fifty_stores_listing(state, chain, on_hand) -> None:
    """Given 50 stores, each listing the same six SKUs with `on_hand(i)` of each in the i-th store."""
    from sqlalchemy import select

    from tests.factories import list_in_store, make_library

    await _grow_chain_to(state, chain, 50)
    library = await make_library(state, products=3, skus_per_product=2)
    async with state.sessionmaker() as session:
        store_ids = list((await session.scalars(select(Store.id).order_by(Store.id))).all())
    for i, store_id in enumerate(store_ids):
        await list_in_store(state, store_id, library.sku_ids, on_hand=on_hand(i))


async def test_stores_with_staff_and_roles_take_the_same_statements_for_5_and_50_stores(api, state, chain):
    await _grow_chain_to(state, chain, 50)
    token = await api.token("hq.admin")
    counts = {}
    for n in (5, 50):
        with count_statements(state.engine) as counter:
            body = (await api.post(DEEP, {"n": n}, token=token)).json()
        assert "errors" not in body
        edges = body["data"]["stores"]["edges"]
        assert len(edges) == n
        stores = [e for e in edges if e["node"]["code"] != "WHSH"]  # the demo warehouse: its keeper, no manager
        assert all(len(e["node"]["staff"]) == 2 and e["node"]["manager"] for e in stores)
        counts[n] = counter.count
    assert counts[5] == counts[50]
    # Viewer check, stores page, staff by store, roles by id.
    assert counts[50] <= 4, counts


async def test_audit_log_with_actor_and_store_is_constant_in_statements(api, state, chain):
    token = await api.token("hq.admin")
    for username in ["sh01.clerk", "sh02.clerk", "hz01.clerk", "sz01.clerk"] * 5:
        await api.login(username)
    query = "query($n: Int!) { auditLogs(first: $n) { edges { node { operation actor { username role { code } } store { code } } } } }"
    counts = {}
    for n in (2, 20):
        with count_statements(state.engine) as counter:
            body = (await api.post(query, {"n": n}, token=token)).json()
        assert len(body["data"]["auditLogs"]["edges"]) == n
        counts[n] = counter.count
    assert counts[2] == counts[20], counts


LOW_LEVELS = """query($n: Int!) { stores(first: $n) { edges { node { code
  stockLevels(lowOnly: true, first: 10) { edges { node { onHand lowThreshold sku { barcode product { name category { name } } } } } }
} } } }"""


@pytest.mark.postgres_too
async def test_hq_low_stock_across_stores_is_constant_in_statements(api, state, chain):
    await _fifty_stores_listing(state, chain, on_hand=lambda i: 2 + (i % 7))
    token = await api.token("hq.admin")
    counts = {}
    for n in (5, 50):
        with count_statements(state.engine) as counter:
            body = (await api.post(LOW_LEVELS, {"n": n}, token=token)).json()
        assert "errors" not in body, body
        edges = body["data"]["stores"]["edges"]
        assert len(edges) == n and all(e["node"]["stockLevels"]["edges"] for e in edges[:3])
        assert edges[0]["node"]["stockLevels"]["edges"][0]["node"]["sku"]["product"]["category"]["name"]
        counts[n] = counter.count
    assert counts[5] == counts[50], counts


MENU = """query($s: ID!, $n: Int!) { store(id: $s) { menu(first: $n) { edges { node { price availability
  sku { barcode spec { name value } product { name images category { name } } } } } } } }"""


async def test_a_menu_of_10_or_100_items_takes_the_same_statements(api, state, chain):
    from tests.conftest import gid
    from tests.factories import list_in_store, make_library

    library = await make_library(state, products=50, skus_per_product=2)
    await list_in_store(state, chain.stores["SH01"], library.sku_ids, on_hand=3)
    counts = {}
    for n in (10, 100):
        with count_statements(state.engine) as counter:
            body = (await api.post(MENU, {"s": gid("Store", chain.stores["SH01"]), "n": n})).json()
        assert "errors" not in body, body
        assert len(body["data"]["store"]["menu"]["edges"]) == n
        counts[n] = counter.count
    assert counts[10] == counts[100], counts


async def test_a_skus_product_costs_no_statement_of_its_own(api, state, chain):
    """The SKU loader reads the products in its own statement (visibility needs the join) and primes them."""
    from tests.conftest import gid
    from tests.factories import list_in_store, make_library

    library = await make_library(state, products=5, skus_per_product=2)
    await list_in_store(state, chain.stores["SH01"], library.sku_ids, on_hand=3)
    counts = {}
    for shape in ("sku { barcode }", "sku { barcode product { name } }"):
        query = f"query($s: ID!) {{ store(id: $s) {{ menu(first: 10) {{ edges {{ node {{ price {shape} }} }} }} }} }}"
        with count_statements(state.engine) as counter:
            body = (await api.post(query, {"s": gid("Store", chain.stores["SH01"])})).json()
        assert "errors" not in body, body
        assert all(e["node"]["sku"]["barcode"] for e in body["data"]["store"]["menu"]["edges"])
        counts[shape] = counter.count
    names = {e["node"]["sku"]["product"]["name"] for e in body["data"]["store"]["menu"]["edges"]}
    assert len(names) == 5
    assert counts["sku { barcode }"] == counts["sku { barcode product { name } }"], counts


# The documents bench/load.py measures (issue #18): a member's menu and HQ's store list with stock.
BENCHED_MENU = """query($s: ID!, $n: Int!) { store(id: $s) { menu(first: $n) { edges { node { listingId price
  sku { barcode product { name } } } } } } }"""
BENCHED_STORES = """query($n: Int!) { stores(first: $n) { edges { node { code name stockLevels(first: 5) { edges { node {
  onHand reserved sku { barcode } } } } } } } }"""


def _tables(statements: list[str]) -> list[str]:
    """The first table each statement reads: what a count below is made of, in the failure message."""
    return [found.group(1) if (found := re.search(r"\bFROM\s+(\w+)", s)) else s.split()[0] for s in statements]


@pytest.mark.postgres_too
async def test_the_benched_menu_takes_two_statements_and_its_page_brings_skus_products_and_availability(
    api, state, chain
):
    """The store, then one page statement with each item's SKU, product and stock level; the chain settings (for the
    low-stock line) are read only because tests turn the instance's memo off."""
    from tests.conftest import gid
    from tests.factories import list_in_store, make_library

    library = await make_library(state, products=50, skus_per_product=2)
    await list_in_store(state, chain.stores["SH01"], library.sku_ids, on_hand=3)
    for n in (10, 100):
        with count_statements(state.engine) as counter:
            body = (await api.post(BENCHED_MENU, {"s": gid("Store", chain.stores["SH01"]), "n": n})).json()
        assert "errors" not in body, body
        edges = body["data"]["store"]["menu"]["edges"]
        assert len(edges) == n and all(e["node"]["sku"]["product"]["name"] for e in edges)
        tables = _tables(counter.statements)
        assert [t for t in tables if t != "settings"] == ["stores", "store_listings"], tables


@pytest.mark.postgres_too
async def test_the_mini_programs_store_menu_takes_four_statements_at_any_size(api, state, chain):
    """StoreMenu (trusted): running campaigns, the store, the menu's categories, the page (availability in it)."""
    from tests.conftest import gid
    from tests.factories import list_in_store, make_library

    document = _trusted("StoreMenu")
    library = await make_library(state, products=50, skus_per_product=2)
    await list_in_store(state, chain.stores["SH01"], library.sku_ids, on_hand=3)
    counts = {}
    for n in (5, 60):
        with count_statements(state.engine) as counter:
            body = (await api.post(document, {"storeId": gid("Store", chain.stores["SH01"]), "first": n})).json()
        assert "errors" not in body, body
        menu = body["data"]["store"]["menu"]["edges"]
        assert len(menu) == n and {e["node"]["availability"] for e in menu} == {"LOW"}
        assert all(e["node"]["sku"]["product"]["name"] for e in menu)
        tables = [t for t in _tables(counter.statements) if t != "settings"]
        counts[n] = len(tables)
        assert sorted(tables) == ["campaigns", "categories", "store_listings", "stores"], tables
    assert counts[5] == counts[60] == 4


@pytest.mark.postgres_too
async def test_the_benched_store_list_takes_the_same_three_statements_for_5_and_50_stores(api, state, chain):
    """The viewer check, the stores page, and one statement for every store's first levels with their SKUs."""
    await _fifty_stores_listing(state, chain, on_hand=lambda i: 4)
    token = await api.token("hq.admin")
    for n in (5, 50):
        with count_statements(state.engine) as counter:
            body = (await api.post(BENCHED_STORES, {"n": n}, token=token)).json()
        assert "errors" not in body, body
        edges = body["data"]["stores"]["edges"]
        assert len(edges) == n
        levels = [level["node"] for e in edges for level in e["node"]["stockLevels"]["edges"]]
        assert levels and all(level["sku"]["barcode"] for level in levels)
        tables = [t for t in _tables(counter.statements) if t != "settings"]
        assert len(tables) == 3, tables


@pytest.mark.postgres_too
async def test_a_levels_sku_spec_costs_no_statement_of_its_own(api, state, chain):
    """The store list reads each level's SKU as plain values with its spec as the JSON's text (decoded only when a
    query asks for it, as the store tablet's StoreStockLevels does): the same three statements with the spec."""
    await _fifty_stores_listing(state, chain, on_hand=lambda i: 4)
    token = await api.token("hq.admin")
    with_spec = BENCHED_STORES.replace("sku { barcode }", "sku { barcode spec { name value } }")
    for n in (5, 50):
        with count_statements(state.engine) as counter:
            body = (await api.post(with_spec, {"n": n}, token=token)).json()
        assert "errors" not in body, body
        levels = [level["node"] for e in body["data"]["stores"]["edges"] for level in e["node"]["stockLevels"]["edges"]]
        assert levels and all(
            level["sku"]["spec"] in ([{"name": "size", "value": "M"}], [{"name": "size", "value": "L"}])
            for level in levels
        )
        tables = [t for t in _tables(counter.statements) if t != "settings"]
        assert len(tables) == 3, tables


def _trusted(name: str) -> str:
    import json
    from pathlib import Path

    manifest = json.loads((Path(__file__).resolve().parents[2] / "trusted-documents.json").read_text())
    body: str = next(op["body"] for op in manifest["operations"] if op["name"] == name)
    return body

"""Margin (利润率) and stores compared by city (issue #17 point 3), by role over HTTP.

Order lines keep their SKU's cost at the time of sale; the SKU facts fold cost and refunded cost; HQ (with
catalog.view_cost) sees cost, gross profit and margin next to sales; a store's manager only while the chain
setting storesSeeMargin is on; a clerk never. cityComparison ranks each store within its city. (The Hypothesis
recomputation of margin from raw orders is in tests/analytics/test_reports.py, beside the sales one.)
"""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from models import ChainDayFact, Member, OrderLine, PaymentMethod, Sku, SkuDayFact, StoreDayFact, StoreSkuDayFact
from services.analytics import facts
from services.orders import pos, refunds
from services.platform.db import write_transaction
from services.platform.migrate import alembic_config, upgrade
from services.pricing.engine import CartLine
from tests.analytics.test_reports import _store_viewer
from tests.conftest import gid
from tests.factories import HQ, list_in_store
from tests.marketing_givens import given_menu

MARGIN = """{ salesReport { totals { net refunds cost refundedCost grossProfit margin }
  series { figures { grossProfit } } byHour { figures { grossProfit } }
  byCategory { label grossProfit } topProducts { quantity grossProfit margin } } }"""
PLAIN = "{ salesReport { totals { net refunds } } }"


async def _set_cost(state, sku: int, cost: int) -> None:
    async with write_transaction(state.sessionmaker) as session:
        await session.execute(update(Sku).where(Sku.id == sku).values(cost_price=cost))


async def _sell(state, store: int, sku: int, qty: int, key: str, price: int) -> int:
    async with write_transaction(state.sessionmaker) as session:
        order = await pos.checkout(
            session, HQ, pos.Checkout(store, key, [CartLine(sku, qty)], [pos.Tender(PaymentMethod.CASH, price * qty)])
        )
        return order.id


async def test_a_line_keeps_the_cost_it_was_sold_at_and_a_refund_takes_back_its_share(state, chain):
    menu = await given_menu(state, chain)
    await _set_cost(state, menu.a, 3000)
    order = await _sell(state, menu.store, menu.a, 3, "m-1", 10000)
    await _set_cost(state, menu.a, 7000)  # a purchase receipt moves the average afterwards
    async with write_transaction(state.sessionmaker) as session:
        await refunds.refund_order(
            session,
            _store_viewer(menu.store),
            state.payment_providers,
            order_id=order,
            quantities={menu.a: 1},
            restock=True,
            reason=None,
        )
    await facts.refresh_all(state.sessionmaker)
    async with state.sessionmaker() as session:
        assert await session.scalar(select(OrderLine.unit_cost).where(OrderLine.order_id == order)) == 3000
        for model in (StoreSkuDayFact, SkuDayFact):
            row = (await session.execute(select(model.cost, model.refunded_cost).where(model.sku_id == menu.a))).one()
            assert tuple(row) == (9000, 3000)


async def test_hq_sees_margin_a_store_manager_only_when_allowed_and_a_clerk_never(api, state, chain):
    menu = await given_menu(state, chain)
    await _set_cost(state, menu.a, 4000)
    order = await _sell(state, menu.store, menu.a, 2, "m-2", 10000)
    async with write_transaction(state.sessionmaker) as session:
        await refunds.refund_order(
            session,
            _store_viewer(menu.store),
            state.payment_providers,
            order_id=order,
            quantities={menu.a: 1},
            restock=True,
            reason=None,
        )
    await facts.refresh_all(state.sessionmaker)
    # Sold 2 x 10000 at cost 4000, one refunded: (20000 - 10000) - (8000 - 4000) = 6000, margin 0.6.
    expected = {"net": 20000, "refunds": 10000, "cost": 8000, "refundedCost": 4000, "grossProfit": 6000, "margin": 0.6}
    for who in ("hq.admin", "hq.analyst", "hq.operator"):
        body = await api.gql(MARGIN, as_=who)
        report = body["data"]["salesReport"]
        assert report["totals"] == expected, (who, body)
        assert [p["figures"]["grossProfit"] for p in report["series"]] == [6000]
        assert {p["figures"]["grossProfit"] for p in report["byHour"]} == {None}  # no cost is kept by hour
        assert report["topProducts"] == [{"quantity": 2, "grossProfit": 6000, "margin": 0.6}]
        assert [c["grossProfit"] for c in report["byCategory"]] == [6000]
    hq_rank = await api.gql(
        "{ storeRanking(metric: GROSS_PROFIT) { rows { figures { grossProfit } store { code } } csv } }",
        as_="hq.analyst",
    )
    assert hq_rank["data"]["storeRanking"]["rows"][0] == {"figures": {"grossProfit": 6000}, "store": {"code": "SH01"}}
    assert "gross_profit" in hq_rank["data"]["storeRanking"]["csv"]

    refused = await api.gql(MARGIN, as_="sh01.manager")
    assert refused["errors"] and {e["extensions"]["code"] for e in refused["errors"]} == {"FORBIDDEN"}
    hidden = refused["data"]["salesReport"]  # every cost field refused (null with its error), the sales shown
    assert hidden["totals"] == {
        "net": 20000,
        "refunds": 10000,
        "cost": None,
        "refundedCost": None,
        "grossProfit": None,
        "margin": None,
    }
    assert hidden["topProducts"] == [{"quantity": 2, "grossProfit": None, "margin": None}]
    assert (await api.gql(PLAIN, as_="sh01.manager"))["data"]["salesReport"]["totals"] == {
        "net": 20000,
        "refunds": 10000,
    }
    assert (
        "gross_profit"
        not in (await api.gql("{ salesReport { csv } }", as_="sh01.manager"))["data"]["salesReport"]["csv"]
    )
    ranked = await api.gql("{ storeRanking(metric: GROSS_PROFIT) { rows { rank } } }", as_="sh01.manager")
    assert ranked["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    on = await api.gql(
        "mutation { updateChainSettings(input: {storesSeeMargin: true}) { errors { code }"
        " settings { storesSeeMargin } } }",
        as_="hq.admin",
    )
    assert on["data"]["updateChainSettings"] == {"errors": [], "settings": {"storesSeeMargin": True}}
    allowed = await api.gql(MARGIN, as_="sh01.manager")
    assert allowed["data"]["salesReport"]["totals"] == expected
    other = await api.gql("{ salesReport { totals { net grossProfit } } }", as_="sh02.manager")
    assert other["data"]["salesReport"]["totals"] == {"net": 0, "grossProfit": 0}  # its own store only
    for query in (MARGIN, PLAIN):
        clerk = await api.gql(query, as_="sh01.clerk")
        assert clerk["errors"][0]["extensions"]["code"] == "FORBIDDEN"


CITIES = """query($m: RankMetric!) { cityComparison(metric: $m) { city storeCount rank
  totals { net orders } averagePerStore { net } stores { rankInCity store { code } figures { net } } } }"""


async def test_stores_are_ranked_within_their_city_and_cities_against_each_other(api, state, chain):
    menu = await given_menu(state, chain)
    hz01 = chain.stores["HZ01"]
    await list_in_store(state, hz01, [menu.a], on_hand=50)
    price = 10000
    await _sell(state, menu.store, menu.a, 1, "c-1", price)  # SH01: 1
    await _sell(state, menu.other_store, menu.a, 2, "c-2", price)  # SH02: 2
    await _sell(state, hz01, menu.a, 1, "c-3", price)  # HZ01: 1
    await facts.refresh_all(state.sessionmaker)
    body = await api.gql(CITIES, {"m": "NET"}, as_="hq.analyst")
    cities = {c["city"]: c for c in body["data"]["cityComparison"]}
    shanghai, hangzhou = cities["上海"], cities["杭州"]
    assert (shanghai["rank"], hangzhou["rank"]) == (1, 2)
    assert shanghai["storeCount"] == 4 and hangzhou["storeCount"] == 3
    assert shanghai["totals"] == {"net": 3 * price, "orders": 2}
    assert shanghai["averagePerStore"] == {"net": 3 * price // 4}
    assert [(s["rankInCity"], s["store"]["code"], s["figures"]["net"]) for s in shanghai["stores"][:2]] == [
        (1, "SH02", 2 * price),
        (2, "SH01", price),
    ]
    assert [s["rankInCity"] for s in shanghai["stores"]] == [1, 2, 3, 4]
    assert hangzhou["stores"][0]["store"]["code"] == "HZ01" and hangzhou["totals"]["net"] == price

    own = await api.gql(CITIES, {"m": "NET"}, as_="sh01.manager")
    assert own["data"]["cityComparison"] == [
        {
            "city": "上海",
            "storeCount": 4,
            "rank": 1,
            "totals": None,
            "averagePerStore": None,
            "stores": [{"rankInCity": 2, "store": {"code": "SH01"}, "figures": {"net": price}}],
        }
    ]
    refused = await api.gql(CITIES, {"m": "GROSS_PROFIT"}, as_="sh01.manager")
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    by_profit = await api.gql(CITIES, {"m": "GROSS_PROFIT"}, as_="hq.admin")
    assert by_profit["data"]["cityComparison"][0]["city"] == "上海"
    clerk = await api.gql(CITIES, {"m": "NET"}, as_="sh01.clerk")
    assert clerk["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_members_by_home_store_and_city(api, state, chain):
    sh01, sh02, hz01 = chain.stores["SH01"], chain.stores["SH02"], chain.stores["HZ01"]
    async with write_transaction(state.sessionmaker) as session:
        session.add_all([Member(name=f"m{i}", home_store_id=home) for i, home in enumerate([sh01, sh01, sh02, hz01])])
    query = """{ memberReport { byHomeStore { city members newMembers store { code } }
      byCity { city members newMembers store { code } } } }"""
    hq = (await api.gql(query, as_="hq.analyst"))["data"]["memberReport"]
    by_store = {r["store"]["code"]: (r["city"], r["members"], r["newMembers"]) for r in hq["byHomeStore"]}
    assert by_store["SH01"] == ("上海", 2, 2) and by_store["SH02"] == ("上海", 1, 1)
    assert by_store["HZ01"] == ("杭州", 1, 1)
    cities = {r["city"]: (r["members"], r["newMembers"], r["store"]) for r in hq["byCity"]}
    assert cities["上海"][:2] >= (3, 3) and cities["杭州"] == (1, 1, None)
    own = (await api.gql(query, as_="sh01.manager"))["data"]["memberReport"]
    assert [r["store"]["code"] for r in own["byHomeStore"]] == ["SH01"]
    assert [(r["city"], r["members"]) for r in own["byCity"]] == [("上海", by_store["SH01"][1])]


@pytest.mark.postgres_too
async def test_the_migration_backfills_line_costs_and_fact_costs_from_the_skus(state, chain):
    """Lines sold before lines kept their cost get their SKU's cost price; the SKU facts the same cost x units."""
    from alembic import command

    menu = await given_menu(state, chain)
    await _set_cost(state, menu.a, 2500)
    await _sell(state, menu.store, menu.a, 2, "b-1", 10000)
    await facts.refresh_all(state.sessionmaker)

    def _down(sync_conn: object) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = sync_conn
        command.downgrade(cfg, "0012")

    async with state.engine.begin() as conn:
        await conn.run_sync(_down)
    await upgrade(state.engine)
    async with state.sessionmaker() as session:
        assert await session.scalar(select(OrderLine.unit_cost).where(OrderLine.sku_id == menu.a)) == 2500
        for model in (StoreSkuDayFact, SkuDayFact):
            assert await session.scalar(select(model.cost).where(model.sku_id == menu.a)) == 5000
        # 0022 gave the store's day the sum of its SKU days (the given menu sold nothing else in this store).
        day = select(StoreDayFact.quantity, StoreDayFact.cost).where(StoreDayFact.store_id == menu.store)
        assert (await session.execute(day)).all() == [(2, 5000)]
        # 0023 rolled the store days up into the chain's.
        chain_day = select(ChainDayFact.orders, ChainDayFact.quantity, ChainDayFact.cost)
        assert (await session.execute(chain_day)).all() == [(1, 2, 5000)]


async def test_a_lines_unit_cost_is_shown_only_with_catalog_view_cost(api, state, chain):
    menu = await given_menu(state, chain)
    await _set_cost(state, menu.a, 3300)
    order = await _sell(state, menu.store, menu.a, 1, "u-1", 10000)
    query = "query($id: ID!) { node(id: $id) { ... on Order { lines { quantity unitCost } } } }"
    variables = {"id": gid("Order", order)}
    for who in ("hq.admin", "hq.analyst"):
        body = await api.gql(query, variables, as_=who)
        assert body["data"]["node"]["lines"] == [{"quantity": 1, "unitCost": 3300}], (who, body)
    manager = await api.gql(query, variables, as_="sh01.manager")
    assert manager["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert manager["data"]["node"]["lines"] == [{"quantity": 1, "unitCost": None}]

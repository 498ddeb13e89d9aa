"""Reports agree with the ledgers to the fen, are scoped like everything else, and recommend only what is there."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from models import (
    CampaignKind,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Refund,
    Sku,
    StockLevel,
    StoreListing,
    utcnow,
)
from services.access.scope import Viewer, ViewerKind
from services.analytics import facts, recommendations, reports
from services.marketing.promotions import ItemSpec
from services.orders import lifecycle as orders
from services.orders import pos, refunds
from services.org.settings import update_settings
from services.platform.db import write_transaction
from services.platform.payments import Notification
from services.pricing.engine import CartLine
from tests.conftest import gid, in_own_loop
from tests.factories import HQ, list_in_store, make_library
from tests.marketing_givens import campaign, given_menu

SOLD = [s for s in OrderStatus if s not in (OrderStatus.CREATED, OrderStatus.CANCELLED)]


async def _raw(session, store_ids: list[int] | None) -> dict[str, int]:
    """The brute-force figures, straight from orders, lines, payments and refunds."""
    where = [Order.status.in_(SOLD)] + ([Order.store_id.in_(store_ids)] if store_ids else [])
    count, gmv, discounts = (
        await session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(Order.subtotal), 0),
                func.coalesce(func.sum(Order.discount_total), 0),
            ).where(*where)
        )
    ).one()
    paid = await session.scalar(
        select(func.coalesce(func.sum(Payment.amount), 0))
        .join(Order, Order.id == Payment.order_id)
        .where(Payment.status == PaymentStatus.SUCCEEDED, *where)
    )
    refund_where = [Refund.store_id.in_(store_ids)] if store_ids else []
    refunded = await session.scalar(select(func.coalesce(func.sum(Refund.amount), 0)).where(*refund_where))
    units = await session.scalar(
        select(func.coalesce(func.sum(OrderLine.quantity), 0)).join(Order, Order.id == OrderLine.order_id).where(*where)
    )
    return {
        "orders": int(count),
        "gmv": int(gmv),
        "discounts": int(discounts),
        "net": int(gmv) - int(discounts),
        "paid": int(paid or 0),
        "refunds": int(refunded or 0),
        "units": int(units or 0),
        **await _raw_margin(session, where, refund_where),
    }


async def _raw_margin(session, where: list[Any], refund_where: list[Any]) -> dict[str, int]:
    """Gross profit the long way: every sold line's takings less its kept unit cost x units, less each refunded
    part (the refund's goods amount less the same unit cost x the units it took back)."""
    lines = (
        await session.execute(
            select(OrderLine.order_id, OrderLine.sku_id, OrderLine.line_total, OrderLine.unit_cost, OrderLine.quantity)
            .join(Order, Order.id == OrderLine.order_id)
            .where(*where)
        )
    ).all()
    unit_cost = {(o, k): c for o, k, _, c, _ in lines}
    sold = sum(total - cost * qty for _, _, total, cost, qty in lines)
    refunded = 0
    for order_id, refund_lines in (
        await session.execute(select(Refund.order_id, Refund.lines).where(*refund_where))
    ).all():
        refunded += sum(
            int(x["amount"]) - unit_cost[(order_id, int(x["skuId"]))] * int(x["quantity"]) for x in refund_lines
        )
    return {"gross_profit": sold - refunded, "cost": sum(cost * qty for _, _, _, cost, qty in lines)}


def _reported(r: reports.SalesReport) -> dict[str, int]:
    t = r.totals
    assert r.margin_visible
    assert sum(c.gross_profit for c in r.by_category) == t.gross_profit  # by category, from the SKU facts
    assert sum(p.gross_profit for p in r.top_products) == t.gross_profit  # by product
    assert sum(p.figures.gross_profit for p in r.series) == t.gross_profit  # by day
    return {
        "orders": t.orders,
        "gmv": t.gmv,
        "discounts": t.discounts,
        "net": t.net,
        "paid": t.net,
        "refunds": t.refunds,
        "units": sum(p.quantity for p in r.top_products),
        "gross_profit": t.gross_profit,
        "cost": t.cost,
    }


def _store_viewer(store_id: int) -> Viewer:
    from models import RoleScope

    return Viewer(
        kind=ViewerKind.STAFF,
        role_code="STORE_MANAGER",
        role_scope=RoleScope.STORE,
        store_id=store_id,
        permissions=frozenset({"report.view", "order.refund"}),
    )


@pytest.mark.postgres_too
async def test_report_totals_equal_the_ledgers_for_hq_and_for_each_store(state, chain):
    """Hypothesis order sets (counter and online, discounted, refunded in part or whole, SKU costs changing between
    sales); two runners fold the facts. Margin too: the store's manager sees it while stores_see_margin is on."""
    menu = await given_menu(state, chain, on_hand=5000)
    async with write_transaction(state.sessionmaker) as session:
        await update_settings(session, stores_see_margin=True)
    await campaign(state, CampaignKind.FULL_REDUCTION, tiers=[(9000, 900)])
    await campaign(state, CampaignKind.LIMITED_DISCOUNT, items=[ItemSpec(menu.c, percent=75)])
    stores, skus = [menu.store, menu.other_store], [menu.a, menu.b, menu.c]
    checked: list[int] = []
    sale = st.tuples(
        st.sampled_from(stores),
        st.dictionaries(st.sampled_from(skus), st.integers(1, 3), min_size=1),
        st.booleans(),
        st.sampled_from(["none", "one", "all"]),
        st.integers(0, 12000),
    )

    def examples(run: Any, sessionmaker: Any) -> None:
        provider = state.payment_providers["sandbox"]

        async def sell(store: int, cart: dict[int, int], online: bool, refund: str, cost: int, n: int) -> None:
            lines = [CartLine(k, v) for k, v in cart.items()]
            async with write_transaction(sessionmaker) as session:  # the cost moves (purchase receipts) between sales
                await session.execute(update(Sku).where(Sku.id == next(iter(cart))).values(cost_price=cost))
                if online:
                    placed = await orders.place_order(
                        session,
                        Viewer(kind=ViewerKind.MEMBER, member_id=menu.gold),
                        provider,
                        orders.PlaceOrder(store, lines, f"o-{n}"),
                    )
                    order = await orders.apply_notification(
                        session,
                        provider.name,
                        Notification(f"ORD{placed.order.id:012d}", f"t{n}", placed.order.payable, True),
                    )
                else:
                    from services.pricing.engine import quote

                    total = (await quote(session, store_id=store, lines=lines, member_id=None)).total
                    order = await pos.checkout(
                        session, HQ, pos.Checkout(store, f"p-{n}", lines, [pos.Tender(PaymentMethod.CASH, total)])
                    )
            if refund != "none":
                first = next(iter(cart))
                async with write_transaction(sessionmaker) as session:
                    await refunds.refund_order(
                        session,
                        _store_viewer(store),
                        state.payment_providers,
                        order_id=order.id,
                        quantities=None if refund == "all" else {first: 1},
                        restock=True,
                        reason=None,
                    )

        async def check() -> None:
            await asyncio.gather(facts.refresh_all(sessionmaker), facts.refresh_all(sessionmaker))
            today = utcnow().date()
            async with sessionmaker() as session:
                for scope, viewer, store_id in (
                    (None, HQ, None),
                    ([menu.store], _store_viewer(menu.store), None),
                    ([menu.other_store], HQ, menu.other_store),
                ):
                    report = await reports.sales(
                        session,
                        viewer,
                        store_id=store_id,
                        start=today - timedelta(days=1),
                        end=today + timedelta(days=1),
                        top=50,
                    )
                    assert _reported(report) == await _raw(session, scope)
                    assert report.freshness.pending == 0
                await _check_ranking(session, today - timedelta(days=1), today + timedelta(days=1), menu.store)

        @settings(max_examples=12, deadline=None, database=None)
        @given(sales=st.lists(sale, min_size=1, max_size=5))
        def example(sales: list[tuple[int, dict[int, int], bool, str, int]]) -> None:
            for store, cart, online, refund, cost in sales:
                run(sell(store, cart, online, refund, cost, len(checked)))
                checked.append(1)
            run(check())

        example()

    await in_own_loop(state, examples)
    assert len(checked) >= 12


async def _check_ranking(session: Any, start: Any, end: Any, own: int) -> None:
    """The ranking made in SQL equals every store's figures sorted in Python by `metric_value`, for every metric, and a
    store's manager gets their own store's row with the same place."""
    everyone = await reports.per_store(session, start, end, costed=True)
    for metric in reports.RANK_METRICS:
        expected = sorted(everyone, key=lambda sid: (-reports.metric_value(everyone[sid], metric), sid))
        ranked = await reports.ranking(session, HQ, start=start, end=end, metric=metric, first=50)
        assert [(r.store_id, r.rank, r.figures) for r in ranked] == [
            (sid, i + 1, everyone[sid]) for i, sid in enumerate(expected)
        ], metric
        mine = await reports.ranking(session, _store_viewer(own), start=start, end=end, metric=metric)
        assert [(r.store_id, r.rank) for r in mine] == [(sid, i + 1) for i, sid in enumerate(expected) if sid == own]
        assert [r.figures for r in mine] == [everyone[own]] if own in everyone else mine == []


async def test_store_b_cannot_read_store_a_reports_or_csv(api, state, chain):
    menu = await given_menu(state, chain)
    async with write_transaction(state.sessionmaker) as session:
        for store in (menu.store, menu.other_store):
            await pos.checkout(
                session,
                HQ,
                pos.Checkout(store, f"s-{store}", [CartLine(menu.a, 1)], [pos.Tender(PaymentMethod.CASH, 10000)]),
            )
    await facts.refresh_all(state.sessionmaker)
    sh01 = gid("Store", menu.store)
    for name in ("salesReport", "inventoryReport", "memberReport", "marketingReport"):
        refused = await api.gql(f"query($s: ID) {{ {name}(storeId: $s) {{ csv }} }}", {"s": sh01}, as_="sh02.manager")
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN", (name, refused)
    own = await api.gql(
        "{ salesReport { totals { orders net } csv } storeRanking { rows { store { code } } csv } }", as_="sh02.manager"
    )
    assert own["data"]["salesReport"]["totals"] == {"orders": 1, "net": 10000}
    assert own["data"]["storeRanking"]["rows"] == [{"store": {"code": "SH02"}}]
    assert "SH01" not in own["data"]["storeRanking"]["csv"] and own["data"]["salesReport"]["csv"].count("\n") == 2
    everything = await api.gql(
        "{ salesReport { totals { orders } } storeRanking { rows { rank store { code } } } }", as_="hq.analyst"
    )
    assert everything["data"]["salesReport"]["totals"]["orders"] == 2
    assert len(everything["data"]["storeRanking"]["rows"]) == 2
    clerk = await api.gql("{ salesReport { csv } }", as_="sh02.clerk")
    assert clerk["errors"][0]["extensions"]["code"] == "FORBIDDEN"


@pytest.mark.postgres_too
async def test_the_sales_report_is_chart_ready(api, state, chain):
    menu = await given_menu(state, chain)
    async with write_transaction(state.sessionmaker) as session:
        await pos.checkout(
            session,
            HQ,
            pos.Checkout(
                menu.store, "c-1", [CartLine(menu.a, 2), CartLine(menu.b, 1)], [pos.Tender(PaymentMethod.CASH, 25000)]
            ),
        )
    await facts.refresh_all(state.sessionmaker)
    body = await api.gql(
        """{ salesReport(granularity: MONTH) { series { label figures { orders net } }
      byHour { label figures { orders } } byChannel { label } byCategory { label net } topProducts { quantity sku { id } }
      previous { net } netChange freshness { pendingEvents } } }""",
        as_="hq.admin",
    )
    report = body["data"]["salesReport"]
    assert [p["figures"] for p in report["series"]] == [{"orders": 1, "net": 25000}]
    assert len(report["byHour"]) == 24 and sum(p["figures"]["orders"] for p in report["byHour"]) == 1
    assert report["byChannel"] == [{"label": "POS"}] and report["netChange"] is None
    assert report["topProducts"][0] == {"quantity": 2, "sku": {"id": gid("Sku", menu.a)}}
    assert sorted(c["net"] for c in report["byCategory"]) == [5000, 20000]


async def test_inventory_and_member_reports(api, state, chain):
    menu = await given_menu(state, chain, on_hand=10)
    async with write_transaction(state.sessionmaker) as session:
        await session.execute(
            update(StockLevel).where(StockLevel.sku_id == menu.c, StockLevel.store_id == menu.store).values(on_hand=0)
        )
        await pos.checkout(
            session, HQ, pos.Checkout(menu.store, "i-1", [CartLine(menu.a, 4)], [pos.Tender(PaymentMethod.CASH, 40000)])
        )
    await facts.refresh_all(state.sessionmaker)
    body = await api.gql(
        'query($s: ID) { inventoryReport(storeId: $s, from: "2026-01-01") { rows { onHand listed'
        " outOfStock stockoutRate lowStock sold } } memberReport { totalMembers levels { label count } } }",
        {"s": gid("Store", menu.store)},
        as_="hq.admin",
    )
    row = body["data"]["inventoryReport"]["rows"][0]
    assert len(body["data"]["inventoryReport"]["rows"]) == 1
    assert row == {
        "onHand": 6 + 10,
        "listed": 3,
        "outOfStock": 1,
        "stockoutRate": round(1 / 3, 4),
        "lowStock": 1,
        "sold": 4,
    }
    assert body["data"]["memberReport"]["totalMembers"] >= 2


async def _sold_together(state, store: int, carts: list[list[int]]) -> None:
    async with write_transaction(state.sessionmaker) as session:
        for i, cart in enumerate(carts):
            await pos.checkout(
                session,
                HQ,
                pos.Checkout(
                    store, f"r-{i}", [CartLine(s, 1) for s in cart], [pos.Tender(PaymentMethod.CASH, 1000 * len(cart))]
                ),
            )


async def test_recommendations_follow_the_cart_and_never_offer_what_is_not_there(api, state, chain):
    store = chain.stores["SH01"]
    library = await make_library(state, products=6, skus_per_product=1, price=1000)
    a, b, c, d, e, f = library.sku_ids
    await list_in_store(state, store, library.sku_ids, on_hand=50)
    await _sold_together(state, store, [[a, b]] * 3 + [[a, c]] * 2 + [[a, d]] + [[e]] * 5 + [[f]] * 4)
    async with write_transaction(state.sessionmaker) as session:
        await recommendations.recompute_co_purchases(session)
        await session.execute(update(StoreListing).where(StoreListing.sku_id == d).values(on_shelf=False))
        await session.execute(update(StockLevel).where(StockLevel.sku_id == f).values(on_hand=0))
    await facts.refresh_all(state.sessionmaker)
    query = """query($s: ID!, $cart: [ID!]!) { recommendations(storeId: $s, context: {skuIds: $cart}, first: 4) {
      reason score sku { id } } }"""
    body = await api.gql(query, {"s": gid("Store", store), "cart": [gid("Sku", a)]})
    got = [(r["reason"], r["sku"]["id"]) for r in body["data"]["recommendations"]]
    assert got[:2] == [("BOUGHT_TOGETHER", gid("Sku", b)), ("BOUGHT_TOGETHER", gid("Sku", c))]
    offered = {sku for _, sku in got}
    assert gid("Sku", a) not in offered and gid("Sku", d) not in offered and gid("Sku", f) not in offered
    assert ("POPULAR", gid("Sku", e)) in got
    cold = await api.gql(query, {"s": gid("Store", store), "cart": []})
    assert cold["data"]["recommendations"][0]["reason"] == "POPULAR"
    assert gid("Sku", f) not in {r["sku"]["id"] for r in cold["data"]["recommendations"]}


async def test_a_member_is_offered_what_they_buy(api, state, chain):
    from services.members.accounts import relate

    menu = await given_menu(state, chain)
    viewer = Viewer(kind=ViewerKind.MEMBER, member_id=menu.plain)
    for n in range(2):
        async with write_transaction(state.sessionmaker) as session:
            placed = await orders.place_order(
                session,
                viewer,
                state.payment_providers["sandbox"],
                orders.PlaceOrder(menu.store, [CartLine(menu.c, 1)], f"mine-{n}"),
            )
            await orders.mark_paid(session, placed.order.id, utcnow())
            await relate(session, menu.plain, menu.store)
    async with state.sessionmaker() as session:
        found = await recommendations.recommend(session, viewer, store_id=menu.store, cart=[menu.a], first=3)
    assert found[0].sku_id == menu.c and found[0].reason == "FOR_YOU"

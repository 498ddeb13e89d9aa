"""Past purchase receipts (进货单) at a warehouse, by role over HTTP: HQ lists them newest first with their lines and
cost, narrowed to the warehouse's local days; a store's staff see none of a warehouse's; the statement count of the
list is the same for 10 and 100 receipts."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from models import PurchaseReceipt, utcnow
from services.inventory import purchases
from services.platform.db import write_transaction
from tests.conftest import count_statements, gid, pk
from tests.factories import HQ, make_library

CREATE_WAREHOUSE = """mutation { createStore(input: {code: "WH-EAST", name: "华东仓", city: "上海",
  address: "嘉定区仓库路1号", lat: 31.38, lng: 121.25, kind: WAREHOUSE}) { errors { code } store { id } } }"""
OPEN = "mutation($id: ID!) { setStoreStatus(input: {id: $id, status: OPEN}) { errors { code } } }"
RECEIPTS = """query($w: ID!, $from: Date, $to: Date, $first: Int, $after: String) { purchaseReceipts(warehouseId: $w,
  from: $from, to: $to, first: $first, after: $after) { edges { node { id supplierName totalCost warehouse { code }
  lines { quantity unitCost costBefore costAfter sku { id barcode } } } } pageInfo { hasNextPage endCursor } } }"""


async def _warehouse(api) -> int:
    created = (await api.gql(CREATE_WAREHOUSE, as_="hq.admin"))["data"]["createStore"]["store"]["id"]
    await api.gql(OPEN, {"id": created}, as_="hq.admin")
    return pk(created)


async def _receive(state, warehouse: int, skus: list[int], n: int, *, supplier: str = "上海乳业") -> None:
    """Given n purchases at the warehouse, two lines each."""
    async with write_transaction(state.sessionmaker) as session:
        for i in range(n):
            lines = [purchases.PurchaseLine(s, 5 + i % 3, 400 + 10 * j) for j, s in enumerate(skus[:2])]
            purchase = purchases.Purchase(warehouse, f"{supplier}{i}", None, lines, None)
            await purchases.receive_once(session, HQ, purchase, key=f"po-{supplier}-{i}")


async def test_hq_lists_a_warehouses_receipts_newest_first_with_lines_and_cost(api, state, chain):
    warehouse = await _warehouse(api)
    library = await make_library(state, products=1, skus_per_product=2)
    await _receive(state, warehouse, library.sku_ids, 3)
    body = await api.gql(RECEIPTS, {"w": gid("Store", warehouse), "first": 2}, as_="hq.analyst")
    page = body["data"]["purchaseReceipts"]
    assert [e["node"]["supplierName"] for e in page["edges"]] == ["上海乳业2", "上海乳业1"]
    assert page["pageInfo"]["hasNextPage"] is True
    newest = page["edges"][0]["node"]
    assert newest["warehouse"]["code"] == "WH-EAST"
    assert [(x["quantity"], x["unitCost"]) for x in newest["lines"]] == [(7, 400), (7, 410)]
    assert newest["totalCost"] == 7 * 400 + 7 * 410
    assert all(x["costAfter"] > 0 for x in newest["lines"])
    rest = await api.gql(
        RECEIPTS, {"w": gid("Store", warehouse), "first": 2, "after": page["pageInfo"]["endCursor"]}, as_="hq.admin"
    )
    assert [e["node"]["supplierName"] for e in rest["data"]["purchaseReceipts"]["edges"]] == ["上海乳业0"]


async def test_receipts_are_narrowed_to_the_warehouses_local_days(api, state, chain):
    warehouse = await _warehouse(api)
    library = await make_library(state, products=1, skus_per_product=2)
    await _receive(state, warehouse, library.sku_ids, 2)
    async with write_transaction(state.sessionmaker) as session:  # the first one came ten days ago
        first = await session.scalar(select(func.min(PurchaseReceipt.id)))
        await session.execute(
            update(PurchaseReceipt).where(PurchaseReceipt.id == first).values(created_at=utcnow() - timedelta(days=10))
        )
    today = (utcnow() + timedelta(hours=8)).date()  # Asia/Shanghai
    w = gid("Store", warehouse)

    async def names(**days: str) -> list[str]:
        body = await api.gql(RECEIPTS, {"w": w, **days}, as_="hq.admin")
        return [e["node"]["supplierName"] for e in body["data"]["purchaseReceipts"]["edges"]]

    assert await names(**{"from": today.isoformat(), "to": today.isoformat()}) == ["上海乳业1"]
    assert await names(to=(today - timedelta(days=1)).isoformat()) == ["上海乳业0"]
    assert await names() == ["上海乳业1", "上海乳业0"]
    backwards = await api.gql(RECEIPTS, {"w": w, "from": today.isoformat(), "to": "2020-01-01"}, as_="hq.admin")
    assert backwards["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"  # a query's refusal of its input


async def test_a_stores_staff_see_no_receipts_of_a_warehouse_and_members_are_refused(api, state, chain):
    warehouse = await _warehouse(api)
    library = await make_library(state, products=1, skus_per_product=2)
    await _receive(state, warehouse, library.sku_ids, 2)
    for who in ("sh01.manager", "sh01.clerk"):
        body = await api.gql(RECEIPTS, {"w": gid("Store", warehouse)}, as_=who)
        assert body["data"]["purchaseReceipts"]["edges"] == []
        unknown = await api.gql(RECEIPTS, {"w": gid("Store", 999_999)}, as_=who)
        assert unknown == body  # exactly like a warehouse that does not exist
    member = await api.gql(RECEIPTS, {"w": gid("Store", warehouse)}, as_="member:someone")
    assert member["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_the_receipts_list_takes_the_same_statements_for_10_and_100(api, state, chain):
    warehouse = await _warehouse(api)
    library = await make_library(state, products=1, skus_per_product=2)
    w = gid("Store", warehouse)
    await api.token("hq.admin")
    counts = []
    for total in (10, 100):
        await _receive(state, warehouse, library.sku_ids, total - (10 if total == 100 else 0), supplier=f"S{total}-")
        with count_statements(state.engine) as counter:
            body = await api.gql(RECEIPTS, {"w": w, "first": 100}, as_="hq.admin")
        assert len(body["data"]["purchaseReceipts"]["edges"]) == total
        counts.append(counter.count)
    assert counts[0] == counts[1], counts

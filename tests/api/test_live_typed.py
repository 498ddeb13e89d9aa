"""What the live feeds carry: typed order events with the order, and every change that stockChanged shows."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets
from websockets.typing import Subprotocol

from app import create_app
from tests.api.test_e2e_http import running_server
from tests.conftest import gid
from tests.factories import list_in_store, make_library


async def _subscribe(url: str, token: str, query: str, variables: dict[str, str]):
    ws = await websockets.connect(f"ws://{url}/graphql", subprotocols=[Subprotocol("graphql-transport-ws")])
    await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    await ws.send(json.dumps({"id": "s1", "type": "subscribe", "payload": {"query": query, "variables": variables}}))
    await asyncio.sleep(0.3)  # the broker subscription is made when the server starts iterating
    return ws


async def _next(ws) -> dict[str, Any]:
    message = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert message["type"] == "next", message
    data: dict[str, Any] = message["payload"]["data"]
    return data


STOCK = "subscription($s: ID!) { stockChanged(storeId: $s) { onHand available lowThreshold isLow sku { id } } }"
THRESHOLD = """mutation($s: ID!, $k: ID!, $t: Int) { setLowStockThreshold(input: {storeId: $s, skuId: $k, threshold: $t}) {
  errors { code } levels { isLow } } }"""
SKU_LINE = """mutation($k: ID!, $t: Int) { updateSku(input: {id: $k, lowStockDefault: $t}) { errors { code } } }"""


async def test_a_low_stock_line_change_is_published_to_stock_changed(api, state, chain):
    library = await make_library(state, products=1, skus_per_product=1)
    sku = library.sku_ids[0]
    await list_in_store(state, chain.stores["SH01"], [sku], on_hand=4)
    store, sku_id = gid("Store", chain.stores["SH01"]), gid("Sku", sku)
    async with running_server(create_app(state=state)) as url:
        ws = await _subscribe(url, await api.token("sh01.manager"), STOCK, {"s": store})
        try:
            raised = await api.gql(THRESHOLD, {"s": store, "k": sku_id, "t": 5}, as_="sh01.manager")
            assert raised["data"]["setLowStockThreshold"]["levels"] == [{"isLow": True}]
            event = (await _next(ws))["stockChanged"]
            assert event == {"onHand": 4, "available": 4, "lowThreshold": 5, "isLow": True, "sku": {"id": sku_id}}
            await api.gql(THRESHOLD, {"s": store, "k": sku_id, "t": 2}, as_="sh01.manager")
            assert (await _next(ws))["stockChanged"] == {**event, "lowThreshold": 2, "isLow": False}
            await api.gql(THRESHOLD, {"s": store, "k": sku_id, "t": None}, as_="sh01.manager")
            assert (await _next(ws))["stockChanged"]["lowThreshold"] == 5  # the chain's default again
            # HQ moves the chain's default line: every level that follows it is published.
            chain_line = "mutation { updateChainSettings(input: {defaultLowStockThreshold: 3}) { errors { code } } }"
            assert (await api.gql(chain_line, as_="hq.admin"))["data"]["updateChainSettings"]["errors"] == []
            assert (await _next(ws))["stockChanged"] == {**event, "lowThreshold": 3, "isLow": False}
            # HQ moves the SKU's own line: every store's level that follows it shows the new line.
            moved = await api.gql(SKU_LINE, {"k": sku_id, "t": 10}, as_="hq.admin")
            assert "errors" not in moved and moved["data"]["updateSku"]["errors"] == [], moved
            assert (await _next(ws))["stockChanged"] == {**event, "lowThreshold": 10}
        finally:
            await ws.close()


ORDER_EVENTS = "subscription($s: ID!) { orderEvents(storeId: $s) { status order { id status payable } } }"


@pytest.mark.postgres_too
async def test_order_events_carry_the_status_enum_and_the_order(api, state, chain):
    from tests.api.test_typed_api import _day_of_sales

    orders = await _day_of_sales(state, chain)
    store = gid("Store", chain.stores["SH01"])
    async with running_server(create_app(state=state)) as url:
        ws = await _subscribe(url, await api.token("sh01.manager"), ORDER_EVENTS, {"s": store})
        try:
            refund = (
                "mutation($id: ID!, $idempotencyKey: String!) { refundOrder(input: {id: $id,"
                " idempotencyKey: $idempotencyKey}) { errors { code } } }"
            )
            for key in ("a", "b"):
                done = await api.gql(refund, {"id": gid("Order", orders[key])}, as_="sh01.manager")
                assert done["data"]["refundOrder"]["errors"] == [], done
            events = [(await _next(ws))["orderEvents"] for _ in range(2)]
        finally:
            await ws.close()
    assert events == [
        {"status": "REFUNDED", "order": {"id": gid("Order", orders["a"]), "status": "REFUNDED", "payable": 2000}},
        {"status": "REFUNDED", "order": {"id": gid("Order", orders["b"]), "status": "REFUNDED", "payable": 1000}},
    ]

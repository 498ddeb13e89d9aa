"""Live stock over a real websocket: sent after commit, never for a rolled-back change, fanned out through Redis."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import replace

import httpx
import pytest
import websockets
from websockets.typing import Subprotocol

from app import create_app
from resolvers.state import build_state
from services.platform.events import RedisBroker
from tests.api.test_e2e_http import running_server
from tests.conftest import Api, gid
from tests.factories import list_in_store, make_library

SUBSCRIBE = "subscription($s: ID!) { stockChanged(storeId: $s) { onHand available sku { barcode } } }"
RECEIVE = """mutation($idempotencyKey: String!, $s: ID!, $k: ID!, $q: Int!) { receiveStock(input: {idempotencyKey: $idempotencyKey, storeId: $s, lines: [{skuId: $k, quantity: $q}]}) { errors { code } } }"""
ADJUST = """mutation($idempotencyKey: String!, $s: ID!, $k: ID!, $d: Int!) { adjustStock(input: {idempotencyKey: $idempotencyKey, storeId: $s, lines: [{skuId: $k, delta: $d}], reason: DAMAGE}) { errors { code } } }"""


async def _subscribe(url: str, token: str, store_id: str):
    ws = await websockets.connect(f"ws://{url}/graphql", subprotocols=[Subprotocol("graphql-transport-ws")])
    await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    await ws.send(
        json.dumps({"id": "s1", "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": {"s": store_id}}})
    )
    await asyncio.sleep(0.3)  # the broker subscription is made when the server starts iterating
    return ws


@pytest.mark.postgres_too
async def test_a_subscriber_gets_stock_changed_after_commit_and_nothing_for_a_rollback(api, state, chain):
    library = await make_library(state, products=1, skus_per_product=1)
    sku = library.sku_ids[0]
    await list_in_store(state, chain.stores["SH01"], [sku], on_hand=2)
    store = gid("Store", chain.stores["SH01"])
    async with running_server(create_app(state=state)) as url:
        ws = await _subscribe(url, await api.token("sh01.manager"), store)
        try:
            failed = await api.gql(ADJUST, {"s": store, "k": gid("Sku", sku), "d": -5}, as_="sh01.manager")
            assert failed["data"]["adjustStock"]["errors"] == [{"code": "OUT_OF_STOCK"}]
            await api.gql(RECEIVE, {"s": store, "k": gid("Sku", sku), "q": 3}, as_="sh01.manager")
            message = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert message["type"] == "next"
            # The first event is the receipt's: the refused adjustment announced nothing.
            assert message["payload"]["data"]["stockChanged"] == {
                "onHand": 5,
                "available": 5,
                "sku": {"barcode": "6900000000"},
            }
        finally:
            await ws.close()


async def test_a_subscriber_of_another_store_is_refused(api, state, chain):
    async with running_server(create_app(state=state)) as url:
        ws = await _subscribe(url, await api.token("sh02.manager"), gid("Store", chain.stores["SH01"]))
        try:
            message = json.loads(await asyncio.wait_for(ws.recv(), 5))
        finally:
            await ws.close()
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    assert [e["extensions"]["code"] for e in errors] == ["FORBIDDEN"]


async def test_a_bad_token_on_the_websocket_is_rejected(state):
    async with running_server(create_app(state=state)) as url:
        ws = await websockets.connect(f"ws://{url}/graphql", subprotocols=[Subprotocol("graphql-transport-ws")])
        await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": "Bearer forged"}}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


@pytest.mark.postgres_too
async def test_with_redis_a_subscriber_on_a_second_instance_receives_the_change(state, chain, settings, redis_url):
    library = await make_library(state, products=1, skus_per_product=1)
    sku = library.sku_ids[0]
    await list_in_store(state, chain.stores["SZ01"], [sku])
    prefix = f"test-{uuid.uuid4().hex}:"
    instance_a = build_state(replace(settings, redis_url=redis_url))
    instance_b = build_state(replace(settings, redis_url=redis_url))
    for st in (instance_a, instance_b):
        await st.broker.close()
        st.broker = RedisBroker(redis_url, channel_prefix=prefix)
    store = gid("Store", chain.stores["SZ01"])
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(state=instance_a)), base_url="http://a"
        ) as http:
            api_a = Api(http)
            async with running_server(create_app(state=instance_b)) as url_b:
                ws = await _subscribe(url_b, await api_a.token("hq.admin"), store)
                try:
                    await api_a.gql(RECEIVE, {"s": store, "k": gid("Sku", sku), "q": 4}, as_="sz01.manager")
                    message = json.loads(await asyncio.wait_for(ws.recv(), 5))
                finally:
                    await ws.close()
        assert message["payload"]["data"]["stockChanged"]["onHand"] == 4
    finally:
        for st in (instance_a, instance_b):
            await st.broker.close()
            await st.engine.dispose()


async def test_hq_watches_the_whole_chain_and_store_staff_may_not(api, state, chain):
    library = await make_library(state, products=1, skus_per_product=1)
    sku = library.sku_ids[0]
    for code in ("SH01", "HZ01"):
        await list_in_store(state, chain.stores[code], [sku])
    query = "subscription { chainStockChanged { onHand store { code } } }"

    async def open_ws(url, who):
        ws = await websockets.connect(f"ws://{url}/graphql", subprotocols=[Subprotocol("graphql-transport-ws")])
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {await api.token(who)}"}})
        )
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "c", "type": "subscribe", "payload": {"query": query}}))
        return ws

    async with running_server(create_app(state=state)) as url:
        hq, clerk = await open_ws(url, "hq.analyst"), await open_ws(url, "sh01.clerk")
        try:
            refused = json.loads(await asyncio.wait_for(clerk.recv(), 5))
            assert [e["extensions"]["code"] for e in refused["payload"]["errors"]] == ["FORBIDDEN"]
            await asyncio.sleep(0.3)
            for code, q in (("HZ01", 2), ("SH01", 5)):
                await api.gql(
                    RECEIVE, {"s": gid("Store", chain.stores[code]), "k": gid("Sku", sku), "q": q}, as_="hq.admin"
                )
            seen = [
                json.loads(await asyncio.wait_for(hq.recv(), 5))["payload"]["data"]["chainStockChanged"]
                for _ in range(2)
            ]
        finally:
            await hq.close()
            await clerk.close()
    assert seen == [{"onHand": 2, "store": {"code": "HZ01"}}, {"onHand": 5, "store": {"code": "SH01"}}]

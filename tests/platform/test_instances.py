"""Two app instances on one PostgreSQL and one Redis: no oversell across them, live events reach subscribers on
both, and each due job runs once."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest
import websockets
from sqlalchemy import func, select
from websockets.typing import Subprotocol

from app import create_app
from models import CampaignKind, Job, JobStatus, Order, OrderStatus, StockLevel, StockMovement, utcnow
from resolvers.state import build_state
from services.platform import jobs
from services.platform.events import RedisBroker
from tests.api.test_e2e_http import running_server
from tests.conftest import Api, gid, pk
from tests.factories import list_in_store, make_library

# 40 orders queue on one stock row across two servers: on a busy CI machine some take longer than httpx's 5 s default.
SLOW = httpx.Timeout(60.0)

PLACE = """mutation($s: ID!, $k: ID!, $key: String!) { placeOrder(input: {storeId: $s, lines: [{skuId: $k, quantity: 1}],
  idempotencyKey: $key}) { errors { code } order { id payable } } }"""


@pytest.fixture
async def two_instances(state, settings, redis_url):
    """Several instances share one PostgreSQL (SQLite is one process's database): the tests are postgres_only."""
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    instances = [build_state(replace(settings, redis_url=redis_url)) for _ in range(2)]
    for instance in instances:
        await instance.broker.close()
        instance.broker = RedisBroker(redis_url, channel_prefix=prefix)
    yield instances
    for instance in instances:
        await instance.broker.close()
        await instance.engine.dispose()


async def _sign_in(url: str, who: str) -> str:
    async with httpx.AsyncClient(base_url=f"http://{url}", timeout=SLOW) as http:
        return await Api(http).token(who)


@pytest.mark.postgres_only
async def test_members_on_two_instances_never_oversell_and_both_tablets_hear_every_order(state, chain, two_instances):
    store = chain.stores["SH01"]
    library = await make_library(state, products=1, skus_per_product=1, price=1000)
    sku = library.sku_ids[0]
    await list_in_store(state, store, library.sku_ids, on_hand=10)
    a, b = two_instances
    async with running_server(create_app(state=a)) as url_a, running_server(create_app(state=b)) as url_b:
        clerk = await _sign_in(url_a, "sh01.clerk")
        sockets = []
        for url in (url_a, url_b):
            ws = await websockets.connect(f"ws://{url}/graphql", subprotocols=[Subprotocol("graphql-transport-ws")])
            await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {clerk}"}}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            await ws.send(
                json.dumps(
                    {
                        "id": "o",
                        "type": "subscribe",
                        "payload": {
                            "query": "subscription($s: ID!) { orderEvents(storeId: $s) { orderId status } }",
                            "variables": {"s": gid("Store", store)},
                        },
                    }
                )
            )
            sockets.append(ws)
        await asyncio.sleep(0.5)
        try:
            tokens = [await _sign_in(url_a if i % 2 else url_b, f"member:multi-{i}") for i in range(8)]
            async with httpx.AsyncClient(timeout=SLOW) as http:

                async def attempt(i: int) -> str | None:
                    url = (url_a, url_b)[i % 2]
                    body = (
                        await http.post(
                            f"http://{url}/graphql",
                            json={
                                "query": PLACE,
                                "variables": {"s": gid("Store", store), "k": gid("Sku", sku), "key": f"k-{i}"},
                            },
                            headers={"authorization": f"Bearer {tokens[i % 8]}"},
                        )
                    ).json()
                    order = body["data"]["placeOrder"]["order"]
                    return order["id"] if order else None

                placed = [o for o in await asyncio.gather(*(attempt(i) for i in range(40))) if o]
                assert len(placed) == 10
                paid = placed[0]
                headers, note = state.payment_providers["sandbox"].notification(
                    provider_ref=f"ORD{pk(paid):012d}", amount=1000
                )
                assert (
                    await http.post(f"http://{url_b}/payments/notify/sandbox", content=note, headers=headers)
                ).json() == {"code": "SUCCESS"}
            heard = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for ws in sockets]
            assert [h["payload"]["data"]["orderEvents"] for h in heard] == [{"orderId": paid, "status": "PAID"}] * 2
        finally:
            for ws in sockets:
                await ws.close()
    async with state.sessionmaker() as session:
        level = await session.scalar(select(StockLevel).where(StockLevel.sku_id == sku, StockLevel.store_id == store))
        ledger = (
            await session.execute(
                select(func.sum(StockMovement.quantity), func.sum(StockMovement.reserved_delta)).where(
                    StockMovement.sku_id == sku
                )
            )
        ).one()
    assert (level.on_hand, level.reserved) == (9, 9) == tuple(ledger)


@pytest.mark.postgres_only
async def test_each_due_job_runs_once_across_two_instances(state, chain, two_instances):
    store = chain.stores["SH02"]
    library = await make_library(state, products=1, skus_per_product=1, price=1000)
    sku = library.sku_ids[0]
    await list_in_store(state, store, library.sku_ids, on_hand=20)
    a, b = two_instances
    async with (
        running_server(create_app(state=a)) as url_a,
        httpx.AsyncClient(base_url=f"http://{url_a}", timeout=SLOW) as http,
    ):
        api = Api(http)
        for i in range(6):
            body = await api.gql(
                PLACE, {"s": gid("Store", store), "k": gid("Sku", sku), "key": f"j-{i}"}, as_=f"member:jobs-{i}"
            )
            assert body["data"]["placeOrder"]["order"]
    leader = await _group_with_a_paid_leader(state, store, sku)
    later = utcnow() + timedelta(minutes=40)
    ran = await asyncio.gather(
        *(jobs.run_due(st.sessionmaker, later, providers=st.payment_providers) for st in (a, b, a, b))
    )
    async with state.sessionmaker() as session:
        expiries = (await session.scalars(select(Job).where(Job.kind == "orders.expire"))).all()
        cancelled = await session.scalar(
            select(func.count()).select_from(Order).where(Order.status == OrderStatus.CANCELLED)
        )
        releases = await session.scalar(
            select(func.count()).select_from(StockMovement).where(StockMovement.kind == "RELEASE")
        )
        level = await session.scalar(select(StockLevel).where(StockLevel.sku_id == sku, StockLevel.store_id == store))
        group_jobs = (await session.scalars(select(Job).where(Job.kind == "groups.expire"))).all()
        refunded = await session.get(Order, leader)
    # six unpaid orders and the paid group leader's (which finds it paid and leaves it)
    assert len(expiries) == 7 and all(j.status is JobStatus.DONE and j.attempts == 1 for j in expiries)
    assert sum(ran) >= 7 and cancelled == 6 and releases == 6 and level.reserved == 0 and level.on_hand == 20
    assert [(j.status, j.attempts) for j in group_jobs] == [(JobStatus.DONE, 1)]
    # whichever instance ran the group's job asked its provider, once
    asked = [r for st in (a, b) for r in st.payment_providers["sandbox"].refunds.get(f"ORD{leader:012d}", {}).values()]
    assert refunded.status is OrderStatus.REFUNDED and asked == [600]


async def _group_with_a_paid_leader(state, store: int, sku: int) -> int:
    from models import Member
    from services.access.scope import Viewer, ViewerKind
    from services.marketing import group_buys
    from services.marketing.promotions import ItemSpec
    from services.orders import lifecycle as orders
    from services.platform.db import write_transaction
    from services.platform.payments import Notification
    from tests.marketing_givens import campaign

    campaign_id = await campaign(
        state, CampaignKind.GROUP_BUY, items=[ItemSpec(sku, price=600)], group_size=3, group_minutes=30
    )
    provider = state.payment_providers["sandbox"]
    async with write_transaction(state.sessionmaker) as session:
        member = Member(name="团长")
        session.add(member)
        await session.flush()
        opened = await group_buys.open_group(
            session,
            Viewer(kind=ViewerKind.MEMBER, member_id=member.id),
            provider,
            campaign_id=campaign_id,
            store_id=store,
            sku_id=sku,
            idempotency_key="lead",
        )
        order = opened.placed.order
        await orders.apply_notification(session, provider.name, Notification(f"ORD{order.id:012d}", "t", 600, True))
    return order.id

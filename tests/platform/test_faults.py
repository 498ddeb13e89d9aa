"""Faults: the database connection killed mid-transaction, a lock held too long, a payment provider that times out
or answers late. Nothing is half-written, the client gets a clean retryable error, the next request works, and
the ledgers reconcile."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app import create_app
from models import IdempotencyKey, Order, Payment, StockLevel, StockMovement
from resolvers.state import build_state
from services.platform import db
from tests.conftest import Api, gid, pk
from tests.factories import list_in_store, make_library

PLACE = """mutation($s: ID!, $k: ID!, $key: String!) { placeOrder(input: {storeId: $s, lines: [{skuId: $k, quantity: 2}],
  idempotencyKey: $key}) { errors { code } order { id payable } } }"""


async def _given(state, chain, on_hand: int = 10) -> tuple[int, int]:
    library = await make_library(state, products=1, skus_per_product=1, price=1000)
    await list_in_store(state, chain.stores["SH01"], library.sku_ids, on_hand=on_hand)
    return chain.stores["SH01"], library.sku_ids[0]


async def _reconciles(state, store: int, sku: int) -> tuple[int, int]:
    async with state.sessionmaker() as session:
        level = await session.scalar(select(StockLevel).where(StockLevel.sku_id == sku, StockLevel.store_id == store))
        ledger = (
            await session.execute(
                select(func.sum(StockMovement.quantity), func.sum(StockMovement.reserved_delta)).where(
                    StockMovement.sku_id == sku, StockMovement.store_id == store
                )
            )
        ).one()
    assert (level.on_hand, level.reserved) == tuple(ledger)
    return level.on_hand, level.reserved


def _code(body: dict[str, Any]) -> str:
    return str(body["errors"][0]["extensions"]["code"])


@pytest.mark.postgres_only
async def test_a_connection_killed_mid_transaction_writes_nothing_and_the_retry_works(api, state, chain):
    store, sku = await _given(state, chain)
    token = await api.token("member:killed")
    fired: list[str] = []

    def kill_on_order_lines(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if not fired and statement.lstrip().upper().startswith("INSERT INTO ORDER_LINES"):
            fired.append(statement)
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    event.listen(state.engine.sync_engine, "before_cursor_execute", kill_on_order_lines)
    try:
        variables = {"s": gid("Store", store), "k": gid("Sku", sku), "key": "kill-1"}
        killed = (await api.post(PLACE, variables, token=token)).json()
    finally:
        event.remove(state.engine.sync_engine, "before_cursor_execute", kill_on_order_lines)
    assert fired and _code(killed) == "TEMPORARILY_UNAVAILABLE" and killed["errors"][0]["extensions"]["retryable"]
    assert "Traceback" not in str(killed) and "INSERT" not in str(killed)
    async with state.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == 0
        assert await session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0
    assert await _reconciles(state, store, sku) == (10, 0)
    retried = (await api.post(PLACE, variables, token=token)).json()  # same key: a clean first attempt
    assert retried["data"]["placeOrder"]["order"]["payable"] == 2000
    assert await _reconciles(state, store, sku) == (10, 2)


@pytest.mark.postgres_only
async def test_a_lock_held_too_long_fails_retryable_and_changes_nothing(api, settings, state, chain):
    store, sku = await _given(state, chain)
    impatient = build_state(replace(settings, db_lock_timeout_ms=300))
    token = await api.token("member:waiting")
    try:
        app = create_app(state=impatient)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as http:
            async with state.engine.connect() as holder:
                await holder.execute(text("BEGIN"))
                await holder.execute(text("SELECT 1 FROM stock_levels WHERE sku_id = :k FOR UPDATE"), {"k": sku})
                blocked = (
                    await Api(http).post(
                        PLACE, {"s": gid("Store", store), "k": gid("Sku", sku), "key": "l-1"}, token=token
                    )
                ).json()
                await holder.execute(text("ROLLBACK"))
            assert _code(blocked) == "TEMPORARILY_UNAVAILABLE"
            assert await _reconciles(state, store, sku) == (10, 0)
            later = (
                await Api(http).post(PLACE, {"s": gid("Store", store), "k": gid("Sku", sku), "key": "l-1"}, token=token)
            ).json()
            assert later["data"]["placeOrder"]["order"]["payable"] == 2000
    finally:
        await impatient.engine.dispose()


@pytest.mark.postgres_too
async def test_a_provider_that_times_out_on_prepay_leaves_no_order_and_no_hold(api, state, chain):
    store, sku = await _given(state, chain)
    provider = state.payment_providers["sandbox"]
    provider.time_out_next = 1
    token = await api.token("member:prepay")
    variables = {"s": gid("Store", store), "k": gid("Sku", sku), "key": "p-1"}
    failed = (await api.post(PLACE, variables, token=token)).json()["data"]["placeOrder"]
    assert failed["errors"] == [{"code": "PAYMENT_PROVIDER_UNAVAILABLE"}] and failed["order"] is None
    assert await _reconciles(state, store, sku) == (10, 0)
    placed = (await api.post(PLACE, variables, token=token)).json()["data"]["placeOrder"]
    assert placed["order"]["payable"] == 2000


@pytest.mark.postgres_too
async def test_a_refund_whose_answer_was_lost_is_retried_and_money_moves_once(api, state, chain):
    store, sku = await _given(state, chain)
    token = await api.token("member:refund-retry")
    order = (await api.post(PLACE, {"s": gid("Store", store), "k": gid("Sku", sku), "key": "r-1"}, token=token)).json()[
        "data"
    ]["placeOrder"]["order"]
    provider = state.payment_providers["sandbox"]
    ref = f"ORD{pk(order['id']):012d}"
    headers, body = provider.notification(provider_ref=ref, amount=2000)
    for _ in range(2):  # the provider answers twice
        assert (await api.http.post("/payments/notify/sandbox", content=body, headers=headers)).json() == {
            "code": "SUCCESS"
        }
    refund = "mutation($idempotencyKey: String!, $id: ID!) { refundOrder(input: {idempotencyKey: $idempotencyKey, id: $id}) { errors { code } refund { amount } } }"
    provider.time_out_next, provider.time_out_after_done = 1, True
    lost = (await api.gql(refund, {"id": order["id"]}, as_="sh01.manager"))["data"]["refundOrder"]
    assert lost["errors"] == [{"code": "PAYMENT_PROVIDER_UNAVAILABLE"}]
    async with state.sessionmaker() as session:
        still = await session.get(Order, pk(order["id"]))
        assert still.status.value == "PAID"
    done = (await api.gql(refund, {"id": order["id"]}, as_="sh01.manager"))["data"]["refundOrder"]
    assert done["refund"]["amount"] == 2000
    assert list(provider.refunds[ref].values()) == [2000]  # asked twice for the same refund; paid back once
    async with state.sessionmaker() as session:
        payments = (await session.scalars(select(Payment).where(Payment.order_id == pk(order["id"])))).all()
    assert [p.status.value for p in payments] == ["SUCCEEDED"]
    assert await _reconciles(state, store, sku) == (10, 0)


async def _kill_pooled(state) -> int:
    """End every server connection to the test database but the killer's own (as a database restart would)."""
    killer = create_async_engine(db.normalise_url(state.settings.database_url), poolclass=NullPool)
    try:
        async with killer.connect() as conn:
            killed = await conn.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
    finally:
        await killer.dispose()
    return int(killed or 0)


STORES = "{ stores(first: 3) { edges { node { code } } } }"


@pytest.mark.postgres_only
async def test_a_pooled_connection_the_server_dropped_while_idle_is_replaced_unseen(api, state, monkeypatch):
    assert "errors" not in await api.gql(STORES, as_="hq.admin")
    assert await _kill_pooled(state) >= 1
    monkeypatch.setattr(db, "IDLE_PING_S", 0.0)  # every pooled connection counts as idle: pinged before use
    after = await api.gql(STORES, as_="hq.admin")
    assert "errors" not in after and len(after["data"]["stores"]["edges"]) == 3


@pytest.mark.postgres_only
async def test_after_a_database_restart_one_request_fails_retryable_and_the_next_works(api, state, monkeypatch):
    token = await api.token("hq.admin")
    monkeypatch.setattr(db, "IDLE_PING_S", 3600.0)  # recently used connections are trusted without a ping
    assert "errors" not in await api.gql(STORES, as_="hq.admin")
    assert await _kill_pooled(state) >= 1
    first = await api.post(STORES, {}, token=token)  # its token check meets a dead connection
    assert first.status_code == 503 and first.headers["retry-after"] == "1"
    assert first.json()["errors"][0]["extensions"] == {"code": "TEMPORARILY_UNAVAILABLE", "retryable": True}
    assert "Traceback" not in first.text and "SELECT" not in first.text
    second = (await api.post(STORES, {}, token=token)).json()  # the failure invalidated the whole pool
    assert "errors" not in second and len(second["data"]["stores"]["edges"]) == 3

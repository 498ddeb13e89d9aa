"""graphql-transport-ws over a real socket, with a client the project did not write (`websockets`): text frames,
the HTTP rules (trusted documents, limits, rate limits), a session re-checked while the socket is open, and a
context of its own for every operation."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy import select, update
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

from app import create_app
from models import AuthSession, StockLevel, StockMovement, utcnow
from resolvers.state import AppState, build_state
from schema.core.trusted import documents
from services.access.auth import SESSION_REVOKED
from services.platform.events import InProcessBroker, RedisBroker
from tests.api.test_e2e_http import running_server
from tests.conftest import Api, Chain, gid
from tests.factories import list_in_store, make_library

PROTOCOL = [Subprotocol("graphql-transport-ws")]
STOCK_CHANGED = "subscription($s: ID!) { stockChanged(storeId: $s) { onHand } }"
ORDER_EVENTS = "subscription($s: ID!) { orderEvents(storeId: $s) { orderId status } }"
ADJUST = """mutation($idempotencyKey: String!, $s: ID!, $k: ID!, $d: Int!) { adjustStock(input: {idempotencyKey: $idempotencyKey, storeId: $s, lines: [{skuId: $k, delta: $d}],
  reason: DAMAGE}) { errors { code } levels { onHand } } }"""
LOGIN = "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { errors { code } } }"
NEW_PASSWORD = "a-Long-and-unlikely-passphrase-7"


async def receive(ws: ClientConnection, wait: float = 5) -> dict[str, Any]:
    """The next message, which must come as a text frame (a `str`; a binary frame would be `bytes`)."""
    frame = await asyncio.wait_for(ws.recv(), wait)
    assert isinstance(frame, str), f"a binary frame: {frame!r}"
    message: dict[str, Any] = json.loads(frame)
    return message


async def connect(url: str, token: str | None = None) -> ClientConnection:
    ws = await websockets.connect(f"ws://{url}/graphql", subprotocols=PROTOCOL)
    await ws.send(
        json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"} if token else {}})
    )
    assert (await receive(ws))["type"] == "connection_ack"
    return ws


async def send(
    ws: ClientConnection, op_id: str, query: str | None = None, variables: dict[str, Any] | None = None, **extra: Any
) -> None:
    payload = {"variables": variables or {}, **extra} | ({"query": query} if query is not None else {})
    await ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))


async def result(
    ws: ClientConnection, op_id: str, query: str | None = None, variables: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """Run one operation: its `next` payload, or `{"errors": ...}` from an `error` message."""
    await send(ws, op_id, query, variables, **extra)
    message = await receive(ws)
    assert message["id"] == op_id
    if message["type"] == "error":
        return {"errors": message["payload"]}
    assert message["type"] == "next"
    assert await receive(ws) == {"id": op_id, "type": "complete"}
    payload: dict[str, Any] = message["payload"]
    return payload


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


async def closed_with(ws: ClientConnection, wait: float) -> tuple[int, float]:
    """Wait for the server to close the socket: its close code, and how long it took."""
    started = time.monotonic()
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), wait)
    assert closed.value.rcvd is not None, "the server did not close the socket"
    return closed.value.rcvd.code, time.monotonic() - started


def checking_every(state: AppState, seconds: float) -> AppState:
    return replace(state, settings=replace(state.settings, ws_session_check_s=seconds))


@asynccontextmanager
async def serving(state: AppState) -> AsyncIterator[str]:
    async with running_server(create_app(state=state)) as url:
        yield url


async def until_subscribers(state: AppState, count: int, within: float = 5) -> int:
    """Wait (bounded) until `count` subscriptions listen: a loaded machine takes longer than a fixed sleep."""
    for _ in range(int(within / 0.05)):
        if subscribers(state) == count:
            break
        await asyncio.sleep(0.05)
    return subscribers(state)


def subscribers(state: AppState) -> int:
    """Live broker subscriptions of this instance that a socket's running subscriptions hold (one each)."""
    assert isinstance(state.broker, InProcessBroker)
    return sum(pattern != SESSION_REVOKED for pattern, _ in state.broker._subscribers.values())


# 1. Text frames ------------------------------------------------------------------------------------------------


async def test_every_frame_the_server_sends_is_text(state):
    async with serving(state) as url:
        ws = await connect(url)  # connection_ack checked as text
        try:
            assert (await result(ws, "q", "{ stores(first: 1) { edges { node { code } } } }"))["data"] is not None
            assert codes(await result(ws, "bad", "{ nope }")) == ["GRAPHQL_VALIDATION_FAILED"]
            await ws.send(json.dumps({"type": "ping"}))
            assert await receive(ws) == {"type": "pong"}
        finally:
            await ws.close()


async def test_a_message_over_the_body_limit_closes_the_socket(state):
    async with serving(state) as url:
        ws = await connect(url)
        await send(ws, "big", "{ __typename }", {"pad": "x" * (state.limits.max_body_bytes + 1)})
        code, _ = await closed_with(ws, 5)
    assert code == 1009


async def test_only_graphql_transport_ws_is_spoken(state):
    async with serving(state) as url:
        # The legacy protocol would run operations past every rule below; the server does not offer it.
        ws = await websockets.connect(f"ws://{url}/graphql", subprotocols=[Subprotocol("graphql-ws")])
        code, _ = await closed_with(ws, 5)
    assert code == 4406


async def test_a_malformed_subscribe_closes_with_4400(state):
    async with serving(state) as url:
        for payload in (
            "text",
            {"query": 1},
            {"query": "{ __typename }", "variables": []},
            {"query": "{ __typename }", "operationName": 5},
        ):
            ws = await connect(url)
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
            code, _ = await closed_with(ws, 5)
            assert code == 4400, payload


# 4a. Trusted documents, limits, rate limits ---------------------------------------------------------------------


def _document(name: str) -> str:
    return next(h for h, d in documents().items() if d.name == name)


async def test_production_sockets_of_anonymous_and_members_run_trusted_documents_only(api, state):
    member = await api.token("member:ws-trusted")
    staff = await api.token("hq.admin")
    production = replace(state, settings=replace(state.settings, env="production"))
    async with serving(production) as url:
        anonymous = await connect(url)
        try:
            login = await result(anonymous, "1", LOGIN, {"u": "hq.admin", "p": "x"})
            assert codes(login) == ["TRUSTED_DOCUMENT_REQUIRED"]
            # The refusal ends that operation only: the socket stays open and runs a trusted document.
            nearby = await result(
                anonymous, "2", None, {"lat": 31.2335, "lng": 121.4737}, documentId=_document("NearbyStores")
            )
            assert "errors" not in nearby and nearby["data"]["nearbyStores"]["edges"]
            unknown = await result(anonymous, "3", None, documentId="sha256:" + "0" * 64)
            assert codes(unknown) == ["TRUSTED_DOCUMENT_NOT_FOUND"]
        finally:
            await anonymous.close()
        ws = await connect(url, member)
        try:
            assert codes(await result(ws, "1", "{ myOrders { edges { cursor } } }")) == ["TRUSTED_DOCUMENT_REQUIRED"]
            apollo = {"persistedQuery": {"version": 1, "sha256Hash": _document("MyOrders").removeprefix("sha256:")}}
            mine = await result(ws, "2", None, {"first": 5}, extensions=apollo)
            assert "errors" not in mine and mine["data"]["myOrders"]["edges"] == []
        finally:
            await ws.close()
        ws = await connect(url, staff)
        try:
            assert "errors" not in await result(ws, "1", "{ stores(first: 1) { edges { node { code } } } }")
        finally:
            await ws.close()


async def test_query_limits_apply_over_the_socket(state):
    deep = "{ stores(first: 1) { edges { node { " + "staff { store { " * 5 + "code" + " } }" * 5 + " } } } }"
    aliases = "{ " + " ".join(f"a{i}: __typename" for i in range(state.limits.max_aliases + 1)) + " }"
    costly = (
        "{ " + " ".join(f"s{i}: stores(first: 100) {{ edges {{ node {{ code name }} }} }}" for i in range(25)) + " }"
    )
    async with serving(state) as url:
        ws = await connect(url)
        try:
            assert codes(await result(ws, "1", deep)) == ["QUERY_TOO_DEEP"]
            assert codes(await result(ws, "2", aliases)) == ["TOO_MANY_ALIASES"]
            assert codes(await result(ws, "3", costly)) == ["QUERY_TOO_COSTLY"]
            tokens = "{ " + "__typename " * (state.limits.max_tokens + 1) + "}"
            assert codes(await result(ws, "4", tokens)) == ["TOO_MANY_TOKENS"]
        finally:
            await ws.close()


async def test_sign_in_attempts_over_the_socket_count_with_those_over_http(api, state):
    async with serving(state) as url:
        async with httpx.AsyncClient(base_url=f"http://{url}") as http:
            for _ in range(5):
                body = (await Api(http).post(LOGIN, {"u": "sh01.clerk", "p": "wrong"})).json()
                assert body["data"]["login"]["errors"] == [{"code": "INVALID_CREDENTIALS"}]
        ws = await connect(url)
        try:
            attempts = [await result(ws, str(i), LOGIN, {"u": "sh01.clerk", "p": "wrong"}) for i in range(6)]
        finally:
            await ws.close()
    assert all(a["data"]["login"]["errors"] == [{"code": "INVALID_CREDENTIALS"}] for a in attempts[:5])
    assert codes(attempts[5]) == ["RATE_LIMITED"]


# 4b. The session is re-checked ----------------------------------------------------------------------------------


async def _staff_session(api: Api, who: str) -> tuple[str, str]:
    """A fresh sign-in of `who`: its access and refresh tokens."""
    tokens = (await api.login(who))["tokens"]
    return tokens["accessToken"], tokens["refreshToken"]


async def _logout(api: Api, chain: Chain, token: str, refresh: str) -> None:
    assert (await api.post("mutation { logout { ok } }", token=token)).json()["data"]["logout"]["ok"] is True


async def _disable(api: Api, chain: Chain, token: str, refresh: str) -> None:
    body = await api.gql(
        "mutation($id: ID!) { setStaffActive(input: {id: $id, active: false}) { errors { code } } }",
        {"id": gid("Staff", chain.staff["sh01.clerk"])},
        as_="sh01.manager",
    )
    assert body["data"]["setStaffActive"]["errors"] == []


async def _reset_password(api: Api, chain: Chain, token: str, refresh: str) -> None:
    body = await api.gql(
        "mutation($id: ID!, $p: String!) { resetStaffPassword(input: {id: $id, newPassword: $p}) { errors { code } } }",
        {"id": gid("Staff", chain.staff["sh01.clerk"]), "p": NEW_PASSWORD},
        as_="sh01.manager",
    )
    assert body["data"]["resetStaffPassword"]["errors"] == []


async def _change_password(api: Api, chain: Chain, token: str, refresh: str) -> None:
    """The clerk changes the password from another device: every other session ends, the socket's too."""
    other, _ = await _staff_session(api, "sh01.clerk")
    body = (
        await api.post(
            "mutation($c: String!, $p: String!) { changeMyPassword(input: {currentPassword: $c, newPassword: $p})"
            " { errors { code } } }",
            {"c": "demo-pass-2026", "p": NEW_PASSWORD},
            token=other,
        )
    ).json()
    assert body["data"]["changeMyPassword"]["errors"] == []


async def _reuse_refresh_token(api: Api, chain: Chain, token: str, refresh: str) -> None:
    spend = "mutation($r: String!) { refreshToken(input: {refreshToken: $r}) { errors { code } } }"
    assert (await api.gql(spend, {"r": refresh}))["data"]["refreshToken"]["errors"] == []
    assert (await api.gql(spend, {"r": refresh}))["data"]["refreshToken"]["errors"] == [{"code": "TOKEN_REUSED"}]


@pytest.mark.parametrize("revoke", [_logout, _disable, _reset_password, _change_password, _reuse_refresh_token])
async def test_a_revoked_session_closes_its_socket_at_once_and_ends_its_subscriptions(api, state, chain, revoke):
    # A periodic check far away: only the announced revocation can close the socket within the test's bound.
    watched = checking_every(state, 60)
    store = gid("Store", chain.stores["SH01"])
    token, refresh = await _staff_session(api, "sh01.clerk")
    async with serving(watched) as url:
        ws = await connect(url, token)
        await send(ws, "stock", STOCK_CHANGED, {"s": store})
        await send(ws, "orders", ORDER_EVENTS, {"s": store})
        assert await until_subscribers(state, 2) == 2  # both subscriptions are listening
        await revoke(api, chain, token, refresh)
        code, waited = await closed_with(ws, 5)
        assert code == 4403 and waited < 3
        assert await until_subscribers(state, 0) == 0  # the running subscriptions ended with the socket
        assert not state.broker._subscribers  # so did the instance's wait for revocations: no socket needs it


async def test_a_revocation_nobody_announced_closes_the_socket_at_the_next_check(api, state, chain):
    watched = checking_every(state, 0.5)
    token, _ = await _staff_session(api, "sh01.clerk")
    async with serving(watched) as url:
        ws = await connect(url, token)
        await send(ws, "stock", STOCK_CHANGED, {"s": gid("Store", chain.stores["SH01"])})
        assert await until_subscribers(state, 1) == 1
        async with state.sessionmaker() as session, session.begin():  # e.g. an instance without the shared broker
            await session.execute(
                update(AuthSession)
                .where(AuthSession.staff_id == chain.staff["sh01.clerk"])
                .values(revoked_at=utcnow(), revoke_reason="TEST")
            )
        code, waited = await closed_with(ws, 5)
        assert await until_subscribers(state, 0) == 0
    assert code == 4403 and waited < 0.5 + 2


async def test_a_socket_closes_when_its_access_token_expires(api, state, chain):
    watched = checking_every(state, 60)
    signed_in, _ = await _staff_session(api, "sh01.clerk")
    claims = state.security.decode_access_token(signed_in)
    ttl = state.settings.access_token_ttl_s
    token, _ = state.security.issue_access_token(claims, utcnow() - timedelta(seconds=ttl - 2))
    expires_at = state.security.decode_access_token(token).expires_at
    async with serving(watched) as url:
        ws = await connect(url, token)
        await send(ws, "stock", STOCK_CHANGED, {"s": gid("Store", chain.stores["SH01"])})
        code, _ = await closed_with(ws, 5)
        closed_at = time.time()
        assert await until_subscribers(state, 0) == 0
    assert code == 4403 and expires_at <= closed_at < expires_at + 2.5


async def test_a_mutation_on_a_revoked_socket_is_refused_even_before_the_close(api, state, chain):
    library = await make_library(state, products=1, skus_per_product=1)
    await list_in_store(state, chain.stores["SH01"], library.sku_ids, on_hand=5)
    watched = checking_every(state, 60)
    token, _ = await _staff_session(api, "sh01.manager")
    variables = {"s": gid("Store", chain.stores["SH01"]), "k": gid("Sku", library.sku_ids[0]), "d": -1}
    async with serving(watched) as url:
        ws = await connect(url, token)
        assert (await result(ws, "1", ADJUST, {**variables, "idempotencyKey": "ws-1"}))["data"]["adjustStock"][
            "levels"
        ] == [{"onHand": 4}]
        async with state.sessionmaker() as session, session.begin():  # revoked, not announced, not yet checked
            await session.execute(
                update(AuthSession)
                .where(AuthSession.staff_id == chain.staff["sh01.manager"])
                .values(revoked_at=utcnow(), revoke_reason="TEST")
            )
        refused = await result(ws, "2", ADJUST, {**variables, "idempotencyKey": "ws-2"})
        assert (
            codes(refused) == ["UNAUTHENTICATED"] and refused["errors"][0]["extensions"]["reason"] == "SESSION_REVOKED"
        )
        code, _ = await closed_with(ws, 5)
    assert code == 4403
    async with state.sessionmaker() as session:
        assert await session.scalar(select(StockLevel.on_hand).where(StockLevel.sku_id == library.sku_ids[0])) == 4


# 4c. Each operation its own context -----------------------------------------------------------------------------


@pytest.mark.postgres_too
@pytest.mark.parametrize("at_once", [3, 10])
async def test_concurrent_mutations_on_one_socket_each_run_in_their_own_transaction(api, state, chain, at_once):
    library = await make_library(state, products=1, skus_per_product=1)
    sku = library.sku_ids[0]
    await list_in_store(state, chain.stores["SH01"], [sku], on_hand=20)
    variables = {"s": gid("Store", chain.stores["SH01"]), "k": gid("Sku", sku), "d": -1}
    async with serving(state) as url:
        ws = await connect(url, await api.token("sh01.manager"))
        try:
            for i in range(at_once):
                await send(ws, f"adjust-{i}", ADJUST, {**variables, "idempotencyKey": f"adjust-{i}"})
            messages = [await receive(ws, 10) for _ in range(2 * at_once)]
        finally:
            await ws.close()
    answers = [m["payload"] for m in messages if m["type"] != "complete"]
    assert [a.get("errors") for a in answers] == [None] * at_once
    assert all(a["data"]["adjustStock"]["errors"] == [] for a in answers)
    assert sorted(a["data"]["adjustStock"]["levels"][0]["onHand"] for a in answers) == list(range(20 - at_once, 20))
    async with state.sessionmaker() as session:
        assert await session.scalar(select(StockLevel.on_hand).where(StockLevel.sku_id == sku)) == 20 - at_once
        moves = (await session.scalars(select(StockMovement.quantity).where(StockMovement.sku_id == sku))).all()
    assert sorted(moves) == [-1] * at_once + [20]


@pytest.mark.postgres_too
async def test_with_redis_a_sign_out_on_one_instance_closes_the_socket_on_another(
    api, state, chain, settings, redis_url
):
    prefix = f"test-{uuid.uuid4().hex}:"
    instances = [build_state(replace(settings, redis_url=redis_url, ws_session_check_s=60)) for _ in range(2)]
    for instance in instances:
        await instance.broker.close()
        instance.broker = RedisBroker(redis_url, channel_prefix=prefix)
    token, _ = await _staff_session(api, "sh01.clerk")
    try:
        async with (
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_app(state=instances[0])), base_url="http://a"
            ) as http,
            serving(instances[1]) as url_b,
        ):
            ws = await connect(url_b, token)
            await send(ws, "stock", STOCK_CHANGED, {"s": gid("Store", chain.stores["SH01"])})
            await asyncio.sleep(0.5)  # the subscriptions reach Redis
            assert (await Api(http).post("mutation { logout { ok } }", token=token)).json()["data"]["logout"]["ok"]
            code, waited = await closed_with(ws, 5)
        assert code == 4403 and waited < 3
    finally:
        for instance in instances:
            await instance.broker.close()
            await instance.engine.dispose()


SIGN_OUTS = {
    "logout": ("mutation { logout { ok } }", "logout"),
    "delete_account": ("mutation { deleteMyAccount { errors { code } } }", "deleteMyAccount"),
}


@pytest.mark.parametrize("how", sorted(SIGN_OUTS))
async def test_a_members_sign_out_closes_the_members_socket(api, state, how):
    token = (await api.member_sign_in("ws-member"))["tokens"]["accessToken"]
    async with serving(checking_every(state, 60)) as url:
        ws = await connect(url, token)
        await send(ws, "mine", "subscription { myOrderUpdates { orderId status } }")
        assert await until_subscribers(state, 1) == 1
        mutation, field = SIGN_OUTS[how]
        answer = (await api.post(mutation, token=token)).json()
        assert "errors" not in answer and answer["data"][field] in ({"ok": True}, {"errors": []})
        code, waited = await closed_with(ws, 5)
        assert await until_subscribers(state, 0) == 0
    assert code == 4403 and waited < 3

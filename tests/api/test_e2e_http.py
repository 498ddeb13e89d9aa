"""End to end over a real socket: uvicorn serving the app, a front end talking HTTP and websocket to it."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import httpx
import pytest
import uvicorn
import websockets
from starlette.applications import Starlette
from websockets.typing import Subprotocol

from app import create_app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def running_server(app: Starlette, lifespan: Literal["on", "off"] = "off") -> AsyncIterator[str]:
    """uvicorn serving `app` on a free loopback port, in this event loop; yields host:port.

    With `lifespan="on"` the app starts as in production: its job runner runs in the background."""
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan))
    task = asyncio.create_task(srv.serve())
    for _ in range(100):
        if srv.started:
            break
        await asyncio.sleep(0.05)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest.fixture
async def server(state):
    async with running_server(create_app(state=state)) as url:
        yield url


@pytest.mark.postgres_too
async def test_store_tablet_signs_in_and_reads_its_store_over_http(server):
    async with httpx.AsyncClient(base_url=f"http://{server}") as http:
        login = await http.post(
            "/graphql",
            json={
                "query": 'mutation { login(input: {username: "sh01.manager", password: "demo-pass-2026"})'
                " { tokens { accessToken } } }"
            },
        )
        token = login.json()["data"]["login"]["tokens"]["accessToken"]
        me = await http.post(
            "/graphql",
            json={"query": "{ me { ... on StaffViewer { store { code staff { username } } } } }"},
            headers={"authorization": f"Bearer {token}"},
        )
    assert me.status_code == 200
    assert me.json()["data"]["me"]["store"]["code"] == "SH01"
    assert {s["username"] for s in me.json()["data"]["me"]["store"]["staff"]} == {"sh01.manager", "sh01.clerk"}
    assert me.headers["x-request-id"]


async def test_graphql_transport_ws_answers_a_query(server):
    async with websockets.connect(f"ws://{server}/graphql", subprotocols=[Subprotocol("graphql-transport-ws")]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": "{ stores(first: 2) { edges { node { code } } } }"},
                }
            )
        )
        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert message["type"] == "next"
        assert [e["node"]["code"] for e in message["payload"]["data"]["stores"]["edges"]] == ["SH01", "SH02"]
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "complete"

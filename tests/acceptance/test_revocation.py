"""Revoked authority ends an open socket (gql over graphql-transport-ws against the running server): a staff member
disabled by HQ, or whose password HQ resets, sees the socket closed with 4403 and the running subscription end
within README's bound (WS_SESSION_CHECK_S); a mutation sent on it afterwards never runs."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportError
from gql.transport.websockets import WebsocketsTransport

from tests.acceptance.conftest import WS_SESSION_CHECK_S, Server, post, staff_login

FORBIDDEN_CLOSE = 4403


def close_code(exc: BaseException | None) -> int | None:
    """The websocket close code behind gql's transport error (websockets' ConnectionClosed, in the cause chain)."""
    while exc is not None:
        received = getattr(exc, "rcvd", None)
        if received is not None:
            return int(received.code)
        exc = exc.__cause__ or exc.__context__
    return None


async def subscribe_until_closed(server: Server, token: str, store_id: str, revoke: Any) -> tuple[float, int | None]:
    """Subscribe to stockChanged, call `revoke()`, and time how long the subscription lives on."""
    try:
        return await _subscribe_until_closed(server, token, store_id, revoke)
    except TransportError as exc:
        failure = f"the websocket failed: {type(exc).__name__}: {exc}"
    raise AssertionError(failure)  # outside the handler: gql's deep traceback helps no one


async def _subscribe_until_closed(server: Server, token: str, store_id: str, revoke: Any) -> tuple[float, int | None]:
    transport = WebsocketsTransport(
        url=server.ws, init_payload={"authorization": f"Bearer {token}"}, subprotocols=["graphql-transport-ws"]
    )
    async with Client(transport=transport) as session:
        me = await session.execute(GraphQLRequest("{ me { ... on StaffViewer { staff { username } } } }"))
        assert me["me"]["staff"]["username"]
        request = GraphQLRequest(
            "subscription($s: ID!) { stockChanged(storeId: $s) { onHand } }", variable_values={"s": store_id}
        )

        async def follow() -> None:
            async for _ in session.subscribe(request):
                pass

        task = asyncio.create_task(follow())
        await asyncio.sleep(0.5)
        assert not task.done(), task
        revoke()
        started = time.monotonic()
        done, _ = await asyncio.wait({task}, timeout=int(WS_SESSION_CHECK_S) + 5)
        elapsed = time.monotonic() - started
        if not done:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise AssertionError(f"the subscription outlived the revoked session by {elapsed:.1f} s")
        failure = task.exception() if not task.cancelled() else None
    return elapsed, close_code(failure)


def staff_id_and_store(server: Server, token: str) -> tuple[str, str]:
    me = post(server, "{ me { ... on StaffViewer { staff { id } store { id } } } }", token=token)["data"]["me"]
    return me["staff"]["id"], me["store"]["id"]


@pytest.mark.parametrize(
    ("username", "mutation"),
    [
        ("sh03.clerk", "mutation($id: ID!) { setStaffActive(input: {id: $id, active: false}) { errors { code } } }"),
        (
            "sh04.clerk",
            "mutation($id: ID!, $p: String!) { resetStaffPassword(input: {id: $id, newPassword: $p}) "
            "{ errors { code } } }",
        ),
    ],
    ids=["disabled", "password-reset"],
)
async def test_a_revoked_staff_members_socket_closes_with_4403_within_the_bound(dev_server, username, mutation):
    hq = staff_login(dev_server, "hq.admin")["accessToken"]
    token = staff_login(dev_server, username)["accessToken"]
    staff_id, store_id = staff_id_and_store(dev_server, token)
    variables = {"id": staff_id, "p": f"Acc-{secrets.token_urlsafe(12)}"}

    def revoke() -> None:
        body = post(dev_server, mutation, {k: v for k, v in variables.items() if f"${k}" in mutation}, token=hq)
        payload = next(iter(body["data"].values()))
        assert payload["errors"] == [], body

    elapsed, code = await subscribe_until_closed(dev_server, token, store_id, revoke)
    assert code == FORBIDDEN_CLOSE
    assert elapsed <= int(WS_SESSION_CHECK_S), elapsed

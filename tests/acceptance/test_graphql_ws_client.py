"""The graphql-ws reference client (Node) against the running development server: subscribe, query and mutate over
one socket (three mutations at once, too), an event arrives, and signing out ends the socket (4403) and the
subscription within the bound."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.acceptance.conftest import WS_SESSION_CHECK_S, Server, post, run_node, staff_login

# How soon revoked authority must end an open socket: README's WS_SESSION_CHECK_S, which the servers here run with
# (sign-out is announced at once; the periodic re-check is the bound when an announcement is lost).
REVOKE_BOUND_MS = int(WS_SESSION_CHECK_S) * 1000
FORBIDDEN_CLOSE = 4403


def store_and_sku(server: Server, token: str) -> tuple[str, str]:
    """The signed-in staff member's store and one SKU it lists."""
    body = post(
        server,
        "{ me { ... on StaffViewer { store { id listings(first: 1) { edges { node { sku { id } } } } } } } }",
        token=token,
    )
    store = body["data"]["me"]["store"]
    return store["id"], store["listings"]["edges"][0]["node"]["sku"]["id"]


def run_ws_client(node: Path, server: Server, token: str) -> dict[str, Any]:
    """ws_client.mjs as the staff member whose access token this is (a store's staff: they have a store)."""
    store_id, sku_id = store_and_sku(server, token)
    args = {
        "wsUrl": server.ws,
        "httpUrl": server.graphql,
        "token": token,
        "storeId": store_id,
        "skuId": sku_id,
        "boundMs": REVOKE_BOUND_MS,
    }
    result: dict[str, Any] = run_node(node, "ws_client.mjs", args, timeout=REVOKE_BOUND_MS / 1000 + 60)
    result["storeId"], result["skuId"] = store_id, sku_id
    return result


def assert_live_then_revoked(result: dict[str, Any]) -> None:
    """What every graphql-ws client must see: it works, and sign-out ends it within the bound."""
    assert "fatal" not in result and not result.get("timedOut"), result
    assert result["acknowledged"], result
    assert result["query"] == {"result": {"data": {"me": {"store": {"id": result["storeId"], "code": "SH01"}}}}}, result
    receipt = result["mutation"]["result"]["data"]["receiveStock"]
    assert receipt["errors"] == [], result
    event = result["event"]
    assert event is not None, f"no stockChanged event after receiveStock: {result}"
    assert event["data"]["stockChanged"]["sku"]["id"] == result["skuId"]
    assert event["data"]["stockChanged"]["onHand"] == receipt["levels"][0]["onHand"]
    concurrent = [r["result"]["data"]["receiveStock"] for r in result["concurrent"]]
    assert [r["errors"] for r in concurrent] == [[], [], []], result["concurrent"]
    assert sorted(r["levels"][0]["onHand"] for r in concurrent) == [
        receipt["levels"][0]["onHand"] + 3 * n for n in (1, 2, 3)
    ]
    assert result["logout"]["status"] == 200 and result["logout"]["body"]["data"]["logout"]["ok"] is True, result
    # The server closes the socket with 4403 (Forbidden) and the running subscription ends, within the bound.
    assert [c["code"] for c in result["closes"]][:1] == [FORBIDDEN_CLOSE], result
    assert result["closedAfterLogoutMs"] is not None and result["closedAfterLogoutMs"] <= REVOKE_BOUND_MS, result
    assert result["subscription"] is not None, f"the subscription outlived the session: {result}"
    assert result["endedAfterLogoutMs"] <= REVOKE_BOUND_MS, result


def test_graphql_ws_client_subscribes_queries_mutates_and_sign_out_closes_the_socket(node, dev_server):
    assert_live_then_revoked(run_ws_client(node, dev_server, staff_login(dev_server, "sh01.manager")["accessToken"]))

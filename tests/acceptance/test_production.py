"""APP_ENV=production as deployed: every front end signs in over HTTP with its own manifest's documents and runs
them; anonymous and member query text is refused over HTTP and over the websocket; a signed-out session's socket
is closed (4403) and its subscription ends; the production leaks of the issue stay shut."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportError, TransportQueryError
from gql.transport.websockets import WebsocketsTransport

from tests.acceptance.conftest import (
    DEMO_PASSWORD,
    ROOT,
    Production,
    Server,
    manifest,
    manifest_document,
    post,
)
from tests.acceptance.test_graphql_ws_client import assert_live_then_revoked, run_ws_client

# Each staff front end and the demo account that signs in with it.
STAFF_FRONT_ENDS = {"store_tablet": "sh01.manager", "hq_console": "hq.admin"}
TRUSTED_REFUSALS = {"TRUSTED_DOCUMENT_REQUIRED", "TRUSTED_DOCUMENT_NOT_FOUND"}


def codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors") or []]


def run_document(
    server: Server, op: dict[str, Any], variables: dict[str, Any], token: str | None = None
) -> dict[str, Any]:
    """Send a manifest document by id, as a front end built against trusted-documents.json does."""
    return post(server, "", variables, token=token, documentId=op["id"])


def required(front_end: str, kind: str, field: str) -> dict[str, Any]:
    op = manifest_document(front_end, kind, field)
    assert op is not None, f"trusted-documents.json has no {front_end} {kind} with root field {field}"
    return op


def staff_sign_in(server: Server, front_end: str) -> str:
    """Sign in with the front end's own login document, anonymously (text is refused before there is a token)."""
    login = required(front_end, "mutation", "login")
    body = run_document(server, login, {"username": STAFF_FRONT_ENDS[front_end], "password": DEMO_PASSWORD})
    assert codes(body) == [], body
    assert body["data"]["login"]["errors"] == [], body
    token: str = body["data"]["login"]["tokens"]["accessToken"]
    return token


@pytest.mark.parametrize("front_end", sorted(STAFF_FRONT_ENDS))
def test_each_staff_front_end_signs_in_with_its_manifest_and_runs_its_documents(production, front_end):
    server = production.server
    text_login = post(server, 'mutation { login(input: {username: "hq.admin", password: "x"}) { errors { code } } }')
    assert codes(text_login) == ["TRUSTED_DOCUMENT_REQUIRED"], text_login
    token = staff_sign_in(server, front_end)
    me = required(front_end, "query", "me")
    body = run_document(server, me, {}, token=token)
    assert codes(body) == [] and body["data"]["me"], body
    # Staff consoles may also send text.
    assert post(server, "{ me { __typename } }", token=token)["data"] == {"me": {"__typename": "StaffViewer"}}


@pytest.fixture(scope="module")
def member_renewal(production: Production) -> dict[str, Any]:
    """The member's session renewed over HTTP with the mini-program's document (once: a refresh token is spent)."""
    refresh = required("mini_program", "mutation", "refreshToken")
    return run_document(production.server, refresh, {"refreshToken": production.member["refreshToken"]})


@pytest.fixture(scope="module")
def member_token(member_renewal: dict[str, Any]) -> str:
    token: str = member_renewal["data"]["refreshToken"]["tokens"]["accessToken"]
    return token


def test_the_mini_program_signs_in_with_its_manifest_and_runs_its_documents(production, member_renewal):
    server = production.server
    # memberSignIn is admitted anonymously; WeChat turns a malformed code away before any network call.
    sign_in = required("mini_program", "mutation", "memberSignIn")
    refused = run_document(server, sign_in, {"code": "x" * 200})
    assert not TRUSTED_REFUSALS & set(codes(refused)), refused
    assert refused["data"]["memberSignIn"]["errors"][0]["code"] == "IDENTITY_REJECTED", refused
    # The member's session (begun through the identity provider) renews over HTTP with the manifest's document.
    renewed = member_renewal
    assert codes(renewed) == [] and renewed["data"]["refreshToken"]["errors"] == [], renewed
    token = renewed["data"]["refreshToken"]["tokens"]["accessToken"]
    me = run_document(server, required("mini_program", "query", "me"), {}, token=token)
    assert codes(me) == [] and me["data"]["me"]["member"]["id"], me
    # A member may not send text, nor another front end's documents.
    assert codes(post(server, "{ me { __typename } }", token=token)) == ["TRUSTED_DOCUMENT_REQUIRED"]
    tablet_me = manifest_document("store_tablet", "query", "me")
    if tablet_me is not None:
        assert codes(run_document(server, tablet_me, {}, token=token)) == ["TRUSTED_DOCUMENT_NOT_FOUND"]


async def ws_codes(server: Server, query: str, token: str | None = None) -> list[str]:
    """Run `query` as text over graphql-transport-ws (gql); the error codes the server answers with."""
    init = {"authorization": f"Bearer {token}"} if token else {}
    transport = WebsocketsTransport(url=server.ws, init_payload=init, subprotocols=["graphql-transport-ws"])
    try:
        async with Client(transport=transport) as session:
            try:
                result = await asyncio.wait_for(session.execute(GraphQLRequest(query)), 10)
            except TransportQueryError as exc:
                return [e.get("extensions", {}).get("code") for e in exc.errors or []]
    except TransportError as exc:
        failure = f"the websocket failed: {type(exc).__name__}: {exc}"
    else:
        failure = f"the websocket ran query text: {result}"
    # Raised outside the handler: gql's deep traceback is of no use here (and trips CPython 3.11's AST recursion check
    # when pytest prints it).
    raise AssertionError(failure)


@pytest.mark.parametrize(
    "query",
    [
        "{ stores(first: 1) { edges { node { code } } } }",
        'mutation { login(input: {username: "hq.admin", password: "demo-pass-2026"}) { tokens { accessToken } } }',
    ],
    ids=["query", "login"],
)
async def test_anonymous_text_over_the_websocket_is_refused(production, query):
    assert await ws_codes(production.server, query) == ["TRUSTED_DOCUMENT_REQUIRED"]


async def test_member_text_over_the_websocket_is_refused(production, member_token):
    assert await ws_codes(production.server, "{ me { __typename } }", token=member_token) == [
        "TRUSTED_DOCUMENT_REQUIRED"
    ]


def test_a_signed_out_sessions_socket_is_closed_and_its_subscription_ends(node, production):
    server = production.server
    assert_live_then_revoked(run_ws_client(node, server, staff_sign_in(server, "store_tablet")))


def test_production_keeps_metrics_graphiql_and_the_demo_accounts_shut(production):
    server = production.server
    assert httpx.get(f"{server.url}/metrics", timeout=10).status_code == 401
    scraped = httpx.get(f"{server.url}/metrics", headers={"authorization": f"Bearer {server.env['METRICS_TOKEN']}"})
    assert scraped.status_code == 200 and "chain_graphql_operations_total" in scraped.text
    page = httpx.get(server.graphql, headers={"accept": "text/html"}, timeout=10)
    assert "graphiql" not in page.text.lower()
    seeded = subprocess.run(
        [sys.executable, "-m", "services.cli", "seed-demo"],
        cwd=ROOT,
        env={**server.env, "SEED_DEMO": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert seeded.returncode != 0, f"seed-demo ran under APP_ENV=production:\n{seeded.stdout}{seeded.stderr}"


def test_a_members_menu_is_served_from_memory_and_shows_a_stock_move_at_once(production, member_token):
    """The mini-program's menu by GET (as a CDN in front would fetch it): validators and a public Cache-Control
    without a token; a sell-out at the counter shows on the next read though the answer is remembered."""
    server = production.server
    menu = next(op for op in manifest() if op["frontEnd"] == "mini_program" and op["name"] == "StoreMenu")
    tablet = staff_sign_in(server, "store_tablet")
    store_id = post(server, "{ me { ... on StaffViewer { staff { store { id } } } } }", token=tablet)["data"]["me"][
        "staff"
    ]["store"]["id"]
    levels = post(
        server,
        "query($s: ID!) { store(id: $s) { stockLevels(first: 50) { edges { node { onHand reserved sku { id } } } } } }",
        {"s": store_id},
        token=tablet,
    )["data"]["store"]["stockLevels"]["edges"]

    def read(token: str | None = None) -> tuple[httpx.Response, dict[str, str]]:
        params = {"documentId": menu["id"], "variables": json.dumps({"storeId": store_id, "first": 50})}
        headers = {"authorization": f"Bearer {token}"} if token else {}
        response = httpx.get(server.graphql, params=params, headers=headers, timeout=30)
        assert response.status_code == 200 and "errors" not in response.json(), response.text
        edges = response.json()["data"]["store"]["menu"]["edges"]
        return response, {e["node"]["sku"]["id"]: e["node"]["availability"] for e in edges}

    first, shown = read()
    assert first.headers["cache-control"].startswith("public, max-age=")
    again = httpx.get(first.request.url, headers={"if-none-match": first.headers["etag"]}, timeout=30)
    assert again.status_code == 304
    level = next(
        e["node"] for e in levels if shown.get(e["node"]["sku"]["id"]) == "IN_STOCK" and not e["node"]["reserved"]
    )
    sku, on_hand = level["sku"]["id"], level["onHand"]
    _, as_member = read(member_token)
    assert as_member[sku] == "IN_STOCK"

    def adjust(delta: int) -> None:
        body = post(
            server,
            "mutation($s: ID!, $k: ID!, $d: Int!, $key: String!) { adjustStock(input: {storeId: $s, reason: DAMAGE, "
            "idempotencyKey: $key, lines: [{skuId: $k, delta: $d}]}) { errors { code } } }",
            {"s": store_id, "k": sku, "d": delta, "key": uuid.uuid4().hex},
            token=tablet,
        )
        assert body["data"]["adjustStock"]["errors"] == [], body

    adjust(-on_hand)
    try:
        assert read()[1][sku] == "SOLD_OUT"
        assert read(member_token)[1][sku] == "SOLD_OUT"
    finally:
        adjust(on_hand)
    assert read()[1][sku] == "IN_STOCK"

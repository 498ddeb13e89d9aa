"""The HTTP side of /graphql as clients meet it: each front end's trusted documents in production, malformed
requests, GraphQL over HTTP (https://graphql.github.io/graphql-over-http/), and what production keeps to itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from app import create_app
from resolvers.state import AppState
from schema.trusted import documents
from services.identity import WeChatIdentityProvider
from services.seed import DEMO_PASSWORD
from tests.conftest import Chain, gid


def _codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


def _document(name: str) -> str:
    """The id of the trusted document with this operation name (names are unique across the manifests)."""
    (found,) = [h for h, d in documents().items() if d.name == name]
    return found


def _wechat() -> WeChatIdentityProvider:
    """WeChat's code-to-session, answered locally: the code `wx-<subject>` is that subject's openid."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"openid": request.url.params["js_code"].removeprefix("wx-")})

    return WeChatIdentityProvider("wxapp", "secret", httpx.AsyncClient(transport=httpx.MockTransport(handler)))


def production_state(state: AppState) -> AppState:
    return replace(state, settings=replace(state.settings, env="production"), identity_providers={"wechat": _wechat()})


@pytest.fixture
async def prod(state: AppState) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(state=production_state(state))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://prod") as http:
        yield http


async def _run(http: httpx.AsyncClient, name: str, variables: dict[str, Any] | None = None,
               token: str | None = None) -> httpx.Response:  # fmt: skip
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return await http.post("/graphql", json={"documentId": _document(name), "variables": variables or {}},
                           headers=headers)  # fmt: skip


# --- item 3: every front end signs in over HTTP in production with its own manifest -------------------------------


def test_every_front_end_has_a_manifest_with_its_sign_in_and_names_are_unique():
    by_front_end: dict[str, set[str]] = {}
    for document in documents().values():
        by_front_end.setdefault(document.front_end, set()).add(document.name)
    assert set(by_front_end) == {"mini_program", "store_tablet", "hq_console"}
    assert "MemberSignIn" in by_front_end["mini_program"]
    assert {"TabletLogin", "StockChanged", "OrderEvents", "PosCheckout"} <= by_front_end["store_tablet"]
    assert {"HqLogin", "CloseSettlement", "CampaignEffect"} <= by_front_end["hq_console"]
    names = [d.name for d in documents().values()]
    assert len(names) == len(set(names))


@pytest.mark.parametrize(
    ("login", "username", "document", "variables"),
    [("TabletLogin", "sh01.clerk", "StoreStockLevels", {"storeId": "SH01", "first": 5}),
     ("HqLogin", "hq.admin", "Stores", {"first": 5})],
)  # fmt: skip
async def test_in_production_staff_sign_in_with_their_front_ends_login_document_and_run_its_documents(
    prod, chain: Chain, login, username, document, variables
):
    text_login = await prod.post("/graphql", json={"query": "mutation { logout { ok } }"})
    assert text_login.status_code == 400 and _codes(text_login.json()) == ["TRUSTED_DOCUMENT_REQUIRED"]
    signed_in = await _run(prod, login, {"username": username, "password": DEMO_PASSWORD})
    assert signed_in.status_code == 200, signed_in.text
    payload = signed_in.json()["data"]["login"]
    assert payload["errors"] == [] and payload["staff"]["username"] == username
    token = payload["tokens"]["accessToken"]
    if "storeId" in variables:
        variables = {**variables, "storeId": gid("Store", chain.stores[variables["storeId"]])}
    ran = await _run(prod, document, variables, token)
    assert ran.status_code == 200 and "errors" not in ran.json(), ran.text
    assert ran.json()["data"]


async def test_in_production_a_member_signs_in_with_the_mini_programs_document_and_not_an_hq_one(prod):
    signed_in = await _run(prod, "MemberSignIn", {"code": "wx-prod-member"})
    payload = signed_in.json()["data"]["memberSignIn"]
    assert payload["errors"] == [] and payload["created"] is True
    token = payload["tokens"]["accessToken"]
    orders = await _run(prod, "MyOrders", {"first": 5}, token)
    assert orders.status_code == 200 and orders.json()["data"]["myOrders"]["edges"] == []
    hq = await _run(prod, "Stores", {"first": 5}, token)
    assert hq.status_code == 400 and _codes(hq.json()) == ["TRUSTED_DOCUMENT_NOT_FOUND"]
    tablet_login = await _run(prod, "TabletLogin", {"username": "sh01.clerk", "password": DEMO_PASSWORD}, token)
    assert tablet_login.status_code == 400 and _codes(tablet_login.json()) == ["TRUSTED_DOCUMENT_NOT_FOUND"]


# --- item 5: malformed requests get a coded JSON error and a 4xx, never a 500 or Python text -----------------------

PYTHON_TEXT = ("Traceback", "unhashable", "object is not", "NoneType", "'str'", "'int'", "'list'", "'dict'", "slice")
TYPENAME = "{ __typename }"
MALFORMED_BODIES: list[Any] = [
    *({"query": TYPENAME, "extensions": bad} for bad in ("x", [], True, 1, {"persistedQuery": "x"},
                                                          {"persistedQuery": {"sha256Hash": 5}}, {"persistedQuery": []})),
    *({"query": TYPENAME, "operationName": bad} for bad in (5, [], {}, True, ["a", "b"])),
    *({"query": TYPENAME, "variables": bad} for bad in ("x", "{}", [], 5, True)),
    *({"query": bad} for bad in (5, {}, [], True)),
    {"qeury": TYPENAME},
    {},
    {"documentId": 5},
    {"documentId": ["sha256:00"]},
    [{"query": TYPENAME}],
    [],
    5,
    "query",
    True,
]  # fmt: skip
MALFORMED_RAW = [b"", b"{", b'{"query": "{ __typename }"', b"\xff\xfe", b"[1, 2", b'{"query": "\\ud800"}', b"null"]
MALFORMED_GET = [
    {"query": TYPENAME, "variables": "{"},
    {"query": TYPENAME, "variables": "[1]"},
    {"query": TYPENAME, "variables": "5"},
    {"query": TYPENAME, "extensions": "x"},
    {"query": TYPENAME, "extensions": "[]"},
    {"query": TYPENAME, "extensions": '{"persistedQuery": "x"}'},
    {"variables": "{}"},
    {"documentId": "sha256:" + "0" * 64, "query": TYPENAME, "extensions": "{"},
]


def _assert_coded_refusal(response: httpx.Response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.headers["content-type"].split(";")[0] in {"application/json", "application/graphql-response+json"}
    body = response.json()
    assert "data" not in body
    assert body["errors"] and all(e["extensions"]["code"] for e in body["errors"])
    assert not any(leak in response.text for leak in PYTHON_TEXT), response.text


@pytest.mark.parametrize("body", MALFORMED_BODIES, ids=repr)
async def test_a_malformed_json_body_gets_a_coded_json_4xx(api, body):
    _assert_coded_refusal(await api.http.post("/graphql", json=body))


@pytest.mark.parametrize("raw", MALFORMED_RAW, ids=repr)
async def test_a_body_that_is_not_json_gets_a_coded_json_400(api, raw):
    response = await api.http.post("/graphql", content=raw, headers={"content-type": "application/json"})
    _assert_coded_refusal(response)
    assert response.status_code == 400


@pytest.mark.parametrize("params", MALFORMED_GET, ids=repr)
async def test_a_get_with_bad_parameters_gets_a_coded_json_400(api, params):
    response = await api.http.get("/graphql", params=params, headers={"accept": "application/json"})
    _assert_coded_refusal(response)
    assert response.status_code == 400


async def test_a_get_naming_a_parameter_twice_or_a_method_other_than_get_and_post_is_refused_in_json(api):
    twice = await api.http.get("/graphql?query=%7B__typename%7D&query=%7Bme%7Bid%7D%7D")
    _assert_coded_refusal(twice)
    put = await api.http.put("/graphql", json={"query": TYPENAME})
    _assert_coded_refusal(put)
    assert put.status_code == 405 and set(put.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}

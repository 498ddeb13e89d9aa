"""The issue's reproductions, sent as an attacker would to the running server: bad requests get a coded JSON 4xx
(never a 500 or Python text), metrics labels stay bounded whatever callers name, production suggests nothing, weak
staff passwords and pickup times outside a store's hours are refused."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.acceptance.conftest import Server, member_sign_in, post, staff_login
from tests.acceptance.test_production import staff_sign_in

QUERY = "{ stores(first: 1) { edges { node { code } } } }"
MALFORMED: list[tuple[str, dict[str, Any]]] = [
    ("extensions-string", {"query": QUERY, "extensions": "x"}),
    ("extensions-array", {"query": QUERY, "extensions": []}),
    ("extensions-true", {"query": QUERY, "extensions": True}),
    ("extensions-number", {"query": QUERY, "extensions": 1}),
    ("persisted-query-string", {"query": QUERY, "extensions": {"persistedQuery": "x"}}),
    ("operation-name-number", {"query": QUERY, "operationName": 1}),
    ("operation-name-list", {"query": QUERY, "operationName": [0, 1]}),
    ("operation-name-object", {"query": QUERY, "operationName": {"a": 1}}),
    ("variables-string", {"query": QUERY, "variables": "x"}),
    ("query-number", {"query": 1}),
]


def assert_coded_json_refusal(response: httpx.Response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.headers["content-type"].split(";")[0] in {"application/json", "application/graphql-response+json"}
    errors = response.json()["errors"]
    assert errors and all(isinstance(e["extensions"]["code"], str) for e in errors), errors
    assert (
        "Traceback" not in response.text and "object is not" not in response.text and "unhashable" not in response.text
    )


@pytest.mark.parametrize("body", [b for _, b in MALFORMED], ids=[name for name, _ in MALFORMED])
def test_a_malformed_request_gets_a_coded_json_4xx(dev_server, body):
    assert_coded_json_refusal(httpx.post(dev_server.graphql, json=body, timeout=10))


def test_sibling_fields_refused_for_one_store_answer_without_a_500(dev_server):
    token = staff_login(dev_server, "sh01.clerk")["accessToken"]
    store = "U3RvcmU6MQ=="  # the reproduction, verbatim
    query = (
        f'{{ a: store(id:"{store}") {{ stockLevels(first:5){{edges{{node{{isLow}}}}}} }} '
        f'b: store(id:"{store}") {{ staff{{id}} stockLevels(first:5){{edges{{node{{isLow}}}}}} }} }}'
    )
    for _ in range(10):
        response = httpx.post(dev_server.graphql, json={"query": query}, headers={"authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        codes = {e["extensions"]["code"] for e in response.json().get("errors", [])}
        assert "INTERNAL_SERVER_ERROR" not in codes, response.text


def metric_label_values(server: Server, token: str | None = None) -> str:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{server.url}/metrics", headers=headers, timeout=10)
    assert response.status_code == 200
    return "\n".join(line for line in response.text.splitlines() if line.startswith("chain_graphql_operations_total"))


def test_callers_cannot_mint_metric_series(dev_server):
    names = [f"zz{secrets.token_hex(4)}" for _ in range(5)]
    for name in names:
        post(dev_server, f"query {name.upper()} {{ {name} }}")
        post(dev_server, f"query {name.upper()} {{ __typename }}")
    exposed = metric_label_values(dev_server)
    assert exposed, "no operation counted at all"
    assert not [n for n in names if n in exposed or n.upper() in exposed], exposed


def test_production_suggests_no_names(production):
    token = staff_sign_in(production.server, "store_tablet")
    body = post(production.server, "{ stores(frist: 1) { edges { node { cod } } } }", token=token)
    assert body["errors"], body
    assert not [e for e in body["errors"] if "Did you mean" in e["message"]], body


USERNAME = "<the username>"


@pytest.mark.parametrize("password", ["password", "12345678", USERNAME, "password123", "1234567890"])
def test_weak_staff_passwords_are_refused_and_create_nothing(dev_server, password):
    token = staff_login(dev_server, "sh01.manager")["accessToken"]
    roles = post(dev_server, "{ roles { id code } }", token=token)["data"]["roles"]
    clerk = next(r["id"] for r in roles if r["code"] == "CLERK")
    username = f"sh01.probe{secrets.token_hex(3)}"
    created = post(
        dev_server,
        'mutation($u: String!, $p: String!, $r: ID!) { createStaff(input: {username: $u, displayName: "Probe", '
        "password: $p, roleId: $r}) { errors { code field } staff { id } } }",
        {"u": username, "p": username if password == USERNAME else password, "r": clerk},
        token=token,
    )["data"]["createStaff"]
    assert created["staff"] is None and created["errors"], created
    assert all((e["field"] or "").endswith("password") for e in created["errors"]), created


def next_local(tz: ZoneInfo, hour: int, days: int) -> datetime:
    """`hour`:00 in the store's time zone, `days` from its today (negative: in the past)."""
    today = datetime.now(tz).date() + timedelta(days=days)
    return datetime.combine(today, datetime.min.time(), tz).replace(hour=hour)


@pytest.mark.parametrize(("hour", "days"), [(3, 1), (12, -2)], ids=["03:00-tomorrow", "two-days-ago"])
def test_a_pickup_time_outside_the_stores_hours_or_in_the_past_is_refused(dev_server, hour, days):
    manager = staff_login(dev_server, "sh01.manager")["accessToken"]
    store = post(
        dev_server,
        "{ me { ... on StaffViewer { store { id timezone listings(first: 1) { edges { node { sku { id } } } } } } } }",
        token=manager,
    )["data"]["me"]["store"]
    member = member_sign_in(dev_server, "probe-pickup:13800138002")["accessToken"]
    at = next_local(ZoneInfo(store["timezone"]), hour, days)
    placed = post(
        dev_server,
        "mutation($s: ID!, $k: ID!, $key: String!, $at: DateTime) { placeOrder(input: {storeId: $s, idempotencyKey: "
        "$key, lines: [{skuId: $k, quantity: 1}], pickupAt: $at}) { errors { code field } order { id } } }",
        {
            "s": store["id"],
            "k": store["listings"]["edges"][0]["node"]["sku"]["id"],
            "key": secrets.token_hex(6),
            "at": at.isoformat(),
        },
        token=member,
    )
    payload = placed["data"]["placeOrder"]
    assert payload["order"] is None and payload["errors"], placed
    assert all((e["field"] or "").endswith("pickupAt") for e in payload["errors"]), placed

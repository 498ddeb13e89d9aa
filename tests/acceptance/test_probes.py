"""The issue's reproductions, sent as an attacker would to the running server: bad requests get a coded JSON 4xx
(never a 500 or Python text), metrics labels stay bounded whatever callers name, and production suggests nothing."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from tests.acceptance.conftest import Server, post, staff_login
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
    query = (f'{{ a: store(id:"{store}") {{ stockLevels(first:5){{edges{{node{{isLow}}}}}} }} '
             f'b: store(id:"{store}") {{ staff{{id}} stockLevels(first:5){{edges{{node{{isLow}}}}}} }} }}')  # fmt: skip
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

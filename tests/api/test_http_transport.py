"""The HTTP side of /graphql as clients meet it: each front end's trusted documents in production, malformed
requests, GraphQL over HTTP (https://graphql.github.io/graphql-over-http/), and what production keeps to itself."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import orjson
import pytest

from app import create_app
from resolvers.state import AppState
from schema.core.trusted import documents
from services.access.identity import WeChatIdentityProvider
from services.seed import DEMO_PASSWORD
from tests.conftest import Api, Chain, gid, table_counts


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


async def _run(
    http: httpx.AsyncClient, name: str, variables: dict[str, Any] | None = None, token: str | None = None
) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return await http.post(
        "/graphql", json={"documentId": _document(name), "variables": variables or {}}, headers=headers
    )


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
    [
        ("TabletLogin", "sh01.clerk", "StoreStockLevels", {"storeId": "SH01", "first": 5}),
        ("HqLogin", "hq.admin", "Stores", {"first": 5}),
    ],
)
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
BAD_EXTENSIONS: list[Any] = [
    "x",
    [],
    True,
    1,
    {"persistedQuery": "x"},
    {"persistedQuery": {"sha256Hash": 5}},
    {"persistedQuery": []},
]
BAD_OPERATION_NAMES: list[Any] = [5, [], {}, True, ["a", "b"]]
BAD_VARIABLES: list[Any] = ["x", "{}", [], 5, True]
BAD_QUERIES: list[Any] = [5, {}, [], True]
MALFORMED_BODIES: list[Any] = [
    *({"query": TYPENAME, "extensions": bad} for bad in BAD_EXTENSIONS),
    *({"query": TYPENAME, "operationName": bad} for bad in BAD_OPERATION_NAMES),
    *({"query": TYPENAME, "variables": bad} for bad in BAD_VARIABLES),
    *({"query": bad} for bad in BAD_QUERIES),
    {"qeury": TYPENAME},
    {},
    {"documentId": 5},
    {"documentId": ["sha256:00"]},
    [{"query": TYPENAME}],
    [],
    5,
    "query",
    True,
]
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


# --- item 6: GraphQL over HTTP (https://graphql.github.io/graphql-over-http/, graphql-http's serverAudits) --------

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
UNKNOWN_FIELD = "{ 8f31403dfe404bccbb0e835f2629c6a7 }"
COERCION_FAILURE = "query CoerceFailure($id: ID!) { __typename }"


async def _post(api: Api, body: Any, accept: str | None = JSON, **headers: str) -> httpx.Response:
    request = api.http.build_request("POST", "/graphql", json=body, headers=headers)
    if accept is None:
        del request.headers["accept"]
    else:
        request.headers["accept"] = accept
    return await api.http.send(request)


def _media(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        (JSON, JSON),
        ("application/*", JSON),
        ("text/html", JSON),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, {JSON};q=0.9", GRAPHQL_RESPONSE),
        (f"{JSON}, {GRAPHQL_RESPONSE};q=0.5", JSON),
        (f"{GRAPHQL_RESPONSE};q=0, */*", JSON),
        (f"text/html, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, {JSON}", JSON),
        ("garbage", JSON),
        ("a/b;q=x", JSON),
    ],
)
async def test_the_answer_has_the_media_type_the_client_accepts(api, accept, expected):
    response = await _post(api, {"query": TYPENAME}, accept=accept)
    assert response.status_code == 200 and _media(response) == expected
    assert response.json() == {"data": {"__typename": "Query"}}
    assert response.headers["vary"] == "Accept"


@pytest.mark.parametrize("content_type", [JSON, f"{JSON}; charset=utf-8", f"{JSON};charset=UTF-8"])
async def test_utf8_json_is_accepted_with_or_without_a_charset_and_answered_in_utf8(api, content_type):
    query = '{ __type(name: "Run🏃Swim🏊") { name } }'
    response = await api.http.post(
        "/graphql", content=orjson.dumps({"query": query}), headers={"content-type": content_type}
    )
    assert response.status_code == 200 and response.content.decode("utf-8")
    assert response.json() == {"data": {"__type": None}}


async def test_another_charset_or_no_content_type_is_415(api):
    latin = await api.http.post(
        "/graphql", content=b'{"query": "{ __typename }"}', headers={"content-type": f"{JSON}; charset=latin-1"}
    )
    _assert_coded_refusal(latin)
    assert latin.status_code == 415
    bare = await api.http.post("/graphql")
    _assert_coded_refusal(bare)
    assert bare.status_code == 415


@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE])
@pytest.mark.parametrize(
    "body",
    [
        {"query": TYPENAME, "variables": None},
        {"query": TYPENAME, "operationName": None},
        {"query": TYPENAME, "extensions": None},
        {"query": TYPENAME, "extensions": {"some": "value"}},
        {"query": "query Query { __typename }", "operationName": "Query"},
        {"query": "query Type($name: String!) { __type(name: $name) { name } }", "variables": {"name": "sometype"}},
    ],
    ids=repr,
)
async def test_well_formed_parameters_run_without_errors(api, body, accept):
    response = await _post(api, body, accept=accept)
    assert response.status_code == 200 and _media(response) == accept
    assert "errors" not in response.json() and response.json()["data"]


@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE])
async def test_get_runs_queries_with_url_encoded_variables(api, accept):
    params = {
        "query": "query Type($name: String!) { __type(name: $name) { name } }",
        "variables": '{"name": "sometype"}',
    }
    response = await api.http.get("/graphql", params=params, headers={"accept": accept})
    assert response.status_code == 200 and _media(response) == accept
    assert response.json() == {"data": {"__type": None}}


@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE, None])
async def test_a_mutation_over_get_is_405_with_allow_post_and_does_not_run(api, accept):
    headers = {"accept": accept} if accept else {}
    response = await api.http.get("/graphql", params={"query": "mutation { logout { ok } }"}, headers=headers)
    _assert_coded_refusal(response)
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert _codes(response.json()) == ["METHOD_NOT_ALLOWED"]
    named = await api.http.get(
        "/graphql", params={"query": "query Q { __typename } mutation M { logout { ok } }", "operationName": "M"}
    )
    assert named.status_code == 405
    query = await api.http.get(
        "/graphql", params={"query": "query Q { __typename } mutation M { logout { ok } }", "operationName": "Q"}
    )
    assert query.status_code == 200 and query.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"query": "{"}, "GRAPHQL_PARSE_FAILED"),
        ({"query": UNKNOWN_FIELD}, "GRAPHQL_PARSE_FAILED"),  # graphql-http's "validation failure" does not parse
        ({"query": "{ nosuchfield }"}, "GRAPHQL_VALIDATION_FAILED"),
        ({"query": COERCION_FAILURE, "variables": {"id": None}}, None),
        ({"query": "query A { __typename } query B { __typename }"}, "OPERATION_NAME_REQUIRED"),
        ({"query": "query A { __typename }", "operationName": "B"}, "OPERATION_NOT_FOUND"),
        ({"query": "fragment F on Query { __typename }"}, "OPERATION_NOT_FOUND"),
        ({"query": "subscription { chainStockChanged { onHand } }"}, "BAD_REQUEST"),
    ],
    ids=[
        "parse",
        "audit's unknown field",
        "validation",
        "variable coercion",
        "several operations, no name",
        "unknown name",
        "no operation",
        "subscription",
    ],
)
async def test_a_request_error_is_400_without_data_for_graphql_response_json_and_200_for_json(api, body, code):
    strict = await _post(api, body, accept=GRAPHQL_RESPONSE)
    assert strict.status_code == 400 and _media(strict) == GRAPHQL_RESPONSE, strict.text
    assert "data" not in strict.json() and strict.json()["errors"]
    legacy = await _post(api, body, accept=JSON)
    assert legacy.status_code == 200 and _media(legacy) == JSON
    assert "data" not in legacy.json() and legacy.json()["errors"] == strict.json()["errors"]
    codes = _codes(strict.json())
    assert all(codes) and (code is None or codes == [code])


@pytest.mark.postgres_too
async def test_several_operations_without_a_name_run_none_of_them(api, state):
    body = {"query": "mutation A { logout { ok } } query B { __typename }"}
    token = await api.token("hq.admin")
    before = await table_counts(state)
    response = await _post(api, body, accept=GRAPHQL_RESPONSE, authorization=f"Bearer {token}")
    assert response.status_code == 400 and _codes(response.json()) == ["OPERATION_NAME_REQUIRED"]
    assert await table_counts(state) == before
    me = await api.gql("{ me { __typename } }", as_="hq.admin")
    assert me["data"]["me"]["__typename"] == "StaffViewer"  # the session is still signed in: logout did not run


async def test_field_errors_keep_data_and_status_200_for_graphql_response_json(api):
    partial = await _post(api, {"query": '{ __typename store(id: "not-an-id") { id } }'}, accept=GRAPHQL_RESPONSE)
    assert partial.status_code == 200 and _media(partial) == GRAPHQL_RESPONSE
    assert partial.json()["data"] == {"__typename": "Query", "store": None} and partial.json()["errors"]
    nulled = await _post(api, {"query": "{ myMemberCode { code } }"}, accept=GRAPHQL_RESPONSE)
    assert nulled.status_code == 200 and "data" in nulled.json() and nulled.json()["data"] is None
    assert _codes(nulled.json()) == ["UNAUTHENTICATED"]


@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE])
async def test_the_projects_own_refusals_are_json_in_the_accepted_media_type(api, state, accept):
    state.limits = replace(state.limits, max_depth=2)
    too_deep = await _post(api, {"query": "{ stores { edges { node { code } } } }"}, accept=accept)
    assert _codes(too_deep.json()) == ["QUERY_TOO_DEEP"] and _media(too_deep) == accept
    assert too_deep.status_code == (400 if accept == GRAPHQL_RESPONSE else 200) and "data" not in too_deep.json()
    unknown = await _post(api, {"documentId": "sha256:" + "0" * 64}, accept=accept)
    assert unknown.status_code == 400 and _media(unknown) == accept
    assert _codes(unknown.json()) == ["TRUSTED_DOCUMENT_NOT_FOUND"] and "data" not in unknown.json()


async def test_a_get_can_name_a_trusted_document_and_production_answers_graphiql_with_a_json_404(api, state):
    response = await api.http.get("/graphql", params={"documentId": _document("TopUpPlans")}, headers={"accept": "*/*"})
    assert response.status_code == 200 and "topUpPlans" in response.json()["data"]
    app = create_app(state=production_state(state))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://prod") as http:
        page = await http.get("/graphql", headers={"accept": "text/html"})
        assert page.status_code == 404 and _codes(page.json()) == ["NOT_FOUND"]
        trusted = await http.get("/graphql", params={"documentId": _document("TopUpPlans")})
        assert trusted.status_code == 200 and "topUpPlans" in trusted.json()["data"]
        text = await http.get("/graphql", params={"query": "{ topUpPlans { id } }"})
        assert text.status_code == 400 and _codes(text.json()) == ["TRUSTED_DOCUMENT_REQUIRED"]


async def test_given_a_public_read_over_get_then_a_cdn_may_keep_it_a_second_and_a_revalidation_is_a_304(api, chain):
    params = {"documentId": _document("TopUpPlans")}
    first = await api.http.get("/graphql", params=params)
    assert first.status_code == 200 and first.headers["etag"].startswith('"')
    assert first.headers["cache-control"] == "public, max-age=1, stale-while-revalidate=30"
    assert "Authorization" in first.headers["vary"]
    again = await api.http.get("/graphql", params=params, headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == first.headers["etag"]
    # Another answer (other variables) has another tag; a stale tag gets the whole answer.
    changed = await api.http.get("/graphql", params=params, headers={"if-none-match": '"stale"'})
    assert changed.status_code == 200 and changed.json() == first.json()
    # Signed in: private to the client, always revalidated; POST and errors carry no validators.
    token = await api.token("member:cache-reader")
    mine = await api.http.get("/graphql", params=params, headers={"authorization": f"Bearer {token}"})
    assert mine.headers["cache-control"] == "private, no-cache" and "etag" in mine.headers
    posted = await api.http.post("/graphql", json=params)
    assert posted.status_code == 200 and "etag" not in posted.headers and "cache-control" not in posted.headers
    bad = await api.http.get("/graphql", params={"query": "{ nope }"})
    assert "etag" not in bad.headers


# --- item 7: what production keeps to itself ----------------------------------------------------------------------

STORES_BY = "query($f: StoreFilterInput) { stores(filter: $f) { edges { cursor } } }"
SUGGESTIBLE = [
    ("{ stors { edges { cursor } } }", None),  # field
    ("{ stores(frist: 1) { edges { cursor } } }", None),  # argument
    ("query($f: StoreFilterInpt) { stores(filter: $f) { edges { cursor } } }", None),  # type
    ("{ ...F } fragment F on Qury { __typename }", None),  # type condition
    ("{ stores(filter: {status: OPN}) { edges { cursor } } }", None),  # enum value in the text
    ('{ stores(filter: {cty: "x"}) { edges { cursor } } }', None),  # input field in the text
    (STORES_BY, {"f": {"status": "OPN"}}),  # enum value in a variable
    (STORES_BY, {"f": {"cty": "x"}}),  # input field in a variable
]


@pytest.mark.parametrize(("query", "variables"), SUGGESTIBLE, ids=repr)
async def test_production_suggests_no_name_of_any_kind_where_development_does(api, state, query, variables):
    token = await api.token("hq.admin")
    development = (await api.post(query, variables, token)).json()
    assert any("Did you mean" in e["message"] for e in development["errors"])  # the case does invite a suggestion
    app = create_app(state=production_state(state))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://prod") as http:
        production = (await Api(http).post(query, variables, token)).json()
    assert production["errors"] and all(e["extensions"]["code"] for e in production["errors"])
    assert not any("Did you mean" in e["message"] or "OPEN" in e["message"] for e in production["errors"])


async def test_an_anonymous_trusted_document_with_a_misspelt_enum_is_told_no_alternative(prod, chain):
    variables = {"storeId": gid("Store", chain.stores["SH01"]), "lines": [], "fulfilment": "PICKUPP"}
    response = await _run(prod, "Quote", variables)
    errors = response.json()["errors"]
    assert errors and not any("Did you mean" in e["message"] or "DELIVERY" in e["message"] for e in errors)


async def test_the_operation_label_is_a_known_operation_or_other_whatever_the_caller_sends(api, state):
    for i in range(5):
        await api.gql(f"query Probe{i} {{ __typename }}")
        await api.gql(f"{{ field{i}: __typename }}")
        await api.gql(f"{{ nosuchfield{i} }}")
    await api.gql("query TopUpPlans { topUpPlans { id } }")
    text = (await api.http.get("/metrics")).text
    labels = set(re.findall(r'chain_graphql_operations_total\{operation="([^"]*)"', text))
    assert labels == {"other", "TopUpPlans"}
    assert 'chain_graphql_operations_total{operation="other",outcome="ok",type="query"} 10.0' in text


async def test_metrics_refuse_without_a_token_in_production_and_stay_open_in_development(api, state):
    assert (await api.http.get("/metrics")).status_code == 200
    app = create_app(state=production_state(state))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://prod") as http:
        for given in [None, b"Bearer ", b"Bearer anything", b"Bearer \xe9t\xe9"]:
            refused = await http.get("/metrics", headers={b"authorization": given} if given else {})
            assert refused.status_code == 401 and _codes(refused.json()) == ["UNAUTHENTICATED"]
            assert "chain_" not in refused.text and refused.headers["www-authenticate"] == "Bearer"
    guarded = production_state(state)
    guarded = replace(guarded, settings=replace(guarded.settings, metrics_token="scrape-me"))
    app = create_app(state=guarded)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://prod") as http:
        assert (await http.get("/metrics", headers={"authorization": "Bearer wrong"})).status_code == 401
        scraped = await http.get("/metrics", headers={"authorization": "Bearer scrape-me"})
        assert scraped.status_code == 200 and "chain_http_requests_total" in scraped.text


async def test_http_request_labels_are_bounded_whatever_the_method_and_path(api):
    for i in range(3):
        await api.http.request(f"BREW{i}", "/graphql")
        await api.http.get(f"/nothing-here-{i}")
    text = (await api.http.get("/metrics")).text
    methods = set(re.findall(r'chain_http_requests_total\{method="([^"]*)"', text))
    routes = set(re.findall(r'chain_http_requests_total\{[^}]*route="([^"]*)"', text))
    assert methods <= {"GET", "POST", "other"} and "other" in methods
    assert routes <= {"/graphql", "/metrics", "other"}

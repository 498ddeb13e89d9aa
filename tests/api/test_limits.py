"""Every limit at N (allowed) and N+1 (refused) with its code; HTTP rules; production mode; rate limits."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from typing import Any

import httpx
import pytest

from app import create_app
from schema.core.trusted import documents
from services.access.limits import Limits
from services.platform.ratelimit import LocalCounter, RedisCounter, check
from tests.conftest import Api

STORES = "query($n: Int!) { stores(first: $n) { edges { node { code } } } }"  # cost 1 + 3n, depth 4


def _codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


async def _with_limits(api: Api, state, **limits: int) -> None:
    state.limits = replace(Limits(), **limits)


async def test_depth_at_the_limit_runs_and_one_more_is_refused(api, state):
    await _with_limits(api, state, max_depth=4)
    assert "errors" not in await api.gql(STORES, {"n": 1}, as_="hq.admin")
    deeper = "query($n: Int!) { stores(first: $n) { edges { node { manager { username } } } } }"
    assert _codes(await api.gql(deeper, {"n": 1}, as_="hq.admin")) == ["QUERY_TOO_DEEP"]


async def test_aliases_at_the_limit_run_and_one_more_is_refused(api, state):
    limit = Limits().max_aliases
    allowed = "{ " + " ".join(f"a{i}: __typename" for i in range(limit)) + " }"
    refused = "{ " + " ".join(f"a{i}: __typename" for i in range(limit + 1)) + " }"
    assert "errors" not in await api.gql(allowed)
    assert _codes(await api.gql(refused)) == ["TOO_MANY_ALIASES"]


async def test_tokens_at_the_limit_parse_and_one_more_is_refused(api, state):
    await _with_limits(api, state, max_tokens=50)
    # "{", n fields and "}" make n + 2 tokens.
    assert "errors" not in await api.gql("{ " + "__typename " * 48 + "}")
    assert _codes(await api.gql("{ " + "__typename " * 49 + "}")) == ["TOO_MANY_TOKENS"]


@pytest.mark.parametrize(
    ("who", "budget"),
    [
        (None, "cost_anonymous"),
        ("member:costly", "cost_member"),
        ("sh01.clerk", "cost_store_staff"),
        ("hq.analyst", "cost_hq"),
    ],
)
async def test_each_kind_of_viewer_has_its_own_cost_budget(api, state, who, budget):
    cost = 1 + 3 * 7  # stores(first: 7) { edges { node { code } } }
    await _with_limits(api, state, **{budget: cost})
    assert "errors" not in await api.gql(STORES, {"n": 7}, as_=who)
    await _with_limits(api, state, **{budget: cost - 1})
    refused = await api.gql(STORES, {"n": 7}, as_=who)
    assert _codes(refused) == ["QUERY_TOO_COSTLY"] and refused["errors"][0]["extensions"]["cost"] == cost


async def test_lists_multiply_by_first_so_a_wide_nested_query_is_refused_for_a_member(api, state):
    wide = """{ nearbyStores(lat: 31.2, lng: 121.4, first: 100) { edges { node {
      menu(first: 100) { edges { node { price sku { barcode product { name } } } } } } } } }"""
    assert _codes(await api.gql(wide, as_="member:wide")) == ["QUERY_TOO_COSTLY"]


async def test_http_rules_json_only_size_limit_no_batching_and_no_mutations_over_get(api, state):
    http = api.http
    plain = await http.post("/graphql", content=b'{"query": "{ __typename }"}', headers={"content-type": "text/plain"})
    assert plain.status_code == 415 and _codes(plain.json()) == ["UNSUPPORTED_MEDIA_TYPE"]
    big = {"query": "{ __typename }", "variables": {"pad": "x" * Limits().max_body_bytes}}
    too_big = await http.post("/graphql", json=big)
    assert too_big.status_code == 413 and _codes(too_big.json()) == ["REQUEST_TOO_LARGE"]
    just_fits = {"query": "{ __typename }", "variables": {"pad": "x" * (Limits().max_body_bytes - 100)}}
    assert (await http.post("/graphql", json=just_fits)).status_code == 200
    batch = await http.post("/graphql", json=[{"query": "{ __typename }"}, {"query": "{ __typename }"}])
    assert batch.status_code == 400
    assert (await http.get("/graphql", params={"query": "{ __typename }"})).json() == {"data": {"__typename": "Query"}}
    mutation = await http.get("/graphql", params={"query": "mutation { logout { ok } }"})
    assert mutation.status_code == 405 and mutation.headers["allow"] == "POST"


async def test_production_hides_the_schema_and_members_run_only_trusted_documents(api, state):
    member_token = await api.token("member:trusted")
    staff_token = await api.token("hq.admin")
    production = replace(state, settings=replace(state.settings, env="production"))
    app = create_app(state=production)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://prod") as http:
        prod = Api(http)
        introspection = await prod.post("{ __schema { types { name } } }", token=staff_token)
        assert "errors" in introspection.json() and introspection.json().get("data") is None
        typo = (await prod.post("{ stors { edges { cursor } } }", token=staff_token)).json()
        assert "Did you mean" not in typo["errors"][0]["message"]
        raw = await prod.post("{ myOrders { edges { cursor } } }", token=member_token)
        assert raw.status_code == 400 and _codes(raw.json()) == ["TRUSTED_DOCUMENT_REQUIRED"]
        anonymous = await prod.post("{ __typename }")
        assert anonymous.status_code == 400 and _codes(anonymous.json()) == ["TRUSTED_DOCUMENT_REQUIRED"]
        my_orders = next(h for h, d in documents().items() if d.name == "MyOrders")
        trusted = await http.post(
            "/graphql",
            json={"documentId": my_orders, "variables": {"first": 5}},
            headers={"authorization": f"Bearer {member_token}"},
        )
        assert trusted.status_code == 200 and trusted.json()["data"]["myOrders"]["edges"] == []
        unknown = await http.post("/graphql", json={"documentId": "sha256:" + "0" * 64})
        assert unknown.status_code == 400 and _codes(unknown.json()) == ["TRUSTED_DOCUMENT_NOT_FOUND"]
        staff_text = await prod.post("{ stores(first: 1) { edges { node { code } } } }", token=staff_token)
        assert "errors" not in staff_text.json()
        ide = await http.get("/graphql", headers={"accept": "text/html"})
        assert "graphiql" not in ide.text.lower()


async def test_development_serves_graphiql_and_introspection(api):
    page = await api.http.get("/graphql", headers={"accept": "text/html"})
    assert "graphiql" in page.text.lower()
    assert "errors" not in await api.gql("{ __schema { queryType { name } } }")


LOGIN = "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { errors { code } } }"


async def test_sign_in_attempts_are_rate_limited_per_username(api):
    results = [await api.gql(LOGIN, {"u": "sh01.clerk", "p": "wrong"}) for _ in range(11)]
    assert all(r["data"]["login"]["errors"] == [{"code": "INVALID_CREDENTIALS"}] for r in results[:10])
    assert _codes(results[10]) == ["RATE_LIMITED"] and results[10]["errors"][0]["extensions"]["retryAfter"] > 0
    other = await api.gql(LOGIN, {"u": "sh02.clerk", "p": "wrong"})  # another account is not locked out by this one
    assert other["data"]["login"]["errors"] == [{"code": "INVALID_CREDENTIALS"}]


async def test_member_lookups_are_rate_limited_per_clerk(api):
    identify = 'mutation { identifyMember(input: {phone: "13800000000"}) { errors { code } } }'
    await api.token("sh01.clerk")  # one sign-in; the lookups race
    results = await asyncio.gather(*(api.gql(identify, as_="sh01.clerk") for _ in range(61)))
    codes = [r["data"]["identifyMember"]["errors"][0]["code"] if r.get("data") else _codes(r)[0] for r in results]
    assert codes.count("RATE_LIMITED") == 1 and codes.count("NOT_FOUND") == 60


async def test_member_sign_ins_are_rate_limited_per_ip(api):
    sign_in = 'mutation($c: String!) { memberSignIn(input: {provider: "local", code: $c}) { errors { code } } }'
    results = [await api.gql(sign_in, {"c": f"ip-{i}"}) for i in range(61)]
    assert all("errors" not in r for r in results[:60]) and _codes(results[60]) == ["RATE_LIMITED"]


async def test_with_redis_two_instances_share_one_count(redis_url):
    import uuid

    a, b = RedisCounter(redis_url), RedisCounter(redis_url)
    subject = uuid.uuid4().hex
    try:
        for counter in (a, b) * 5:
            await check(counter, "login", ip=None, viewer=None, subject=subject)
        with pytest.raises(Exception) as over:
            await check(a, "login", ip=None, viewer=None, subject=subject)
        assert getattr(over.value, "code", None) == "RATE_LIMITED"
    finally:
        await a.close()
        await b.close()
    local = LocalCounter()
    assert [await local.incr("k", 60) for _ in range(3)] == [1, 2, 3]


@pytest.mark.postgres_too
async def test_text_with_a_nul_character_is_refused_before_it_reaches_the_database(api):
    literal = await api.gql('{ skuByBarcode(barcode: "69\\u0000") { id } }')
    variable = await api.gql("query($b: String!) { skuByBarcode(barcode: $b) { id } }", {"b": "69\x00"})
    assert _codes(literal) == ["BAD_USER_INPUT"] and _codes(variable) == ["BAD_USER_INPUT"]


async def test_a_repeated_document_is_parsed_and_validated_once(api, monkeypatch):
    """The second request with the same text (other variables, another viewer) skips parse and validation; an
    invalid document is remembered as invalid too, and a new text is validated on its own."""
    import schema.core.limits as limits_module

    parsed: list[str] = []
    validated: list[str] = []
    real_parse = limits_module.parse  # type: ignore[attr-defined]
    real_validate = limits_module.validate  # type: ignore[attr-defined]

    def counting_parse(source: str, **kwargs: Any) -> Any:
        parsed.append(source)
        return real_parse(source, **kwargs)

    def counting_validate(schema: Any, document: Any, *args: Any, **kwargs: Any) -> Any:
        validated.append(document.loc.source.body)
        return real_validate(schema, document, *args, **kwargs)

    monkeypatch.setattr(limits_module, "parse", counting_parse)
    monkeypatch.setattr(limits_module, "validate", counting_validate)
    tag = uuid.uuid4().hex  # caches live for the process: texts this test has never sent
    text = f"query Once_{tag}($n: Int!) {{ stores(first: $n) {{ edges {{ node {{ code }} }} }} }}"
    first = await api.gql(text, {"n": 1}, as_="hq.admin")
    second = await api.gql(text, {"n": 2}, as_="hq.analyst")
    assert "errors" not in first and "errors" not in second
    assert len(second["data"]["stores"]["edges"]) == 2  # the cached document still runs with its own variables
    assert parsed.count(text) == 1 and validated.count(text) == 1

    invalid = f"query Invalid_{tag} {{ stores(first: 1) {{ edges {{ node {{ noSuchField }} }} }} }}"
    for _ in range(3):
        assert _codes(await api.gql(invalid, as_="hq.admin")) == ["GRAPHQL_VALIDATION_FAILED"]
    assert validated.count(invalid) == 1

    other = f"query Other_{tag} {{ stores(first: 1) {{ edges {{ node {{ name }} }} }} }}"
    assert "errors" not in await api.gql(other, as_="hq.admin")
    assert validated.count(other) == 1 and validated.count(text) == 1

"""Bad input gets a coded error and leaves the database as it was."""

from __future__ import annotations

import pytest

from tests.conftest import gid, table_counts

LONG = "长" * 300


def create_staff(username="sh01.ok", display="Name", password="long-enough-1", role=None, store=None):
    """createStaff as HQ; store defaults to the chain's first store (id 1, SH01)."""
    store = store if store is not None else gid("Store", 1)
    return (
        "mutation($u: String!, $d: String!, $p: String!, $r: ID!, $s: ID) { createStaff(input: {username: $u,"
        " displayName: $d, password: $p, roleId: $r, storeId: $s}) { errors { code field } staff { id } } }",
        {"u": username, "d": display, "p": password, "r": role, "s": store},
    )


CREATE_STORE = (
    "mutation($code: String!, $name: String!, $lat: Float!, $hours: [OpeningHoursInput!]!) { createStore(input: {code: $code,"
    ' name: $name, city: "上海", address: "x", lat: $lat, lng: 121.0, hours: $hours}) { errors { code field } store { id } } }'
)


def bad_store(code="SH99", name="ok", lat=31.0, hours=None):
    return CREATE_STORE, {"code": code, "name": name, "lat": lat, "hours": hours or []}


@pytest.mark.postgres_too
async def test_login_with_over_long_username_or_password_is_coded(api):
    assert (await api.login(LONG))["errors"][0] == {
        "code": "INVALID_INPUT",
        "message": "username is longer than 64 characters.",
        "field": "username",
    }
    assert (await api.login("sh01.clerk", "p" * 500))["errors"][0]["code"] == "INVALID_INPUT"


@pytest.mark.postgres_too
@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (lambda c: create_staff(display=LONG, role=gid("Role", c.roles["CLERK"])), ("INVALID_INPUT", "displayName")),
        (
            lambda c: create_staff(username="Bad Name!", role=gid("Role", c.roles["CLERK"])),
            ("INVALID_INPUT", "username"),
        ),
        (
            lambda c: create_staff(password="short", role=gid("Role", c.roles["CLERK"])),
            ("PASSWORD_TOO_WEAK", "password"),
        ),
        (lambda c: create_staff(username="sh01.clerk", role=gid("Role", c.roles["CLERK"])), ("DUPLICATE", "username")),
        (lambda c: create_staff(role="not-an-id"), ("INVALID_ID", "roleId")),
        (lambda c: create_staff(role=gid("Store", 1)), ("INVALID_ID", "roleId")),
        (lambda c: create_staff(role=gid("Role", 99999)), ("NOT_FOUND", "roleId")),
        (
            lambda c: create_staff(role=gid("Role", c.roles["CLERK"]), store=gid("Store", 99999)),
            ("NOT_FOUND", "storeId"),
        ),
        (lambda c: create_staff(role=gid("Role", c.roles["CLERK"]), store="%%%"), ("INVALID_ID", "storeId")),
        (
            lambda c: create_staff(role=gid("Role", c.roles["HQ_ANALYST"]), store=gid("Store", c.stores["SH01"])),
            ("ROLE_SCOPE_MISMATCH", "storeId"),
        ),
        (lambda c: bad_store(code="sh01"), ("DUPLICATE", "code")),
        (lambda c: bad_store(code="!"), ("INVALID_INPUT", "code")),
        (lambda c: bad_store(name=LONG), ("INVALID_INPUT", "name")),
        (lambda c: bad_store(name="   "), ("INVALID_INPUT", "name")),
        (lambda c: bad_store(lat=123.0), ("INVALID_INPUT", "lat")),
        (lambda c: bad_store(hours=[{"weekday": 9, "opens": "08:00", "closes": "22:00"}]), ("INVALID_INPUT", "hours")),
        (lambda c: bad_store(hours=[{"weekday": 1, "opens": "8am", "closes": "22:00"}]), ("INVALID_INPUT", "hours")),
    ],
)
async def test_refused_mutations_are_coded_and_change_nothing(api, state, chain, case, expected):
    document, variables = case(chain)
    await api.token("hq.admin")
    before = await table_counts(state)
    body = await api.gql(document, variables, as_="hq.admin")
    assert "errors" not in body, body
    payload = next(iter(body["data"].values()))
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [expected]
    assert next(v for k, v in payload.items() if k != "errors") is None
    assert await table_counts(state) == before


async def test_missing_and_mistyped_fields_are_validation_errors(api, state):
    await api.token("hq.admin")
    before = await table_counts(state)
    missing = await api.gql('mutation { createStore(input: {code: "X1"}) { errors { code } } }', as_="hq.admin")
    mistyped = await api.gql("mutation { createStore(input: {code: 1, name: 2}) { errors { code } } }", as_="hq.admin")
    syntax = await api.gql("mutation { createStore(", as_="hq.admin")
    assert {e["extensions"]["code"] for e in missing["errors"]} == {"GRAPHQL_VALIDATION_FAILED"}
    assert {e["extensions"]["code"] for e in mistyped["errors"]} == {"GRAPHQL_VALIDATION_FAILED"}
    assert {e["extensions"]["code"] for e in syntax["errors"]} == {"GRAPHQL_PARSE_FAILED"}
    assert await table_counts(state) == before


async def test_bad_ids_and_page_sizes_in_queries_are_bad_user_input(api):
    bad_id = await api.gql('{ store(id: "nope") { code } }')
    assert bad_id["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "reason": "INVALID_ID", "field": "id"}
    too_many = await api.gql("{ stores(first: 101) { edges { cursor } } }")
    assert too_many["errors"][0]["extensions"]["field"] == "first"
    bad_cursor = await api.gql('{ stores(after: "garbage") { edges { cursor } } }')
    assert bad_cursor["errors"][0]["extensions"]["field"] == "after"
    assert (await api.gql('{ node(id: "garbage") { id } }'))["data"]["node"] is None
    assert (await api.gql('{ node(id: "U3RvcmU6OTk5OTk5") { id } }'))["data"]["node"] is None


async def test_invalid_store_status_transition_is_coded(api, chain, state):
    sid = gid("Store", chain.stores["SH01"])
    doc = "mutation($id: ID!, $s: StoreStatus!) { setStoreStatus(input: {id: $id, status: $s}) { errors { code } store { status } } }"
    await api.token("hq.admin")
    before = await table_counts(state)
    body = await api.gql(doc, {"id": sid, "s": "PREPARING"}, as_="hq.admin")
    assert body["data"]["setStoreStatus"] == {"errors": [{"code": "INVALID_TRANSITION"}], "store": None}
    assert await table_counts(state) == before
    closed = await api.gql(doc, {"id": sid, "s": "CLOSED"}, as_="hq.admin")
    assert closed["data"]["setStoreStatus"]["store"] == {"status": "CLOSED"}

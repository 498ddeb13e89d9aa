"""Given a chain with stores SH01 and SH02: SH01's manager and clerk never reach SH02's data."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import AuditLog, Staff
from tests.conftest import gid

STORE_A_STAFF = ["sh01.manager", "sh01.clerk"]


def codes(body):
    return {e["extensions"]["code"] for e in body.get("errors", [])}


@pytest.mark.parametrize("who", STORE_A_STAFF)
async def test_node_of_another_stores_staff_is_nothing(api, chain, who):
    for username in ("sh02.manager", "sh02.clerk", "hq.admin"):
        body = await api.gql(
            "query($id: ID!) { node(id: $id) { id ... on Staff { username } } }",
            {"id": gid("Staff", chain.staff[username])},
            as_=who,
        )
        assert body["data"]["node"] is None, (who, username)


async def test_node_of_own_stores_staff_is_visible_to_the_manager(api, chain):
    body = await api.gql(
        "query($id: ID!) { node(id: $id) { ... on Staff { username store { code } } } }",
        {"id": gid("Staff", chain.staff["sh01.clerk"])},
        as_="sh01.manager",
    )
    assert body["data"]["node"] == {"username": "sh01.clerk", "store": {"code": "SH01"}}


@pytest.mark.parametrize("who", STORE_A_STAFF)
async def test_another_stores_staff_list_is_forbidden(api, chain, who):
    b = gid("Store", chain.stores["SH02"])
    field = await api.gql("query($id: ID!) { store(id: $id) { name staff { username } } }", {"id": b}, as_=who)
    assert codes(field) == {"FORBIDDEN"} and field["data"]["store"] is None
    listing = await api.gql(
        "query($id: ID) { staffMembers(filter: {storeId: $id}) { edges { node { username } } } }", {"id": b}, as_=who
    )
    assert codes(listing) == {"FORBIDDEN"}


async def test_staff_list_of_a_store_manager_holds_only_their_store(api):
    body = await api.gql(
        "{ staffMembers(first: 100) { edges { node { username store { code } } } } }", as_="sh01.manager"
    )
    stores = {e["node"]["store"]["code"] for e in body["data"]["staffMembers"]["edges"]}
    assert stores == {"SH01"}


async def test_hq_sees_every_stores_staff(api):
    body = await api.gql("{ staffMembers(first: 100) { edges { node { username } } } }", as_="hq.analyst")
    assert len(body["data"]["staffMembers"]["edges"]) == 3 + 9 * 2 + 1  # and the demo warehouse's keeper


@pytest.mark.postgres_too
async def test_another_stores_audit_log_is_forbidden_and_own_list_has_only_own_store(api, chain, state):
    await api.login("sh02.clerk")  # an SH02 entry
    await api.login("sh01.clerk")  # an SH01 entry
    other = await api.gql(
        "query($id: ID) { auditLogs(filter: {storeId: $id}) { edges { node { operation } } } }",
        {"id": gid("Store", chain.stores["SH02"])},
        as_="sh01.manager",
    )
    assert codes(other) == {"FORBIDDEN"}
    own = await api.gql("{ auditLogs(first: 100) { edges { node { id store { code } } } } }", as_="sh01.manager")
    entries = own["data"]["auditLogs"]["edges"]
    assert entries and {e["node"]["store"]["code"] for e in entries} == {"SH01"}
    async with state.sessionmaker() as session:
        sh02_entry = await session.scalar(select(AuditLog.id).where(AuditLog.store_id == chain.stores["SH02"]))
    hidden = await api.gql(
        "query($id: ID!) { node(id: $id) { id } }", {"id": gid("AuditLogEntry", sh02_entry)}, as_="sh01.manager"
    )
    assert hidden["data"]["node"] is None


MUTATIONS_ON_B = [
    ("updateStaff", 'mutation($id: ID!) { updateStaff(input: {id: $id, displayName: "x"}) { errors { code } } }'),
    ("setStaffActive", "mutation($id: ID!) { setStaffActive(input: {id: $id, active: false}) { errors { code } } }"),
    (
        "resetStaffPassword",
        'mutation($id: ID!) { resetStaffPassword(input: {id: $id, newPassword: "whatever-123"}) { errors { code } } }',
    ),
]


@pytest.mark.parametrize(("name", "document"), MUTATIONS_ON_B)
async def test_store_manager_cannot_change_another_stores_staff(api, chain, state, name, document):
    target = chain.staff["sh02.clerk"]
    body = await api.gql(document, {"id": gid("Staff", target)}, as_="sh01.manager")
    assert codes(body) == {"FORBIDDEN"}
    async with state.sessionmaker() as session:
        clerk = await session.get(Staff, target)
    assert clerk.active and clerk.display_name != "x"
    assert (await api.login("sh02.clerk"))["errors"] == []


async def test_store_manager_cannot_hire_into_another_store_or_make_managers(api, chain):
    hire_b = await api.gql(
        'mutation($r: ID!, $s: ID!) { createStaff(input: {username: "spy", displayName: "x", password: "long-enough-1",'
        " roleId: $r, storeId: $s}) { errors { code } } }",
        {"r": gid("Role", chain.roles["CLERK"]), "s": gid("Store", chain.stores["SH02"])},
        as_="sh01.manager",
    )
    assert codes(hire_b) == {"FORBIDDEN"}
    manager = await api.gql(
        'mutation($r: ID!) { createStaff(input: {username: "sh01.boss", displayName: "x", password: "long-enough-1",'
        " roleId: $r}) { errors { code field } } }",
        {"r": gid("Role", chain.roles["STORE_MANAGER"])},
        as_="sh01.manager",
    )
    assert manager["data"]["createStaff"]["errors"] == [{"code": "ROLE_NOT_ASSIGNABLE", "field": "roleId"}]
    promote = await api.gql(
        "mutation($id: ID!, $r: ID!) { updateStaff(input: {id: $id, roleId: $r}) { errors { code } } }",
        {"id": gid("Staff", chain.staff["sh01.clerk"]), "r": gid("Role", chain.roles["HQ_ADMIN"])},
        as_="sh01.manager",
    )
    assert promote["data"]["updateStaff"]["errors"] == [{"code": "ROLE_NOT_ASSIGNABLE"}]


async def test_store_manager_hires_a_clerk_into_their_own_store_by_default(api, chain):
    body = await api.gql(
        'mutation($r: ID!) { createStaff(input: {username: "sh01.newbie", displayName: "新人", password: "long-enough-1",'
        " roleId: $r}) { errors { code } staff { username store { code } role { code } } } }",
        {"r": gid("Role", chain.roles["CLERK"])},
        as_="sh01.manager",
    )
    assert body["data"]["createStaff"] == {
        "errors": [],
        "staff": {"username": "sh01.newbie", "store": {"code": "SH01"}, "role": {"code": "CLERK"}},
    }
    assert (await api.login("sh01.newbie", "long-enough-1"))["errors"] == []


async def test_store_manager_cannot_touch_hq_accounts(api, chain):
    body = await api.gql(
        "mutation($id: ID!) { setStaffActive(input: {id: $id, active: false}) { errors { code } } }",
        {"id": gid("Staff", chain.staff["hq.admin"])},
        as_="sh01.manager",
    )
    assert codes(body) == {"FORBIDDEN"}


async def test_preparing_store_is_hidden_from_the_public_and_other_stores(api, chain):
    created = await api.gql(
        'mutation { createStore(input: {code: "NJ01", name: "新街口店", city: "南京", address: "中山路1号",'
        " lat: 32.04, lng: 118.78}) { store { id status } } }",
        as_="hq.admin",
    )
    store = created["data"]["createStore"]["store"]
    assert store["status"] == "PREPARING"
    query = "query($id: ID!) { store(id: $id) { code } }"
    for who in (None, "member:someone", "sh01.manager"):
        assert (await api.gql(query, {"id": store["id"]}, as_=who))["data"]["store"] is None, who
    assert (await api.gql(query, {"id": store["id"]}, as_="hq.analyst"))["data"]["store"] == {"code": "NJ01"}

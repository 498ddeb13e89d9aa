"""Every root query and mutation of the foundation x every kind of viewer: allowed, or refused with the exact code.

On SQLite, each operation's givens are made once, in a copy of the demo database, and each viewer's case then runs
on a fresh copy of that file (with the payment sandbox's memory as the givens left it), signed in by a token minted
directly: no case sees another's effects. A few cases run on PostgreSQL too, the whole way (seed, sign in over HTTP).
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app import create_app
from models import RoleScope
from resolvers.state import build_state
from services.access.roles import create_role
from services.platform.config import Settings
from tests.access.matrix_brand import brand_ops
from tests.access.matrix_cards import card_ops
from tests.access.matrix_care import care_ops
from tests.access.matrix_inventory import inventory_ops
from tests.access.matrix_marketing import marketing_ops, report_ops
from tests.access.matrix_members import member_ops
from tests.access.matrix_messaging import messaging_ops
from tests.access.matrix_orders import order_ops
from tests.access.matrix_profiles import profile_ops
from tests.conftest import Api, Chain, DemoTemplate, chain_of, gid, make_settings, mint_token

VIEWERS = {
    "anonymous": None,
    "member": "member:matrix-member",
    "clerk": "sh01.clerk",
    "store_manager": "sh01.manager",
    "hq_analyst": "hq.analyst",
    "hq_operator": "hq.operator",
    "hq_admin": "hq.admin",
}
OK, UNAUTH, FORBIDDEN = "OK", "UNAUTHENTICATED", "FORBIDDEN"
ALL = dict.fromkeys(VIEWERS, OK)


def only(*allowed: str) -> dict[str, str]:
    return {v: OK if v in allowed else (UNAUTH if v == "anonymous" else FORBIDDEN) for v in VIEWERS}


def signed_in() -> dict[str, str]:
    return {v: UNAUTH if v == "anonymous" else OK for v in VIEWERS}


STAFF_READERS = ("store_manager", "hq_analyst", "hq_operator", "hq_admin")
STAFF_MANAGERS = ("store_manager", "hq_admin")
STAFF = ("clerk", "store_manager", "hq_analyst", "hq_operator", "hq_admin")

Vars = Callable[[Any, Any], Awaitable[dict[str, Any]]]


async def no_vars(chain, state) -> dict[str, Any]:
    return {}


async def sh01(chain, state) -> dict[str, Any]:
    return {"id": gid("Store", chain.stores["SH01"])}


async def sh01_clerk(chain, state) -> dict[str, Any]:
    return {"id": gid("Staff", chain.staff["sh01.clerk"]), "role": gid("Role", chain.roles["CLERK"])}


async def custom_role(chain, state) -> dict[str, Any]:
    async with state.sessionmaker() as session, session.begin():
        role = await create_role(
            session, code="NIGHT_SHIFT", name="Night shift", scope=RoleScope.STORE, permissions=["order.checkout"]
        )
    return {"id": gid("Role", role.id)}


async def new_clerk(chain, state) -> dict[str, Any]:
    return {"role": gid("Role", chain.roles["CLERK"]), "store": gid("Store", chain.stores["SH01"])}


@dataclass(frozen=True)
class Op:
    name: str
    document: str
    expected: dict[str, str]
    variables: Vars = no_vars
    # For mutations: the payload field whose errors must be empty when allowed.
    payload: str | None = None


OPS = [
    Op("me", "{ me { __typename } }", ALL),
    Op("stores", "{ stores(first: 5) { edges { node { code } } } }", ALL),
    Op("store", "query($id: ID!) { store(id: $id) { code } }", ALL, sh01),
    Op("nearbyStores", "{ nearbyStores(lat: 31.23, lng: 121.47) { edges { node { code } } } }", ALL),
    Op("node", "query($id: ID!) { node(id: $id) { id } }", ALL, sh01),
    Op("nodes", "query($id: ID!) { nodes(ids: [$id]) { id } }", ALL, sh01),
    Op("store.staff", "query($id: ID!) { store(id: $id) { staff { username } } }", only(*STAFF_READERS), sh01),
    Op("store.manager", "query($id: ID!) { store(id: $id) { manager { username } } }", only(*STAFF_READERS), sh01),
    Op("staffMembers", "{ staffMembers(first: 5) { edges { node { username } } } }", only(*STAFF_READERS)),
    Op("roles", "{ roles { code } }", only(*STAFF)),
    Op("permissions", "{ permissions { code } }", only("hq_admin")),
    Op("auditLogs", "{ auditLogs(first: 5) { edges { node { operation } } } }", only("store_manager", "hq_admin")),
    Op("failedJobs", "{ failedJobs(first: 5) { edges { node { kind } } } }", only("hq_admin")),
    Op(
        "login",
        'mutation { login(input: {username: "sh02.clerk", password: "demo-pass-2026"}) { errors { code } } }',
        ALL,
        payload="login",
    ),
    Op("refreshToken", 'mutation { refreshToken(input: {refreshToken: "x"}) { errors { code } } }', ALL),
    Op("logout", "mutation { logout { errors { code } } }", signed_in(), payload="logout"),
    Op(
        "memberSignIn",
        'mutation { memberSignIn(input: {provider: "local", code: "someone"}) { errors { code } } }',
        ALL,
        payload="memberSignIn",
    ),
    Op(
        "createStore",
        'mutation { createStore(input: {code: "NJ01", name: "新街口店", city: "南京", address: "秦淮区中山路1号",'
        " lat: 32.04, lng: 118.78}) { errors { code } } }",
        only("hq_admin"),
        payload="createStore",
    ),
    Op(
        "updateStore",
        'mutation($id: ID!) { updateStore(input: {id: $id, phone: "021-5555"}) { errors { code } } }',
        only("hq_admin"),
        sh01,
        payload="updateStore",
    ),
    Op(
        "setStoreStatus",
        "mutation($id: ID!) { setStoreStatus(input: {id: $id, status: CLOSED}) { errors { code } } }",
        only("hq_admin"),
        sh01,
        payload="setStoreStatus",
    ),
    Op(
        "createStaff",
        'mutation($role: ID!, $store: ID!) { createStaff(input: {username: "sh01.clerk2", displayName: "新店员",'
        ' password: "long-enough-1", roleId: $role, storeId: $store}) { errors { code } } }',
        only(*STAFF_MANAGERS),
        new_clerk,
        payload="createStaff",
    ),
    Op(
        "updateStaff",
        'mutation($id: ID!) { updateStaff(input: {id: $id, displayName: "张三"}) { errors { code } } }',
        only(*STAFF_MANAGERS),
        sh01_clerk,
        payload="updateStaff",
    ),
    Op(
        "setStaffActive",
        "mutation($id: ID!) { setStaffActive(input: {id: $id, active: false}) { errors { code } } }",
        only(*STAFF_MANAGERS),
        sh01_clerk,
        payload="setStaffActive",
    ),
    Op(
        "resetStaffPassword",
        'mutation($id: ID!) { resetStaffPassword(input: {id: $id, newPassword: "another-pass-1"}) { errors { code } } }',
        only(*STAFF_MANAGERS),
        sh01_clerk,
        payload="resetStaffPassword",
    ),
    Op(
        "changeMyPassword",
        'mutation { changeMyPassword(input: {currentPassword: "demo-pass-2026", newPassword: "another-pass-1"})'
        " { errors { code } } }",
        only(*STAFF),
        payload="changeMyPassword",
    ),
    Op(
        "createRole",
        'mutation { createRole(input: {code: "TRAINEE", name: "Trainee", scope: STORE, permissions: ["stock.read"]})'
        " { errors { code } } }",
        only("hq_admin"),
        payload="createRole",
    ),
    Op(
        "updateRole",
        'mutation($id: ID!) { updateRole(input: {id: $id, permissions: ["order.checkout", "order.pickup"]})'
        " { errors { code } } }",
        only("hq_admin"),
        custom_role,
        payload="updateRole",
    ),
]

OPS += inventory_ops(Op, only, ALL, STAFF)
OPS += member_ops(Op, only, ALL, STAFF)
OPS += order_ops(Op, only, ALL, STAFF)
OPS += marketing_ops(Op, only, ALL, STAFF)
OPS += report_ops(Op, only, ALL, STAFF)
OPS += profile_ops(Op, only, ALL, STAFF)
OPS += messaging_ops(Op, only, ALL, STAFF)
OPS += care_ops(Op, only, ALL, STAFF)
OPS += brand_ops(Op, only, ALL, STAFF)
OPS += card_ops(Op, only, ALL, STAFF)

CASES = [pytest.param(op, viewer, id=f"{op.name}-{viewer}") for op in OPS for viewer in VIEWERS]


@dataclass(frozen=True)
class Given:
    """An operation's givens: the database file they were made in, its variables, the payment sandboxes' memory."""

    path: Path
    variables: dict[str, Any]
    providers: dict[str, dict[str, Any]]


GIVENS: dict[str, Given] = {}


def _sqlite(keys: tuple[str, str], path: Path) -> Settings:
    return make_settings(f"sqlite+aiosqlite:///{path}", path.parent / "data", keys)


async def given(op: Op, keys: tuple[str, str], demo: DemoTemplate, directory: Path) -> Given:
    """The operation's givens, made once per run in a copy of the demo database."""
    if op.name not in GIVENS:
        path = directory / f"{op.name}.db"
        settings = _sqlite(keys, path)
        shutil.copy(await demo.path(settings), path)
        state = build_state(settings)
        try:
            variables = await op.variables(await chain_of(state), state)
            providers = {name: copy.deepcopy(vars(p)) for name, p in state.payment_providers.items()}
        finally:
            await state.engine.dispose()
        GIVENS[op.name] = Given(path, variables, providers)
    return GIVENS[op.name]


def check(op: Op, viewer: str, body: dict[str, Any]) -> None:
    expected = op.expected[viewer]
    if expected == OK:
        assert not body.get("errors"), body
        if op.payload:
            assert body["data"][op.payload]["errors"] == [], body
    else:
        codes = [e["extensions"]["code"] for e in body.get("errors", [])]
        assert codes and set(codes) == {expected}, body


@pytest.fixture(scope="module")
def givens_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("matrix")


@pytest.mark.parametrize(("op", "viewer"), CASES)
async def test_access(test_keys, sqlite_demo_template, givens_dir, tmp_path, op: Op, viewer: str):
    made = await given(op, test_keys, sqlite_demo_template, givens_dir)
    path = tmp_path / "case.db"
    shutil.copy(made.path, path)
    state = build_state(_sqlite(test_keys, path))
    for name, memory in made.providers.items():
        vars(state.payment_providers[name]).update(copy.deepcopy(memory))
    who = VIEWERS[viewer]
    try:
        api = Api(httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(state=state)), base_url="http://t"))
        if who:
            api.tokens[who] = await mint_token(state, who)
        async with api.http:
            body = await api.gql(op.document, made.variables, as_=who)
    finally:
        await state.engine.dispose()
        path.unlink()  # 819 cases: keep the run's temporary files small
    check(op, viewer, body)


BY_NAME = {op.name: op for op in OPS}
ON_POSTGRES = [
    ("stores", "anonymous"),
    ("permissions", "hq_analyst"),
    ("createStore", "hq_admin"),
    ("createStore", "store_manager"),
    ("placeOrder", "member"),
    ("refundOrder", "clerk"),
    ("refundOrder", "store_manager"),
    ("identifyMember", "hq_analyst"),
    ("adjustStock", "store_manager"),
]


@pytest.mark.postgres_only
@pytest.mark.parametrize(("name", "viewer"), ON_POSTGRES, ids=[f"{n}-{v}" for n, v in ON_POSTGRES])
async def test_access_on_postgres(api, chain: Chain, state, name: str, viewer: str):
    """A few cases of the matrix the whole way on PostgreSQL: givens in the seeded database, sign-in over HTTP."""
    op = BY_NAME[name]
    variables = await op.variables(chain, state)
    check(op, viewer, await api.gql(op.document, variables, as_=VIEWERS[viewer]))


def test_matrix_covers_every_root_field():
    from schema import schema

    gql = schema._schema
    assert gql.query_type is not None and gql.mutation_type is not None
    roots = set(gql.query_type.fields) | set(gql.mutation_type.fields)
    covered = {op.name.split(".")[0] for op in OPS}
    assert roots - covered == set(), "add these to the access matrix"

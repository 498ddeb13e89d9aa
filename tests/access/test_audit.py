"""Every mutation leaves a trace: who, role, store, operation, targets, redacted input, outcome, request id, IP."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import AuditLog, AuditOutcome, Staff
from services.access.audit import redact
from services.access.pii import REDACTED
from tests.conftest import gid


async def _entries(state, operation):
    async with state.sessionmaker() as session:
        return list(
            (await session.scalars(select(AuditLog).where(AuditLog.operation == operation).order_by(AuditLog.id))).all()
        )


@pytest.mark.postgres_too
async def test_successful_change_and_its_entry_commit_together(api, state, chain):
    target = gid("Staff", chain.staff["sh01.clerk"])
    response = await api.post(
        'mutation($id: ID!) { updateStaff(input: {id: $id, displayName: "王五"}) { errors { code } } }',
        {"id": target},
        token=await api.token("sh01.manager"),
    )
    entry = (await _entries(state, "updateStaff"))[-1]
    assert entry.outcome is AuditOutcome.OK
    assert entry.staff_id == chain.staff["sh01.manager"] and entry.role_code == "STORE_MANAGER"
    assert entry.store_id == chain.stores["SH01"]
    assert target in entry.target_ids
    assert entry.input == {"id": target, "displayName": "王五"}
    assert entry.request_id == response.headers["x-request-id"]
    assert entry.ip


async def test_refused_mutation_is_logged_with_its_code_and_changes_nothing(api, state, chain):
    await api.gql(
        'mutation($r: ID!) { createStaff(input: {username: "sh01.clerk", displayName: "dup", password: "secret-pass-1",'
        " roleId: $r}) { errors { code } } }",
        {"r": gid("Role", chain.roles["CLERK"])},
        as_="sh01.manager",
    )
    [entry] = await _entries(state, "createStaff")
    assert entry.outcome is AuditOutcome.REFUSED and entry.error_code == "DUPLICATE"
    assert entry.input["password"] == REDACTED and "secret-pass-1" not in str(entry.input)
    async with state.sessionmaker() as session:
        assert len((await session.scalars(select(Staff).where(Staff.username == "sh01.clerk"))).all()) == 1


async def test_forbidden_and_unauthenticated_attempts_are_logged(api, state, chain):
    await api.gql(
        'mutation { createRole(input: {code: "X_Y", name: "x", scope: HQ, permissions: []}) { errors { code } } }',
        as_="sh01.manager",
    )
    await api.gql(
        'mutation { createRole(input: {code: "X_Y", name: "x", scope: HQ, permissions: []}) { errors { code } } }'
    )
    entries = await _entries(state, "createRole")
    assert [(e.outcome, e.actor_kind, e.staff_id) for e in entries] == [
        (AuditOutcome.FORBIDDEN, "STAFF", chain.staff["sh01.manager"]),
        (AuditOutcome.UNAUTHENTICATED, "ANONYMOUS", None),
    ]


async def test_failed_login_is_logged_without_the_password(api, state, chain):
    await api.login("sh01.clerk", "guessing-1234")
    await api.login("sh01.clerk")
    failed, ok = await _entries(state, "login")
    assert failed.outcome is AuditOutcome.REFUSED and failed.error_code == "INVALID_CREDENTIALS"
    assert failed.input == {"username": "sh01.clerk", "password": REDACTED}
    assert ok.outcome is AuditOutcome.OK and ok.staff_id == chain.staff["sh01.clerk"]


async def test_refresh_tokens_and_sign_in_codes_never_reach_the_log(api, state):
    tokens = (await api.login("sh01.clerk"))["tokens"]
    await api.gql(
        "mutation($t: String!) { refreshToken(input: {refreshToken: $t}) { errors { code } } }",
        {"t": tokens["refreshToken"]},
    )
    await api.member_sign_in("openid-secret:13911112222")
    async with state.sessionmaker() as session:
        dump = str([e.input for e in (await session.scalars(select(AuditLog))).all()])
    assert tokens["refreshToken"] not in dump and "openid-secret" not in dump and "13911112222" not in dump


async def test_audit_logs_filter_by_operation_and_outcome_newest_first(api):
    await api.login("sh01.clerk", "wrong-password")
    await api.login("sh01.clerk", "wrong-password-2")
    await api.login("sh01.clerk")
    body = await api.gql(
        '{ auditLogs(first: 10, filter: {operation: "login", outcome: REFUSED}) { edges { node { id outcome errorCode } } } }',
        as_="hq.admin",
    )
    nodes = [e["node"] for e in body["data"]["auditLogs"]["edges"]]
    assert [n["outcome"] for n in nodes] == ["REFUSED", "REFUSED"]
    assert nodes[0]["id"] != nodes[1]["id"]


def test_redaction_masks_secrets_and_phones_at_any_depth_as_the_input_types_declare():
    from schema.access.types import LoginInput
    from schema.core.personal import plan_for
    from schema.orders.types import PlaceOrderInput

    assert redact({"username": "sh01.clerk", "password": "p"}, plan_for(LoginInput)) == {
        "username": "sh01.clerk",
        "password": REDACTED,
    }
    placed = {"lines": [{"skuId": "U2t1OjE=", "quantity": 1}], "delivery": {"phone": "13800138000", "address": "x"}}
    assert redact(placed, plan_for(PlaceOrderInput)) == {
        "lines": [{"skuId": "U2t1OjE=", "quantity": 1}],
        "delivery": {"phone": "138****8000", "address": REDACTED},
    }

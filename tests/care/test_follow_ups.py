"""Follow-up calls (issue #16 part 2), by role over HTTP: HQ or a store's manager makes tasks for a store's members
from a segment, a tag, a level or a list, or from an event rule (a refund over an amount, a first visit) that the
daily job applies; the store's staff see their store's tasks only, reveal the member's phone for the call (audited)
and record the outcome; a coupon given is issued once per key; HQ sees completion by store."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from models import AuditLog, CouponKind, FollowUpTask, Member, MemberCoupon, utcnow
from services.care import follow_ups
from services.platform.db import write_transaction
from tests.care.givens import given_shop
from tests.conftest import count_statements, gid, pk
from tests.marketing_givens import template

ANN, BOB = "ann:13800000001", "bob:13800000002"
CREATE = """mutation($s: ID!, $a: FollowUpAudienceInput!, $due: DateTime!, $idempotencyKey: String!, $who: ID) {
  createFollowUps(input: {storeId: $s, audience: $a, script: "您好 回访一下上次购物体验", dueAt: $due,
  idempotencyKey: $idempotencyKey, assigneeId: $who}) { errors { code field } created } }"""
TASKS = """query($n: Int) { followUpTasks(first: $n) { edges { node { id status source overdue store { code }
  member { name phone } assignee { username } } } } }"""
REVEAL = "mutation($id: ID!) { revealFollowUpPhone(input: {id: $id}) { errors { code field } phone } }"
COMPLETE = """mutation($id: ID!, $o: FollowUpOutcome!, $c: ID, $idempotencyKey: String!) {
  completeFollowUp(input: {id: $id, outcome: $o, couponTemplateId: $c, note: "已送券", idempotencyKey: $idempotencyKey})
  { errors { code field } task { status outcome couponsGiven ticket { status } } } }"""
COMPLETION = "{ followUpCompletion { store { code } total done overdue reached couponsGiven rate } }"
RULE = """mutation($k: FollowUpRuleKind!, $s: ID, $min: Int!) { createFollowUpRule(input: {kind: $k, storeId: $s,
  minAmount: $min, script: "退款回访"}) { errors { code field } rule { kind minAmount store { code } } } }"""


def _due() -> str:
    return (utcnow() + timedelta(days=2)).isoformat()


async def _tasks_for(api, chain, shop, who: str = "hq.operator") -> list[dict[str, Any]]:
    members = [gid("Member", m) for m in shop.members.values()]
    made = await api.gql(
        CREATE, {"s": gid("Store", chain.stores["SH01"]), "a": {"memberIds": members}, "due": _due()}, as_=who
    )
    assert made["data"]["createFollowUps"]["errors"] == [], made
    edges: list[dict[str, Any]] = (await api.gql(TASKS, as_="sh01.clerk"))["data"]["followUpTasks"]["edges"]
    return [e["node"] for e in edges]


@pytest.mark.postgres_too
async def test_tasks_from_an_audience_once_per_key_seen_only_by_the_store(api, state, chain):
    shop = await given_shop(api, state, chain, codes=(ANN, BOB))
    async with write_transaction(state.sessionmaker) as session:
        await session.execute(update(Member).where(Member.id == shop.members[ANN]).values(segment="AT_RISK"))
    variables = {
        "s": gid("Store", chain.stores["SH01"]),
        "a": {"segment": "AT_RISK"},
        "due": _due(),
        "idempotencyKey": "at-risk-1",
        "who": gid("Staff", chain.staff["sh01.clerk"]),
    }
    first = await api.gql(CREATE, variables, as_="sh01.manager")
    again = await api.gql(CREATE, variables, as_="sh01.manager")
    assert first["data"]["createFollowUps"] == again["data"]["createFollowUps"] == {"errors": [], "created": 1}
    tasks = (await api.gql(TASKS, as_="sh01.clerk"))["data"]["followUpTasks"]["edges"]
    assert [t["node"]["member"] for t in tasks] == [{"name": None, "phone": "138****0001"}]
    assert tasks[0]["node"]["source"] == "SEGMENT" and tasks[0]["node"]["store"] == {"code": "SH01"}
    # Another store's manager may not make SH01's tasks; another store's staff see none of them.
    other = await api.gql(CREATE, {**variables, "idempotencyKey": "x"}, as_="sh02.manager")
    assert other["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await api.gql(TASKS, as_="sh02.clerk"))["data"]["followUpTasks"]["edges"] == []
    for target in (tasks[0]["node"]["id"], gid("FollowUpTask", 999_999)):
        hidden = await api.gql(REVEAL, {"id": target}, as_="sh02.clerk")
        assert hidden["data"]["revealFollowUpPhone"] == {
            "errors": [{"code": "NOT_FOUND", "field": "id"}],
            "phone": None,
        }
    node = "query($id: ID!) { node(id: $id) { ... on FollowUpTask { status } } }"
    assert (await api.gql(node, {"id": tasks[0]["node"]["id"]}, as_="sh02.manager"))["data"]["node"] is None
    assert (await api.gql(TASKS, as_=f"member:{ANN}"))["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_the_phone_is_revealed_for_the_call_and_the_reveal_is_audited(api, state, chain):
    shop = await given_shop(api, state, chain)
    task = (await _tasks_for(api, chain, shop))[0]
    shown = await api.gql(REVEAL, {"id": task["id"]}, as_="sh01.clerk")
    assert shown["data"]["revealFollowUpPhone"] == {"errors": [], "phone": "13800000001"}
    async with state.sessionmaker() as session:
        entry = await session.scalar(select(AuditLog).where(AuditLog.operation == "revealFollowUpPhone"))
    assert entry is not None and entry.staff_id == chain.staff["sh01.clerk"] and entry.store_id == chain.stores["SH01"]
    assert gid("Member", shop.members[ANN]) in entry.target_ids and task["id"] in entry.target_ids
    assert "13800000001" not in str(entry.__dict__)


@pytest.mark.postgres_too
async def test_a_coupon_given_on_the_call_is_issued_once_and_completion_shows_by_store(api, state, chain):
    shop = await given_shop(api, state, chain, codes=(ANN, BOB))
    coupon = await template(state, CouponKind.AMOUNT_OFF, amount_off=500, per_member_limit=5)
    first, second = await _tasks_for(api, chain, shop)
    variables = {"id": first["id"], "o": "COUPON_GIVEN", "c": gid("CouponTemplate", coupon), "idempotencyKey": "call-1"}
    done = await api.gql(COMPLETE, variables, as_="sh01.clerk")
    replay = await api.gql(COMPLETE, variables, as_="sh01.clerk")
    assert done == replay
    assert done["data"]["completeFollowUp"]["task"] == {
        "status": "DONE",
        "outcome": "COUPON_GIVEN",
        "couponsGiven": 1,
        "ticket": None,
    }
    async with state.sessionmaker() as session:
        held = await session.scalar(
            select(func.count()).select_from(MemberCoupon).where(MemberCoupon.template_id == coupon)
        )
    assert held == 1
    twice = await api.gql(COMPLETE, {**variables, "idempotencyKey": "call-2"}, as_="sh01.clerk")
    assert twice["data"]["completeFollowUp"]["errors"] == [{"code": "INVALID_TRANSITION", "field": "id"}]
    raised = await api.gql(COMPLETE, {"id": second["id"], "o": "COMPLAINT_RAISED"}, as_="sh01.manager")
    assert raised["data"]["completeFollowUp"]["task"]["ticket"] == {"status": "OPEN"}
    rows = (await api.gql(COMPLETION, as_="hq.operator"))["data"]["followUpCompletion"]
    assert rows == [
        {"store": {"code": "SH01"}, "total": 2, "done": 2, "overdue": 0, "reached": 0, "couponsGiven": 1, "rate": 1.0}
    ]
    assert (await api.gql(COMPLETION, as_="sh02.manager"))["data"]["followUpCompletion"] == []


@pytest.mark.postgres_too
async def test_event_rules_make_one_task_per_refund_over_the_amount_and_per_first_visit(api, state, chain):
    shop = await given_shop(api, state, chain)
    made = await api.gql(RULE, {"k": "REFUND_OVER", "min": 3000}, as_="hq.operator")
    assert made["data"]["createFollowUpRule"]["rule"] == {"kind": "REFUND_OVER", "minAmount": 3000, "store": None}
    mine = await api.gql(
        RULE, {"k": "FIRST_VISIT", "s": gid("Store", chain.stores["SH01"]), "min": 0}, as_="sh01.manager"
    )
    assert mine["data"]["createFollowUpRule"]["errors"] == []
    everywhere = await api.gql(RULE, {"k": "FIRST_VISIT", "min": 0}, as_="sh01.manager")
    assert everywhere["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    refund = """mutation($id: ID!, $idempotencyKey: String!) { refundOrder(input: {id: $id, idempotencyKey: $idempotencyKey})
      { errors { code } refund { amount } } }"""
    assert (await api.gql(refund, {"id": shop.orders[ANN]}, as_="sh01.manager"))["data"]["refundOrder"]["refund"] == {
        "amount": 4000
    }
    async with write_transaction(state.sessionmaker) as session:
        assert await follow_ups.run_rules(session, utcnow()) == 2  # the refund, and Ann's first visit to SH01
    async with write_transaction(state.sessionmaker) as session:
        assert await follow_ups.run_rules(session, utcnow()) == 0  # the job ran again: nothing twice
    tasks = (await api.gql(TASKS, as_="sh01.clerk"))["data"]["followUpTasks"]["edges"]
    assert sorted(t["node"]["source"] for t in tasks) == ["FIRST_VISIT", "REFUND_OVER"]


async def test_task_lists_take_the_same_statements_for_10_and_100_tasks(api, state, chain):
    shop = await given_shop(api, state, chain)
    async with write_transaction(state.sessionmaker) as session:
        for i in range(100):
            session.add(
                FollowUpTask(
                    store_id=chain.stores["SH01"],
                    member_id=shop.members[ANN],
                    assignee_id=chain.staff["sh01.clerk"],
                    source="MEMBERS",
                    dedupe_key=f"t{i}",
                    script="s",
                    due_at=utcnow() + timedelta(days=1),
                )
            )
    token = await api.token("sh01.manager")
    counts = {}
    for n in (10, 100):
        with count_statements(state.engine) as counter:
            body = (await api.post(TASKS, {"n": n}, token=token)).json()
        assert "errors" not in body, body
        edges = body["data"]["followUpTasks"]["edges"]
        assert len(edges) == n and all(e["node"]["assignee"] == {"username": "sh01.clerk"} for e in edges)
        counts[n] = counter.count
    assert counts[10] == counts[100], counts
    assert pk(edges[0]["node"]["id"]) > 0

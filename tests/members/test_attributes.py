"""Member attributes over the API, by role: HQ declares them, staff in scope fill them, the member sees and edits
their own; sensitive values are encrypted, masked to staff, revealed only through an audited mutation, and never in
the audit log or the logs; search filters by them; the export holds them and the deletion erases them."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

import models
from models import AuditLog, MemberAttributeValue
from tests.conftest import count_statements, gid, table_counts
from tests.conftest import pk as pk_of

PHONE = "13800138066"
ALLERGY = "花生过敏 peanuts"
DEFINE = """mutation($i: DefineMemberAttributeInput!) { defineMemberAttribute(input: $i) {
  errors { code field } attribute { id code name kind sensitivity choices memberEditable } } }"""
SET = """mutation($m: ID!, $v: [AttributeValueInput!]!) { setMemberAttributes(input: {memberId: $m, values: $v}) {
  errors { code field } member { attributes { value masked attribute { code } } } } }"""
SET_MINE = """mutation($v: [AttributeValueInput!]!) { setMyAttributes(input: {values: $v}) {
  errors { code field } member { attributes { value masked attribute { code } } } } }"""
REVEAL = """mutation($m: ID!, $a: ID!) { revealMemberAttribute(input: {memberId: $m, attributeId: $a}) {
  errors { code field } value } }"""
IDENTIFY = """mutation($p: String) { identifyMember(input: {phone: $p}) {
  errors { code } member { id attributes { value masked attribute { code } } } } }"""
ME = "{ me { ... on MemberViewer { member { attributes { value masked attribute { code } } } } } }"


def codes(body):
    return {e["extensions"]["code"] for e in body.get("errors", [])}


async def _define(api, **spec):
    body = await api.gql(DEFINE, {"i": spec}, as_="hq.operator")
    assert body["data"]["defineMemberAttribute"]["errors"] == [], body
    return body["data"]["defineMemberAttribute"]["attribute"]


async def given_attributes_and_a_member_of_sh01(api):
    allergy = await _define(api, code="allergies", name="过敏", kind="TEXT", sensitivity="SENSITIVE")
    skin = await _define(
        api, code="skin_type", name="肤质", kind="CHOICE", choices=["干性", "油性", "混合"], memberEditable=True
    )
    height = await _define(api, code="height", name="身高", kind="NUMBER")
    registered = await api.gql(
        'mutation($p: String!) { registerMember(input: {phone: $p, name: "李娜"}) { member { id } } }',
        {"p": PHONE},
        as_="sh01.clerk",
    )
    member = registered["data"]["registerMember"]["member"]["id"]
    return allergy, skin, height, member


async def test_the_store_fills_attributes_staff_see_sensitive_ones_masked_and_the_member_sees_them_in_full(api):
    allergy, skin, height, member = await given_attributes_and_a_member_of_sh01(api)
    values = [
        {"attributeId": allergy["id"], "value": ALLERGY},
        {"attributeId": skin["id"], "value": "油性"},
        {"attributeId": height["id"], "value": "165.50"},
    ]
    filled = (await api.gql(SET, {"m": member, "v": values}, as_="sh01.manager"))["data"]["setMemberAttributes"]
    assert filled["errors"] == []
    assert filled["member"]["attributes"] == [
        {"value": "花***", "masked": True, "attribute": {"code": "allergies"}},
        {"value": "油性", "masked": False, "attribute": {"code": "skin_type"}},
        {"value": "165.5", "masked": False, "attribute": {"code": "height"}},
    ]
    at_counter = (await api.gql(IDENTIFY, {"p": PHONE}, as_="sh01.clerk"))["data"]["identifyMember"]["member"]
    assert at_counter["attributes"][0] == {"value": "花***", "masked": True, "attribute": {"code": "allergies"}}
    token = await api.token(f"member:wx-attrs:{PHONE}")
    mine = (await api.post(ME, token=token)).json()["data"]["me"]["member"]["attributes"]
    assert mine[0] == {"value": ALLERGY, "masked": False, "attribute": {"code": "allergies"}}


async def test_another_stores_member_is_as_absent_as_a_random_id_and_a_clerk_may_not_fill(api, state):
    allergy, _skin, _height, member = await given_attributes_and_a_member_of_sh01(api)
    values = [{"attributeId": allergy["id"], "value": "乳糖"}]
    for who in ("sh02.manager", "sh01.clerk"):
        await api.token(who)
    before = await table_counts(state)
    elsewhere = await api.gql(SET, {"m": member, "v": values}, as_="sh02.manager")
    nowhere = await api.gql(SET, {"m": gid("Member", 999_999), "v": values}, as_="sh02.manager")
    assert elsewhere["data"]["setMemberAttributes"] == nowhere["data"]["setMemberAttributes"]
    assert elsewhere["data"]["setMemberAttributes"]["errors"] == [{"code": "NOT_FOUND", "field": "memberId"}]
    assert codes(await api.gql(SET, {"m": member, "v": values}, as_="sh01.clerk")) == {"FORBIDDEN"}
    reveal_elsewhere = await api.gql(REVEAL, {"m": member, "a": allergy["id"]}, as_="sh02.manager")
    assert reveal_elsewhere["data"]["revealMemberAttribute"]["errors"] == [{"code": "NOT_FOUND", "field": "memberId"}]
    assert await table_counts(state) == before


async def test_each_kind_checks_its_values_and_a_refused_batch_changes_nothing(api, state):
    allergy, skin, height, member = await given_attributes_and_a_member_of_sh01(api)
    birthday = await _define(api, code="anniversary", name="纪念日", kind="DATE")
    await api.token("sh01.manager")
    before = await table_counts(state)
    for attribute, bad in ((skin, "中性"), (height, "tall"), (height, "1e400"), (birthday, "2024-13-01")):
        values = [{"attributeId": allergy["id"], "value": "芒果"}, {"attributeId": attribute["id"], "value": bad}]
        body = await api.gql(SET, {"m": member, "v": values}, as_="sh01.manager")
        assert body["data"]["setMemberAttributes"]["errors"] == [
            {"code": "ATTRIBUTE_VALUE_INVALID", "field": "values.1.value"}
        ], bad
    assert await table_counts(state) == before
    good = [{"attributeId": birthday["id"], "value": " 2020-02-29 "}]
    filled = await api.gql(SET, {"m": member, "v": good}, as_="sh01.manager")
    assert filled["data"]["setMemberAttributes"]["member"]["attributes"][0]["value"] == "2020-02-29"


async def test_a_member_edits_only_what_hq_made_member_editable(api):
    allergy, skin, _height, _member = await given_attributes_and_a_member_of_sh01(api)
    token = await api.token(f"member:wx-attrs:{PHONE}")
    edited = (await api.post(SET_MINE, {"v": [{"attributeId": skin["id"], "value": "干性"}]}, token=token)).json()[
        "data"
    ]["setMyAttributes"]
    assert edited["member"]["attributes"] == [{"value": "干性", "masked": False, "attribute": {"code": "skin_type"}}]
    refused = (await api.post(SET_MINE, {"v": [{"attributeId": allergy["id"], "value": "无"}]}, token=token)).json()[
        "data"
    ]["setMyAttributes"]
    assert refused["errors"] == [{"code": "ATTRIBUTE_NOT_EDITABLE", "field": "values.0.attributeId"}]
    cleared = (await api.post(SET_MINE, {"v": [{"attributeId": skin["id"], "value": None}]}, token=token)).json()[
        "data"
    ]["setMyAttributes"]
    assert cleared["member"]["attributes"] == []


@pytest.mark.postgres_too
async def test_sensitive_values_are_ciphertext_and_never_in_the_audit_log_or_the_logs(api, state, chain, caplog):
    caplog.set_level(logging.DEBUG)
    allergy, _skin, _height, member = await given_attributes_and_a_member_of_sh01(api)
    await api.gql(SET, {"m": member, "v": [{"attributeId": allergy["id"], "value": ALLERGY}]}, as_="sh01.manager")
    revealed = await api.gql(REVEAL, {"m": member, "a": allergy["id"]}, as_="sh01.manager")
    assert revealed["data"]["revealMemberAttribute"] == {"errors": [], "value": ALLERGY}
    assert codes(await api.gql(REVEAL, {"m": member, "a": allergy["id"]}, as_="hq.analyst")) == {"FORBIDDEN"}
    async with state.sessionmaker() as session:
        row = await session.scalar(select(MemberAttributeValue))
        entries = (await session.scalars(select(AuditLog).order_by(AuditLog.id))).all()
    assert row.value_text is None and ALLERGY.encode() not in row.value_enc
    reveals = [(e.operation, e.outcome.value, e.staff_id) for e in entries if e.operation == "revealMemberAttribute"]
    assert ("revealMemberAttribute", "OK", chain.staff["sh01.manager"]) in reveals
    audited = "\n".join(f"{e.input} {e.target_ids} {e.error_code}" for e in entries)
    assert "setMemberAttributes" in {e.operation for e in entries}
    assert ALLERGY not in audited and "花生" not in audited
    logged = caplog.text + "\n".join(r.getMessage() + str(r.exc_info or "") for r in caplog.records)
    assert ALLERGY not in logged and "花生" not in logged


async def test_member_search_filters_by_attribute_values_sensitive_ones_by_exact_value(api):
    allergy, skin, height, member = await given_attributes_and_a_member_of_sh01(api)
    values = [
        {"attributeId": allergy["id"], "value": ALLERGY},
        {"attributeId": skin["id"], "value": "油性"},
        {"attributeId": height["id"], "value": "170"},
    ]
    await api.gql(SET, {"m": member, "v": values}, as_="sh01.manager")
    search = "query($f: MemberFilterInput) { members(first: 10, filter: $f) { edges { node { id } } } }"

    async def found(*filters, who="hq.analyst"):
        body = await api.gql(search, {"f": {"attributes": list(filters)}}, as_=who)
        return [e["node"]["id"] for e in body["data"]["members"]["edges"]]

    assert await found({"attributeId": allergy["id"], "equals": ALLERGY}) == [member]
    assert await found({"attributeId": allergy["id"], "equals": "花生"}) == []
    assert await found(
        {"attributeId": skin["id"], "equals": "油性"}, {"attributeId": height["id"], "atLeast": "160"}
    ) == [member]
    assert await found({"attributeId": height["id"], "atMost": "169.9"}) == []
    assert await found({"attributeId": skin["id"], "equals": "油性"}, who="sh02.manager") == []


async def test_the_export_holds_the_values_and_deleting_the_account_erases_them(api, state):
    allergy, skin, _height, member = await given_attributes_and_a_member_of_sh01(api)
    values = [{"attributeId": allergy["id"], "value": ALLERGY}, {"attributeId": skin["id"], "value": "混合"}]
    await api.gql(SET, {"m": member, "v": values}, as_="sh01.manager")
    token = await api.token(f"member:wx-attrs:{PHONE}")
    export = (await api.post("{ myDataExport }", token=token)).json()["data"]["myDataExport"]
    assert [(a["code"], a["value"]) for a in export["attributes"]] == [("allergies", ALLERGY), ("skin_type", "混合")]
    deleted = (await api.post("mutation { deleteMyAccount { errors { code } deleted } }", token=token)).json()
    assert deleted["data"]["deleteMyAccount"]["deleted"] is True
    async with state.sessionmaker() as session:
        assert await session.scalar(select(func.count(MemberAttributeValue.id))) == 0


@pytest.mark.parametrize("n", [10, 100])
async def test_a_member_list_showing_attributes_is_constant_in_statements(api, state, n):
    from services.platform.db import write_transaction

    allergy, skin, _height, _member = await given_attributes_and_a_member_of_sh01(api)
    async with write_transaction(state.sessionmaker) as session:
        for i in range(100):
            m = models.Member(name=f"m{i}", level_id=1)
            session.add(m)
            await session.flush()
            session.add(MemberAttributeValue(member_id=m.id, attribute_id=int(pk_of(skin["id"])), value_text="干性"))
            session.add(
                MemberAttributeValue(
                    member_id=m.id, attribute_id=int(pk_of(allergy["id"])), value_enc=b"x" * 40, value_mask="****"
                )
            )
    query = """query($n: Int!) { members(first: $n) { edges { node { name
      attributes { value masked attribute { name kind } } viewedCategories { views category { name } } } } } }"""
    token = await api.token("hq.analyst")
    with count_statements(state.engine) as counter:
        body = (await api.post(query, {"n": n}, token=token)).json()
    assert "errors" not in body, body
    edges = body["data"]["members"]["edges"]
    assert len(edges) == n and all(len(e["node"]["attributes"]) == 2 for e in edges)
    # viewer, page, attribute values, attribute definitions, viewed categories: the same for 10 and 100.
    assert counter.count == 5, counter.statements


async def test_a_retired_attribute_leaves_the_profile_and_the_stores_list_but_hq_still_sees_it(api):
    _allergy, skin, _height, member = await given_attributes_and_a_member_of_sh01(api)
    await api.gql(SET, {"m": member, "v": [{"attributeId": skin["id"], "value": "干性"}]}, as_="sh01.manager")
    retire = """mutation($id: ID!) { updateMemberAttribute(input: {id: $id, active: false}) {
      errors { code } attribute { active } } }"""
    assert (await api.gql(retire, {"id": skin["id"]}, as_="hq.operator"))["data"]["updateMemberAttribute"] == {
        "errors": [],
        "attribute": {"active": False},
    }
    listed = "{ memberAttributes { code } }"
    assert "skin_type" not in {
        a["code"] for a in (await api.gql(listed, as_="sh01.manager"))["data"]["memberAttributes"]
    }
    assert "skin_type" in {a["code"] for a in (await api.gql(listed, as_="hq.operator"))["data"]["memberAttributes"]}
    profile = "query($id: ID!) { node(id: $id) { ... on Member { attributes { attribute { code } } } } }"
    shown = (await api.gql(profile, {"id": member}, as_="sh01.manager"))["data"]["node"]["attributes"]
    assert shown == []
    refused = await api.gql(SET, {"m": member, "v": [{"attributeId": skin["id"], "value": "油性"}]}, as_="sh01.manager")
    assert refused["data"]["setMemberAttributes"]["errors"] == [{"code": "NOT_FOUND", "field": "values.0.attributeId"}]


async def test_hq_issues_a_coupon_to_the_members_with_an_attribute_value_once_per_key(api, state):
    from models import CouponKind, IdempotencyKey
    from tests.marketing_givens import template

    allergy, skin, _height, member = await given_attributes_and_a_member_of_sh01(api)
    values = [{"attributeId": allergy["id"], "value": ALLERGY}, {"attributeId": skin["id"], "value": "油性"}]
    await api.gql(SET, {"m": member, "v": values}, as_="sh01.manager")
    template_id = gid("CouponTemplate", await template(state, CouponKind.AMOUNT_OFF, amount_off=500))
    issue = """mutation($t: ID!, $k: String!, $a: [MemberAttributeFilterInput!]) { issueCoupons(input: {templateId: $t,
      idempotencyKey: $k, attributes: $a}) { errors { code field } issued } }"""
    oily = [{"attributeId": skin["id"], "equals": "油性"}, {"attributeId": allergy["id"], "equals": ALLERGY}]
    first = await api.gql(issue, {"t": template_id, "k": "oily-1", "a": oily}, as_="hq.operator")
    again = await api.gql(issue, {"t": template_id, "k": "oily-1", "a": oily}, as_="hq.operator")
    assert first["data"]["issueCoupons"] == again["data"]["issueCoupons"] == {"errors": [], "issued": 1}
    dry = [{"attributeId": skin["id"], "equals": "干性"}]
    none = await api.gql(issue, {"t": template_id, "k": "dry-1", "a": dry}, as_="hq.operator")
    assert none["data"]["issueCoupons"] == {"errors": [], "issued": 0}
    async with state.sessionmaker() as session:
        kept = " ".join(f"{r.fingerprint} {r.result}" for r in (await session.scalars(select(IdempotencyKey))).all())
    assert ALLERGY not in kept and "油性" not in kept

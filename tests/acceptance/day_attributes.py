"""The business day's member profile: attributes HQ declares, filled by the store and the member, masked to the clerk,
and the member's browsing history, all over the socket."""

from __future__ import annotations

import secrets
from typing import Any

DEFINE = (
    "mutation($i: DefineMemberAttributeInput!) { defineMemberAttribute(input: $i) { errors { code field } "
    "attribute { id code sensitivity } } }"
)
SET = (
    "mutation($m: ID!, $v: [AttributeValueInput!]!) { setMemberAttributes(input: {memberId: $m, values: $v}) "
    "{ errors { code field } member { attributes { value masked attribute { code } } } } }"
)
SET_MINE = (
    "mutation($v: [AttributeValueInput!]!) { setMyAttributes(input: {values: $v}) "
    "{ errors { code field } member { attributes { value masked attribute { code } } } } }"
)
MINE = "{ me { ... on MemberViewer { member { attributes { value masked attribute { code name } } } } } }"
SEEN_BY_STAFF = "query($id: ID!) { node(id: $id) { ... on Member { attributes { value masked attribute { code } } } } }"
IDENTIFY = (
    "mutation($c: String, $s: ID) { identifyMember(input: {code: $c, storeId: $s}) { errors { code } "
    "member { attributes { value masked attribute { code } } } } }"
)
RECORD = (
    "mutation($p: [ID!]!, $s: ID) { recordProductViews(input: {productIds: $p, storeId: $s}) "
    "{ errors { code field } recorded } }"
)
HISTORY = "{ myBrowsingHistory(first: 10) { edges { node { viewedAt product { id name } store { id } } } } }"
ALLERGY = "花生过敏"


def _values(attributes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {a["attribute"]["code"]: a for a in attributes}


async def profile_the_member(hq: Any, manager: Any, clerk: Any, member: Any, member_id: str, store_id: str) -> None:
    """HQ declares 过敏 (sensitive) and 肤质 (a choice the member may edit); the store's manager fills both for the
    day's member; the member reads them in full and changes their skin type; the clerk sees the allergy masked;
    the member looks at two products and sees them in their 浏览记录."""
    from tests.acceptance.test_business_day import ok

    suffix = secrets.token_hex(3)
    allergy = ok(
        (
            await hq(
                DEFINE, i={"code": f"allergies_{suffix}", "name": "过敏", "kind": "TEXT", "sensitivity": "SENSITIVE"}
            )
        )["defineMemberAttribute"]
    )["attribute"]
    skin_spec = {
        "code": f"skin_type_{suffix}",
        "name": "肤质",
        "kind": "CHOICE",
        "choices": ["干性", "油性", "混合"],
        "memberEditable": True,
    }
    skin = ok((await hq(DEFINE, i=skin_spec))["defineMemberAttribute"])["attribute"]
    values = [{"attributeId": allergy["id"], "value": ALLERGY}, {"attributeId": skin["id"], "value": "油性"}]
    filled = _values(ok((await manager(SET, m=member_id, v=values))["setMemberAttributes"])["member"]["attributes"])
    assert filled[allergy["code"]] == {"value": "花***", "masked": True, "attribute": {"code": allergy["code"]}}
    assert filled[skin["code"]]["value"] == "油性"

    mine = _values((await member(MINE))["me"]["member"]["attributes"])
    assert mine[allergy["code"]]["value"] == ALLERGY and mine[allergy["code"]]["masked"] is False
    changed = ok((await member(SET_MINE, v=[{"attributeId": skin["id"], "value": "混合"}]))["setMyAttributes"])
    assert _values(changed["member"]["attributes"])[skin["code"]]["value"] == "混合"
    refused = (await member(SET_MINE, v=[{"attributeId": allergy["id"], "value": "无"}]))["setMyAttributes"]
    assert refused["errors"] == [{"code": "ATTRIBUTE_NOT_EDITABLE", "field": "values.0.attributeId"}]

    # The clerk at the counter scans the member's code and sees the allergy masked, like a phone.
    code = (await member("{ myMemberCode { code } }"))["myMemberCode"]["code"]
    at_counter = ok((await clerk(IDENTIFY, c=code, s=store_id))["identifyMember"])["member"]
    assert _values(at_counter["attributes"])[allergy["code"]] == {
        "value": "花***",
        "masked": True,
        "attribute": {"code": allergy["code"]},
    }
    seen = _values((await manager(SEEN_BY_STAFF, id=member_id))["node"]["attributes"])
    assert seen[allergy["code"]]["masked"] is True and ALLERGY not in str(seen)

    # Two products looked at in the mini-program, kept once each per minute, newest first in the history.
    products = [
        e["node"]["id"] for e in (await hq("{ products(first: 2) { edges { node { id } } } }"))["products"]["edges"]
    ]
    assert len(products) == 2
    assert ok((await member(RECORD, p=products, s=store_id))["recordProductViews"])["recorded"] == 2
    assert ok((await member(RECORD, p=products, s=store_id))["recordProductViews"])["recorded"] == 0
    history = [e["node"] for e in (await member(HISTORY))["myBrowsingHistory"]["edges"]]
    assert sorted(h["product"]["id"] for h in history) == sorted(products)
    assert {h["store"]["id"] for h in history} == {store_id}

"""The access matrix rows for members and loyalty."""

from __future__ import annotations

from typing import Any

from services.members import accounts as members
from services.members import admin as member_admin
from services.platform.db import write_transaction
from tests.conftest import gid
from tests.factories import HQ, make_library


async def given_member(chain, state) -> dict[str, Any]:
    """A member registered at SH01, a tag, a plan and a SKU."""
    async with write_transaction(state.sessionmaker) as session:
        member = await members.register_at_store(
            session, state.cipher, HQ, phone="13512345678", name="张三", store_id=chain.stores["SH01"]
        )
        tag = await member_admin.create_tag(session, name="常客")
    library = await make_library(state, products=1, skus_per_product=1)
    code, _ = state.member_codes.issue(member.id)
    return {
        "member": gid("Member", member.id),
        "tag": gid("MemberTag", tag.id),
        "code": code,
        "store": gid("Store", chain.stores["SH01"]),
        "level": gid("MemberLevel", 2),
        "plan": gid("TopUpPlan", 2),
        "sku": gid("Sku", library.sku_ids[0]),
    }


def _vars(*keys: str):
    async def build(chain, state):
        given = await given_member(chain, state)
        return {k: given[k] for k in keys}

    return build


def member_ops(Op, only, ALL, STAFF):
    READ = ("store_manager", "hq_analyst", "hq_operator", "hq_admin")
    LOOKUP = ("clerk", "store_manager", "hq_operator", "hq_admin")
    MANAGE = ("hq_operator", "hq_admin")
    MEMBER = ("member",)
    return [
        Op("members", "{ members(first: 5) { edges { node { id phone } } } }", only(*READ)),
        Op("memberLevels", "{ memberLevels { name discountPercent } }", ALL),
        Op("topUpPlans", "{ topUpPlans { name payAmount bonusAmount } }", ALL),
        Op("publicChainSettings", "{ publicChainSettings { pointsPerYuan freeDeliveryOverFen } }", ALL),
        Op("memberTags", "{ memberTags { name } }", only(*READ)),
        Op("myDataExport", "{ myDataExport }", only(*MEMBER)),
        Op("myMemberCode", "{ myMemberCode { code expiresAt } }", only(*MEMBER)),
        Op(
            "identifyMember",
            "mutation($code: String!, $store: ID!) { identifyMember(input: {code: $code, storeId: $store}) { errors { code } } }",
            only(*LOOKUP),
            _vars("code", "store"),
            payload="identifyMember",
        ),
        Op(
            "registerMember",
            'mutation($store: ID!) { registerMember(input: {phone: "13698765432", storeId: $store}) { errors { code } } }',
            only(*LOOKUP),
            _vars("store"),
            payload="registerMember",
        ),
        Op(
            "updateMyProfile",
            'mutation { updateMyProfile(input: {name: "小李"}) { errors { code } } }',
            only(*MEMBER),
            payload="updateMyProfile",
        ),
        Op(
            "revealMemberPhone",
            "mutation($member: ID!) { revealMemberPhone(input: {memberId: $member}) { errors { code } phone } }",
            only("store_manager", "hq_admin"),
            _vars("member"),
            payload="revealMemberPhone",
        ),
        Op(
            "setMemberLevel",
            "mutation($member: ID!, $level: ID!) { setMemberLevel(input: {memberId: $member, levelId: $level}) { errors { code } } }",
            only(*MANAGE),
            _vars("member", "level"),
            payload="setMemberLevel",
        ),
        Op(
            "createMemberLevel",
            'mutation { createMemberLevel(input: {name: "黑卡", spendThreshold: 9000000, discountPercent: 85}) { errors { code } } }',
            only(*MANAGE),
            payload="createMemberLevel",
        ),
        Op(
            "updateMemberLevel",
            "mutation($level: ID!) { updateMemberLevel(input: {id: $level, discountPercent: 97}) { errors { code } } }",
            only(*MANAGE),
            _vars("level"),
            payload="updateMemberLevel",
        ),
        Op(
            "setLevelPrice",
            "mutation($level: ID!, $sku: ID!) { setLevelPrice(input: {levelId: $level, skuId: $sku, price: 900}) { errors { code } } }",
            only(*MANAGE),
            _vars("level", "sku"),
            payload="setLevelPrice",
        ),
        Op(
            "createTopUpPlan",
            'mutation { createTopUpPlan(input: {name: "充300送20", payAmount: 30000, bonusAmount: 2000}) { errors { code } } }',
            only(*MANAGE),
            payload="createTopUpPlan",
        ),
        Op(
            "topUpStoredValue",
            "mutation($member: ID!, $plan: ID!, $store: ID!) { topUpStoredValue(input: {memberId: $member,"
            ' planId: $plan, storeId: $store, idempotencyKey: "k-1", tenders: [{method: CASH, amount: 50000}]}) { errors { code } } }',
            only("clerk", "store_manager", "hq_admin"),
            _vars("member", "plan", "store"),
            payload="topUpStoredValue",
        ),
        Op(
            "adjustPoints",
            'mutation($idempotencyKey: String!, $member: ID!) { adjustPoints(input: {idempotencyKey: $idempotencyKey, memberId: $member, points: 100, note: "补偿"}) { errors { code } } }',
            only(*MANAGE),
            _vars("member"),
            payload="adjustPoints",
        ),
        Op(
            "createMemberTag",
            'mutation { createMemberTag(input: {name: "咖啡控"}) { errors { code } } }',
            only(*MANAGE),
            payload="createMemberTag",
        ),
        Op(
            "tagMembers",
            "mutation($tag: ID!, $member: ID!) { tagMembers(input: {tagId: $tag, memberIds: [$member]}) { errors { code } changed } }",
            only(*MANAGE),
            _vars("tag", "member"),
            payload="tagMembers",
        ),
        Op(
            "deleteMyAccount",
            "mutation { deleteMyAccount { errors { code } deleted } }",
            only(*MEMBER),
            payload="deleteMyAccount",
        ),
    ]

"""The access matrix rows for member attributes and browsing history."""

from __future__ import annotations

from typing import Any

from models import AttributeKind, AttributeSensitivity
from services.members import attributes
from services.platform.db import write_transaction
from tests.access.matrix_members import given_member
from tests.conftest import gid
from tests.factories import HQ


async def given_attributes(chain, state) -> dict[str, Any]:
    """A member of SH01 (see matrix_members), a sensitive attribute and a member-editable choice, a product."""
    given = await given_member(chain, state)
    async with write_transaction(state.sessionmaker) as session:
        allergy = await attributes.define(
            session,
            HQ,
            attributes.AttributeSpec("allergies", "过敏", AttributeKind.TEXT, AttributeSensitivity.SENSITIVE),
        )
        skin = await attributes.define(
            session,
            HQ,
            attributes.AttributeSpec(
                "skin_type", "肤质", AttributeKind.CHOICE, AttributeSensitivity.PERSONAL, ("干性", "油性"), True
            ),
        )
    from sqlalchemy import select

    from models import Product

    async with state.sessionmaker() as session:
        product = await session.scalar(select(Product.id).order_by(Product.id).limit(1))
    return {
        "member": given["member"],
        "allergy": gid("MemberAttribute", allergy.id),
        "skin": gid("MemberAttribute", skin.id),
        "product": gid("Product", product),
    }


def _vars(*keys: str):
    async def build(chain, state):
        given = await given_attributes(chain, state)
        return {k: given[k] for k in keys}

    return build


def profile_ops(Op, only, ALL, STAFF):
    MANAGE = ("hq_operator", "hq_admin")
    FILL = ("store_manager", "hq_operator", "hq_admin")
    SIGNED_IN = ("member", *STAFF)
    return [
        Op("memberAttributes", "{ memberAttributes { code kind sensitivity } }", only(*SIGNED_IN)),
        Op(
            "myBrowsingHistory",
            "{ myBrowsingHistory(first: 5) { edges { node { viewedAt product { name } } } } }",
            only("member"),
        ),
        Op(
            "defineMemberAttribute",
            'mutation { defineMemberAttribute(input: {code: "height", name: "身高", kind: NUMBER}) { errors { code } } }',
            only(*MANAGE),
            payload="defineMemberAttribute",
        ),
        Op(
            "updateMemberAttribute",
            "mutation($skin: ID!) { updateMemberAttribute(input: {id: $skin, memberEditable: false}) { errors { code } } }",
            only(*MANAGE),
            _vars("skin"),
            payload="updateMemberAttribute",
        ),
        Op(
            "setMemberAttributes",
            "mutation($member: ID!, $allergy: ID!) { setMemberAttributes(input: {memberId: $member,"
            ' values: [{attributeId: $allergy, value: "花生"}]}) { errors { code } } }',
            only(*FILL),
            _vars("member", "allergy"),
            payload="setMemberAttributes",
        ),
        Op(
            "setMyAttributes",
            'mutation($skin: ID!) { setMyAttributes(input: {values: [{attributeId: $skin, value: "干性"}]}) { errors { code } } }',
            only("member"),
            _vars("skin"),
            payload="setMyAttributes",
        ),
        Op(
            "revealMemberAttribute",
            "mutation($member: ID!, $allergy: ID!) { revealMemberAttribute(input: {memberId: $member,"
            " attributeId: $allergy}) { errors { code } value } }",
            only("store_manager", "hq_admin"),
            _vars("member", "allergy"),
            payload="revealMemberAttribute",
        ),
        Op(
            "recordProductViews",
            "mutation($product: ID!) { recordProductViews(input: {productIds: [$product]}) { errors { code } recorded } }",
            only("member"),
            _vars("product"),
            payload="recordProductViews",
        ),
        Op(
            "clearMyBrowsingHistory",
            "mutation { clearMyBrowsingHistory { errors { code } cleared } }",
            only("member"),
            payload="clearMyBrowsingHistory",
        ),
    ]

"""The access matrix rows for cards (卡项)."""

from __future__ import annotations

from typing import Any

from models import CardKind
from services.cards import ledger, products
from services.platform.db import write_transaction
from tests.access.matrix_members import given_member
from tests.conftest import gid, pk
from tests.factories import HQ


async def given_cards(chain, state) -> dict[str, Any]:
    """The member of given_member (at SH01) with a count card issued by SH01 and a shared gift card."""
    base = await given_member(chain, state)
    async with write_transaction(state.sessionmaker) as session:
        count = await products.create(
            session,
            HQ,
            products.ProductSpec(
                name="十杯", kind=CardKind.COUNT, price=10_000, uses=10, sku_ids=[pk(base["sku"])], validity_days=30
            ),
        )
        gift = await products.create(
            session,
            HQ,
            products.ProductSpec(name="礼品卡", kind=CardKind.GIFT, price=5000, face_value=5000, validity_days=30),
        )
        member_id, sh01 = pk(base["member"]), chain.stores["SH01"]
        card = await ledger.issue(session, count, member_id=member_id, store_id=sh01, ref_type="test", ref_id=0)
        present = await ledger.issue(session, gift, member_id=member_id, store_id=sh01, ref_type="test", ref_id=0)
        present.share_code = "MATRIXGIFT01"
    return {
        **base,
        "product": gid("CardProduct", count.id),
        "card": gid("MemberCard", card.id),
        "gift": gid("MemberCard", present.id),
    }


def _vars(*keys: str):
    async def build(chain, state):
        given = await given_cards(chain, state)
        return {k: given[k] for k in keys}

    return build


def card_ops(Op, only, ALL, STAFF):
    LOOKUP = ("clerk", "store_manager", "hq_operator", "hq_admin")
    REPORTS = ("store_manager", "hq_analyst", "hq_operator", "hq_admin")
    return [
        Op("cardProducts", "{ cardProducts { name kind price } }", ALL),
        Op("myCards", "{ myCards { edges { node { unitsLeft history { kind } } } } }", only("member")),
        Op(
            "memberCards",
            "query($member: ID!) { memberCards(memberId: $member) { unitsLeft product { name } } }",
            only(*LOOKUP),
            _vars("member"),
        ),
        Op(
            "cardUses",
            "query($store: ID!) { cardUses(storeId: $store) { edges { node { units } } } }",
            only(*STAFF),
            _vars("store"),
        ),
        Op("cardReport", "{ cardReport { soldValue outstandingValue clearing } }", only(*REPORTS)),
        Op(
            "createCardProduct",
            'mutation { createCardProduct(input: {name: "礼品卡", kind: GIFT, price: 10000, faceValue: 10000,'
            " validityDays: 365}) { errors { code } } }",
            only("hq_operator", "hq_admin"),
            payload="createCardProduct",
        ),
        Op(
            "sellCard",
            "mutation($member: ID!, $product: ID!, $store: ID!) { sellCard(input: {memberId: $member, productId:"
            ' $product, storeId: $store, idempotencyKey: "c-1", tenders: [{method: CASH, amount: 10000}]})'
            " { errors { code } } }",
            only("clerk", "store_manager", "hq_admin"),
            _vars("member", "product", "store"),
            payload="sellCard",
        ),
        Op(
            "buyCard",
            "mutation($product: ID!, $store: ID!) { buyCard(input: {productId: $product, storeId: $store,"
            ' idempotencyKey: "b-1"}) { errors { code } sale { status } } }',
            only("member"),
            _vars("product", "store"),
            payload="buyCard",
        ),
        Op(
            "refundCard",
            "mutation($card: ID!, $store: ID!) { refundCard(input: {cardId: $card, storeId: $store, method: CASH,"
            ' idempotencyKey: "r-1"}) { errors { code message field } amount } }',
            only("store_manager", "hq_admin"),
            _vars("card", "store"),
            payload="refundCard",
        ),
        Op(
            "shareGiftCard",
            "mutation($gift: ID!) { shareGiftCard(input: {cardId: $gift}) { errors { code } } }",
            only("member"),
            _vars("gift"),
        ),
        Op(
            "redeemGiftCard",
            'mutation { redeemGiftCard(input: {code: "MATRIXGIFT01", idempotencyKey: "g-1"}) { errors { code } } }',
            only("member"),
            _vars("gift"),
            payload="redeemGiftCard",
        ),
    ]

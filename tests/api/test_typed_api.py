"""Typed, refetchable shapes: settlement with global ids, Node for marketing objects, typed order events."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from models import Member, PaymentMethod
from models import MemberCoupon as MemberCouponModel
from services.members import stored_value
from services.members.accounts import relate
from services.orders import pos
from services.platform.db import write_transaction
from services.pricing.engine import CartLine
from tests.conftest import gid, pk
from tests.factories import HQ, list_in_store, make_library

NOON = datetime(2026, 11, 21, 4, 0, tzinfo=UTC)  # noon in Shanghai
TYPED_SETTLEMENT = """query($s: ID!, $d: Date!) { settlement(storeId: $s, date: $d) { businessDay closed
  store { id code } takings { method amount } refunds { method amount } discounts deliveryFees
  storedValueSold { principal bonus total } pointsValueUsed net
  storedValueByIssuer { issuer { id code } principal bonus total } } }"""


async def _day_of_sales(state, chain) -> dict[str, int]:
    library = await make_library(state, products=1, skus_per_product=1, price=1000)
    sku = library.sku_ids[0]
    sh01, hz01 = chain.stores["SH01"], chain.stores["HZ01"]
    await list_in_store(state, sh01, [sku], on_hand=50)
    async with write_transaction(state.sessionmaker) as session:
        member = Member(name="跨店会员", level_id=1)
        session.add(member)
        await session.flush()
        await relate(session, member.id, sh01)
        await stored_value.top_up(
            session, member.id, principal=5000, bonus=500, store_id=hz01, ref_type="seed", ref_id=None
        )
        sales = [
            ("a", 2, [pos.Tender(PaymentMethod.CASH, 2000)], None),
            ("b", 3, [pos.Tender(PaymentMethod.CARD, 1000), pos.Tender(PaymentMethod.STORED_VALUE, 2000)], member.id),
        ]
        orders = {}
        for key, qty, tenders, member_id in sales:
            order = await pos.checkout(
                session, HQ, pos.Checkout(sh01, key, [CartLine(sku, qty)], tenders, member_id), now=NOON
            )
            orders[key] = order.id
    return orders


@pytest.mark.postgres_too
async def test_settlement_is_typed_with_global_store_ids_open_and_closed(api, state, chain):
    await _day_of_sales(state, chain)
    sh01, hz01 = chain.stores["SH01"], chain.stores["HZ01"]
    variables = {"s": gid("Store", sh01), "d": date(2026, 11, 21).isoformat()}
    body = await api.gql(TYPED_SETTLEMENT, variables, as_="sh01.manager")
    assert "errors" not in body, body
    day = body["data"]["settlement"]
    takings = {t["method"]: t["amount"] for t in day["takings"]}
    assert [t["method"] for t in day["takings"]] == [m.value for m in PaymentMethod]
    assert takings == {"WECHAT_PAY": 0, "ALIPAY": 0, "CARD": 1000, "CASH": 2000, "STORED_VALUE": 2000, "POINTS": 0}
    assert all(r["amount"] == 0 for r in day["refunds"])
    assert day["store"] == {"id": gid("Store", sh01), "code": "SH01"}
    assert day["storedValueByIssuer"] == [
        {"issuer": {"id": gid("Store", hz01), "code": "HZ01"}, "principal": 2000, "bonus": 0, "total": 2000}
    ]
    assert day["net"] == 5000 and day["closed"] is False and day["storedValueSold"]["total"] == 0

    closed = await api.gql(
        "mutation($s: ID!, $d: Date!) { closeSettlement(input: {storeId: $s, date: $d}) { errors { code } settlement {"
        " closed store { id } takings { method amount } storedValueByIssuer { issuer { id } total } net } } }",
        variables,
        as_="hq.admin",
    )
    frozen = closed["data"]["closeSettlement"]["settlement"]
    assert (
        frozen["closed"] is True and frozen["store"]["id"] == day["store"]["id"] and frozen["takings"] == day["takings"]
    )
    assert frozen["storedValueByIssuer"] == [{"issuer": {"id": gid("Store", hz01)}, "total": 2000}]
    again = (await api.gql(TYPED_SETTLEMENT, variables, as_="hq.analyst"))["data"]["settlement"]
    assert again == {**day, "closed": True}


async def test_a_refund_says_what_went_back_to_each_tender_as_a_typed_list(api, state, chain):
    orders = await _day_of_sales(state, chain)
    doc = """mutation($id: ID!, $idempotencyKey: String!) { refundOrder(input: {id: $id,
      idempotencyKey: $idempotencyKey}) { errors { code } refund { amount tenders { method amount } } } }"""
    body = await api.gql(doc, {"id": gid("Order", orders["b"])}, as_="sh01.manager")
    refund = body["data"]["refundOrder"]["refund"]
    assert refund == {
        "amount": 3000,
        "tenders": [{"method": "CARD", "amount": 1000}, {"method": "STORED_VALUE", "amount": 2000}],
    }


NODE = """query($id: ID!) { node(id: $id) { id __typename
  ... on Campaign { name } ... on CouponTemplate { amountOff } ... on MemberCoupon { status template { id } }
  ... on PointsMallItem { name } } }"""


async def test_campaigns_coupon_templates_and_member_coupons_refetch_by_node_within_scope(api, state, chain):
    from sqlalchemy import update

    from models import Campaign, CampaignKind, CouponKind, CouponTemplate, PointsMallItem
    from tests.marketing_givens import campaign, give_coupon, given_menu

    menu = await given_menu(state, chain)
    hq_campaign = await campaign(state, CampaignKind.FULL_REDUCTION, tiers=[(10000, 1000)])
    referral = await campaign(state, CampaignKind.REFERRAL, reward_points=100)
    local = await campaign(state, CampaignKind.FULL_REDUCTION, tiers=[(10000, 500)], name="SH01 only")
    alice = await api.member_sign_in("node-alice:13800138333")
    coupon = await give_coupon(state, pk(alice["member"]["id"]), CouponKind.AMOUNT_OFF, amount_off=300)
    async with write_transaction(state.sessionmaker) as session:
        await session.execute(update(Campaign).where(Campaign.id == local).values(owner_store_id=menu.store))
        held = await session.get(MemberCouponModel, coupon)
        assert held is not None
        template_id = held.template_id
        mall = PointsMallItem(name="杯子", points_cost=100, stock=5, coupon_template_id=template_id)
        retired = PointsMallItem(name="旧杯子", points_cost=100, stock=5, coupon_template_id=template_id, active=False)
        session.add_all([mall, retired])
        await session.flush()
        mall_id, retired_id = mall.id, retired.id
        local_template = CouponTemplate(
            **{
                c: getattr(await session.get(CouponTemplate, template_id), c)
                for c in (
                    "name",
                    "kind",
                    "threshold",
                    "amount_off",
                    "percent",
                    "valid_from",
                    "valid_until",
                    "per_member_limit",
                )
            },
            owner_store_id=menu.store,
        )
        session.add(local_template)
        await session.flush()
        local_template_id = local_template.id
    alice_token = alice["tokens"]["accessToken"]
    bob_token = (await api.member_sign_in("node-bob:13800138444"))["tokens"]["accessToken"]

    async def node(type_name: str, pk_: int, *, token: str | None = None, as_: str | None = None):
        variables = {"id": gid(type_name, pk_)}
        body = (
            (await api.post(NODE, variables, token=token)).json()
            if as_ is None
            else await api.gql(NODE, variables, as_=as_)
        )
        assert "errors" not in body, body
        return body["data"]["node"]

    assert await node("Campaign", hq_campaign) == {
        "id": gid("Campaign", hq_campaign),
        "__typename": "Campaign",
        "name": "full_reduction",
    }
    assert await node("Campaign", referral) is None  # anonymous: not a campaign the mini-program shows
    assert (await node("Campaign", referral, as_="hq.operator"))["__typename"] == "Campaign"
    assert (await node("Campaign", local, as_="sh01.manager"))["name"] == "SH01 only"
    assert await node("Campaign", local, as_="sh02.manager") is None
    assert (await node("CouponTemplate", template_id, token=bob_token))["amountOff"] == 300
    assert (await node("CouponTemplate", local_template_id, as_="sh01.manager"))["amountOff"] == 300
    assert await node("CouponTemplate", local_template_id, as_="sh02.manager") is None
    mine = await node("MemberCoupon", coupon, token=alice_token)
    assert mine == {
        "id": gid("MemberCoupon", coupon),
        "__typename": "MemberCoupon",
        "status": "AVAILABLE",
        "template": {"id": gid("CouponTemplate", template_id)},
    }
    assert await node("MemberCoupon", coupon, token=bob_token) is None
    assert (await node("MemberCoupon", coupon, as_="hq.admin"))["status"] == "AVAILABLE"
    assert await node("MemberCoupon", coupon, as_="sh02.manager") is None  # alice is not known at SH02
    assert (await node("PointsMallItem", mall_id))["name"] == "杯子"
    assert await node("PointsMallItem", retired_id) is None
    assert await node("MemberCoupon", 10**9, as_="hq.admin") is None


PUBLIC_RULES = """{ publicChainSettings { pointsPerYuan pointValueFen maxPointsSharePct birthdayMultiplierPct
  deliveryFeeFen freeDeliveryOverFen deliveryRadiusKm unpaidOrderMinutes } }"""


async def test_members_and_visitors_read_the_public_rules_and_staff_keep_the_full_settings(api, state, chain):
    changed = await api.gql(
        "mutation { updateChainSettings(input: {pointsPerYuan: 2, freeDeliveryOverFen: 8800, deliveryFeeFen: 600}) {"
        " errors { code } } }",
        as_="hq.admin",
    )
    assert changed["data"]["updateChainSettings"]["errors"] == []
    anonymous = (await api.post(PUBLIC_RULES)).json()
    assert "errors" not in anonymous, anonymous
    rules = anonymous["data"]["publicChainSettings"]
    assert rules["pointsPerYuan"] == 2 and rules["freeDeliveryOverFen"] == 8800 and rules["deliveryFeeFen"] == 600
    assert set(rules) == {
        "pointsPerYuan",
        "pointValueFen",
        "maxPointsSharePct",
        "birthdayMultiplierPct",
        "deliveryFeeFen",
        "freeDeliveryOverFen",
        "deliveryRadiusKm",
        "unpaidOrderMinutes",
    }
    member = await api.gql(PUBLIC_RULES, as_="member:rules-reader")
    assert member["data"]["publicChainSettings"] == rules
    staff_only = "{ chainSettings { priceBandPercent pointsPerYuan storeCampaignKinds } }"
    refused = await api.gql(staff_only, as_="member:rules-reader")
    assert refused["errors"][0]["extensions"]["code"] in {"FORBIDDEN", "UNAUTHENTICATED"}
    assert (await api.gql(staff_only, as_="sh01.clerk"))["data"]["chainSettings"]["pointsPerYuan"] == 2

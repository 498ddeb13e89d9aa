"""Marketing under load and by role: flash sales, group buys, coupons, batched issue, store policy, effect, referral, mall."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select

from models import (
    CampaignItem,
    CampaignKind,
    CouponKind,
    CouponTemplate,
    CouponTrigger,
    GroupBuy,
    GroupBuyStatus,
    Member,
    MemberCoupon,
    MemberCouponStatus,
    Order,
    OrderStatus,
    Payment,
    PaymentStatus,
    StockLevel,
    utcnow,
)
from services.access.identity import ExternalIdentity
from services.access.scope import Viewer, ViewerKind
from services.marketing import coupons, group_buys
from services.marketing.promotions import ItemSpec
from services.members import accounts as members
from services.orders import lifecycle as orders
from services.platform import jobs
from services.platform.db import write_transaction
from services.platform.errors import DomainError
from services.pricing.engine import CartLine
from tests.conftest import count_statements, gid
from tests.marketing_givens import campaign, give_coupon, given_menu, template

K = CampaignKind


def _member(member_id: int) -> Viewer:
    return Viewer(kind=ViewerKind.MEMBER, member_id=member_id)


async def _members(state, n: int, **values) -> list[int]:
    async with write_transaction(state.sessionmaker) as session:
        rows = (
            (
                await session.execute(
                    insert(Member).returning(Member.id),
                    [
                        {
                            "name": f"m{i}",
                            "points_balance": 0,
                            "balance_principal": 0,
                            "balance_bonus": 0,
                            "total_spend": 0,
                            "visit_count": 0,
                            "joined_at": utcnow(),
                            **values,
                        }
                        for i in range(n)
                    ],
                )
            )
            .scalars()
            .all()
        )
    return list(rows)


async def _place(state, member_id: int, store: int, cart: dict[int, int], key: str, **extra) -> Order:
    async with write_transaction(state.sessionmaker) as session:
        placed = await orders.place_order(
            session,
            _member(member_id),
            state.payment_providers["sandbox"],
            orders.PlaceOrder(store, [CartLine(k, v) for k, v in cart.items()], key, **extra),
        )
        return placed.order


async def _pay(api, state, order: Order) -> None:
    headers, body = state.payment_providers["sandbox"].notification(
        provider_ref=f"ORD{order.id:012d}", amount=order.payable
    )
    assert (await api.http.post("/payments/notify/sandbox", content=body, headers=headers)).json() == {
        "code": "SUCCESS"
    }


@pytest.mark.postgres_too
async def test_two_hundred_buyers_for_a_flash_sale_of_twenty_limit_one_each(state, chain):
    menu = await given_menu(state, chain, on_hand=200)
    flash = await campaign(state, K.FLASH_SALE, items=[ItemSpec(menu.a, price=990, quota=20, per_member_limit=1)])
    buyers = await _members(state, 100)

    async def attempt(i: int) -> int | None:
        try:  # every member tries twice, at once
            order = await _place(state, buyers[i % 100], menu.store, {menu.a: 1}, f"flash-{i}", flash_sale_id=flash)
            return order.member_id
        except DomainError as exc:
            assert exc.code.value in {"FLASH_SALE_SOLD_OUT", "FLASH_SALE_LIMIT_REACHED"}
            return None

    results = [r for r in await asyncio.gather(*(attempt(i) for i in range(200))) if r is not None]
    async with state.sessionmaker() as session:
        item = await session.scalar(select(CampaignItem).where(CampaignItem.sku_id == menu.a))
        placed = (await session.execute(select(Order.member_id, Order.payable))).all()
        level = await session.scalar(
            select(StockLevel).where(StockLevel.sku_id == menu.a, StockLevel.store_id == menu.store)
        )
    assert len(results) == 20 and len(set(results)) == 20 and item.sold == 20
    assert len(placed) == 20 and {p.payable for p in placed} == {990} and level.reserved == 20


async def test_an_unpaid_flash_order_gives_its_place_back(state, chain):
    menu = await given_menu(state, chain)
    await campaign(state, K.FLASH_SALE, items=[ItemSpec(menu.a, price=990, quota=1, per_member_limit=1)])
    first = await _place(state, menu.plain, menu.store, {menu.a: 1}, "f-1")
    async with write_transaction(state.sessionmaker) as session:
        await orders.cancel_by_member(session, _member(menu.plain), first.id)
    again = await _place(state, menu.plain, menu.store, {menu.a: 1}, "f-2")
    assert again.payable == 990


@pytest.mark.postgres_too
async def test_a_coupon_cannot_be_used_twice_even_by_two_orders_at_once(state, chain):
    menu = await given_menu(state, chain)
    coupon = await give_coupon(state, menu.plain, CouponKind.AMOUNT_OFF, amount_off=500)

    async def attempt(i: int) -> str:
        try:
            await _place(state, menu.plain, menu.store, {menu.b: 1}, f"c-{i}", coupon_id=coupon)
            return "ok"
        except DomainError as exc:
            return exc.code.value

    results = await asyncio.gather(*(attempt(i) for i in range(6)))
    assert results.count("ok") == 1 and set(results) <= {"ok", "COUPON_USED"}
    async with state.sessionmaker() as session:
        used = await session.get(MemberCoupon, coupon)
        count = await session.scalar(select(func.count()).select_from(Order))
    assert used.status is MemberCouponStatus.USED and count == 1


@pytest.mark.postgres_too
async def test_issuing_to_a_segment_of_ten_thousand_is_a_bounded_number_of_statements(state, chain):
    from tests.factories import HQ

    await _members(state, 10_000, segment="VIP")
    await _members(state, 50, segment="LOST")
    template_id = await template(
        state, CouponKind.THRESHOLD_OFF, threshold=10000, amount_off=1000, total_quantity=20_000
    )
    async with write_transaction(state.sessionmaker) as session:
        with count_statements(state.engine) as counter:
            issued = await coupons.issue(session, HQ, template_id, coupons.Audience(segment="VIP"))
    assert issued == 10_000 and counter.count <= 8, counter.count
    async with write_transaction(state.sessionmaker) as session:
        again = await coupons.issue(session, HQ, template_id, coupons.Audience(segment="VIP"))  # limit 1 each
        held = await session.scalar(select(func.count()).select_from(MemberCoupon))
        t = await session.get(CouponTemplate, template_id)
    assert again == 0 and held == 10_000 and t is not None and t.issued == 10_000
    small = await template(state, CouponKind.AMOUNT_OFF, amount_off=100, total_quantity=10)
    async with write_transaction(state.sessionmaker) as session:
        try:
            await coupons.issue(session, HQ, small, coupons.Audience(segment="LOST"))
            raise AssertionError("50 members cannot get 10 coupons")
        except DomainError as exc:
            assert exc.code.value == "COUPONS_EXHAUSTED"


async def test_members_claim_up_to_their_limit_and_packs_arrive_on_joining_and_first_visits(api, state, chain):
    menu = await given_menu(state, chain)
    claimable = await template(state, CouponKind.AMOUNT_OFF, amount_off=200, per_member_limit=2)
    await template(state, CouponKind.AMOUNT_OFF, amount_off=300, trigger=CouponTrigger.NEW_MEMBER, claimable=False)
    await template(
        state,
        CouponKind.AMOUNT_OFF,
        amount_off=400,
        trigger=CouponTrigger.NEW_VISITOR,
        claimable=False,
        store_ids=[menu.other_store],
    )
    claim = "mutation($idempotencyKey: String!, $t: ID!) { claimCoupon(input: {idempotencyKey: $idempotencyKey, templateId: $t}) { errors { code } coupon { status } } }"
    results = [await api.gql(claim, {"t": gid("CouponTemplate", claimable)}, as_="member:claimer") for _ in range(3)]
    assert [r["data"]["claimCoupon"]["errors"] for r in results] == [[], [], [{"code": "COUPON_LIMIT_REACHED"}]]
    wallet = await api.gql("{ myCoupons { edges { node { source template { amountOff } } } } }", as_="member:claimer")
    got = sorted(
        (e["node"]["source"], e["node"]["template"]["amountOff"]) for e in wallet["data"]["myCoupons"]["edges"]
    )
    assert got == [("AUTO", 300), ("CLAIM", 200), ("CLAIM", 200)]
    async with write_transaction(state.sessionmaker) as session:
        member, _ = await members.member_for_identity(
            session, state.cipher, ExternalIdentity("local", "visitor"), store_id=None
        )
        await members.relate(session, member.id, menu.store)  # this store has no first-visit pack
        await members.relate(session, member.id, menu.other_store)
        await members.relate(session, member.id, menu.other_store)  # only the first visit counts
        amounts = sorted(
            (
                await session.scalars(
                    select(CouponTemplate.amount_off)
                    .join(MemberCoupon, MemberCoupon.template_id == CouponTemplate.id)
                    .where(MemberCoupon.member_id == member.id)
                )
            ).all()
        )
    assert amounts == [300, 400]


async def test_birthday_gifts_arrive_once_a_year_from_the_daily_job(state, chain):
    from sqlalchemy import update

    from services.platform.config import CHAIN_TZ

    now = utcnow()
    today = now.astimezone(CHAIN_TZ).date()
    [birthday, other] = await _members(state, 2)
    async with write_transaction(state.sessionmaker) as session:  # 1992 is a leap year: 29 February works too
        await session.execute(update(Member).where(Member.id == birthday).values(birthday=today.replace(year=1992)))
        await session.execute(
            update(Member).where(Member.id == other).values(birthday=(today - timedelta(days=40)).replace(year=1992))
        )
    await template(state, CouponKind.AMOUNT_OFF, amount_off=1000, trigger=CouponTrigger.BIRTHDAY, claimable=False)
    for _ in range(2):
        async with write_transaction(state.sessionmaker) as session:
            await coupons.grant_birthdays(session, now)
    async with state.sessionmaker() as session:
        holders = (await session.scalars(select(MemberCoupon.member_id))).all()
    assert holders == [birthday]


async def _group_campaign(state, menu, size: int) -> int:
    return await campaign(state, K.GROUP_BUY, items=[ItemSpec(menu.a, price=6000)], group_size=size, group_minutes=30)


async def test_a_group_that_fills_completes(api, state, chain):
    menu = await given_menu(state, chain)
    campaign_id = await _group_campaign(state, menu, 3)
    people = await _members(state, 4)
    provider = state.payment_providers["sandbox"]
    async with write_transaction(state.sessionmaker) as session:
        opened = await group_buys.open_group(
            session,
            _member(people[0]),
            provider,
            campaign_id=campaign_id,
            store_id=menu.store,
            sku_id=menu.a,
            idempotency_key="g-0",
        )
    code = opened.group.share_code
    assert opened.placed.order.payable == 6000 and opened.placed.order.group_buy_id == opened.group.id
    joined = []
    for i in (1, 2):
        async with write_transaction(state.sessionmaker) as session:
            joined.append(
                await group_buys.join_group(
                    session, _member(people[i]), provider, share_code=code, idempotency_key=f"g-{i}"
                )
            )
    async with write_transaction(state.sessionmaker) as session:
        try:
            await group_buys.join_group(session, _member(people[3]), provider, share_code=code, idempotency_key="g-3")
            raise AssertionError("a full group takes no one else")
        except DomainError as exc:
            assert exc.code.value == "GROUP_FULL"
    for placed in (opened.placed, *(j.placed for j in joined)):
        await _pay(api, state, placed.order)
    async with state.sessionmaker() as session:
        group = await session.get(GroupBuy, opened.group.id)
    assert (group.status, group.paid, group.joined) == (GroupBuyStatus.COMPLETED, 3, 3)
    seen = await api.gql(
        "query($c: String!) { groupBuy(shareCode: $c) { status paid size } }", {"c": code}, as_="member:someone"
    )
    assert seen["data"]["groupBuy"] == {"status": "COMPLETED", "paid": 3, "size": 3}


@pytest.mark.postgres_too
async def test_a_group_that_times_out_refunds_every_paid_member_once_even_with_two_runners(api, state, chain):
    menu = await given_menu(state, chain, on_hand=10)
    campaign_id = await _group_campaign(state, menu, 4)
    people = await _members(state, 3)
    provider = state.payment_providers["sandbox"]
    async with write_transaction(state.sessionmaker) as session:
        opened = await group_buys.open_group(
            session,
            _member(people[0]),
            provider,
            campaign_id=campaign_id,
            store_id=menu.store,
            sku_id=menu.a,
            idempotency_key="t-0",
        )
    placed = [opened.placed.order]
    for i in (1, 2):
        async with write_transaction(state.sessionmaker) as session:
            placed.append(
                (
                    await group_buys.join_group(
                        session,
                        _member(people[i]),
                        provider,
                        share_code=opened.group.share_code,
                        idempotency_key=f"t-{i}",
                    )
                ).placed.order
            )
    for order in placed[:2]:
        await _pay(api, state, order)  # the third member never pays
    later = utcnow() + timedelta(minutes=31)
    await asyncio.gather(
        jobs.run_due(state.sessionmaker, later, providers=state.payment_providers),
        jobs.run_due(state.sessionmaker, later, providers=state.payment_providers),
    )
    async with state.sessionmaker() as session:
        group = await session.get(GroupBuy, opened.group.id)
        statuses = [(await session.get(Order, o.id)).status for o in placed]
        level = await session.scalar(
            select(StockLevel).where(StockLevel.sku_id == menu.a, StockLevel.store_id == menu.store)
        )
    assert group.status is GroupBuyStatus.FAILED
    assert statuses == [OrderStatus.REFUNDED, OrderStatus.REFUNDED, OrderStatus.CANCELLED]
    refunds = {ref: list(done.values()) for ref, done in provider.refunds.items()}
    assert refunds == {f"ORD{placed[0].id:012d}": [6000], f"ORD{placed[1].id:012d}": [6000]}
    assert (level.on_hand, level.reserved) == (10, 0)


async def test_a_store_manager_runs_only_allowed_local_campaigns_and_only_their_own(api, state, chain):
    menu = await given_menu(state, chain)
    now = utcnow()
    create = """mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { errors { code field }
      campaign { id local stores { code } } } }"""
    window = {"startsAt": (now - timedelta(hours=1)).isoformat(), "endsAt": (now + timedelta(days=1)).isoformat()}
    flash = {
        **window,
        "kind": "FLASH_SALE",
        "name": "秒杀",
        "items": [{"skuId": gid("Sku", menu.a), "price": 100, "quota": 5, "perMemberLimit": 1}],
    }
    deep = {**window, "kind": "FULL_REDUCTION", "name": "满100减50", "tiers": [{"threshold": 10000, "off": 5000}]}
    fine = {**window, "kind": "FULL_REDUCTION", "name": "满100减10", "tiers": [{"threshold": 10000, "off": 1000}]}
    elsewhere = {**fine, "storeIds": [gid("Store", menu.other_store)]}
    raw = {
        name: await api.gql(create, {"i": spec}, as_="sh01.manager")
        for name, spec in (("flash", flash), ("deep", deep), ("fine", fine))
    }
    assert all("errors" not in r for r in raw.values()), raw
    results = {name: r["data"]["createCampaign"] for name, r in raw.items()}
    assert results["flash"]["errors"] == [{"code": "CAMPAIGN_NOT_ALLOWED", "field": "kind"}]
    assert results["deep"]["errors"] == [{"code": "CAMPAIGN_NOT_ALLOWED", "field": "tiers"}]
    assert results["fine"]["campaign"]["local"] and results["fine"]["campaign"]["stores"] == [{"code": "SH01"}]
    other = await api.gql(create, {"i": elsewhere}, as_="sh01.manager")
    assert other["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    local_id = results["fine"]["campaign"]["id"]
    end = "mutation($id: ID!) { endCampaign(input: {id: $id}) { errors { code } campaign { status } } }"
    stranger = await api.gql(end, {"id": local_id}, as_="sh02.manager")
    # Another store's local campaign is answered as a campaign that does not exist.
    assert stranger["data"]["endCampaign"]["errors"] == [{"code": "NOT_FOUND"}]
    missing = await api.gql(end, {"id": gid("Campaign", 987654)}, as_="sh02.manager")
    assert missing["data"]["endCampaign"] == stranger["data"]["endCampaign"]
    listed = await api.gql("{ campaigns { edges { node { id } } } }", as_="sh02.manager")
    assert listed["data"]["campaigns"]["edges"] == []
    hq_campaign = gid("Campaign", await campaign(state, K.FULL_REDUCTION, tiers=[(100, 10)]))
    own_try = await api.gql(end, {"id": hq_campaign}, as_="sh01.manager")
    assert own_try["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    for cid in (local_id, hq_campaign):
        ended = await api.gql(end, {"id": cid}, as_="hq.operator")
        assert ended["data"]["endCampaign"]["campaign"]["status"] == "ENDED"


async def test_campaign_effect_per_store_matches_the_orders_and_each_store_sees_itself(api, state, chain):
    menu = await given_menu(state, chain)
    campaign_id = await campaign(state, K.FULL_REDUCTION, tiers=[(10000, 1000)])
    buyers = await _members(state, 3)
    made = [
        await _place(state, buyers[0], menu.store, {menu.a: 1}, "e-1"),
        await _place(state, buyers[1], menu.store, {menu.a: 2}, "e-2"),
        await _place(state, buyers[2], menu.other_store, {menu.a: 1, menu.b: 1}, "e-3"),
        await _place(state, buyers[2], menu.other_store, {menu.b: 1}, "e-4"),
    ]  # below the threshold
    for order in made:
        await _pay(api, state, order)
    query = """query($c: ID!) { campaignEffect(campaignId: $c) { store { code } orders sales discount members } }"""
    hq = (await api.gql(query, {"c": gid("Campaign", campaign_id)}, as_="hq.analyst"))["data"]["campaignEffect"]
    assert hq == [
        {"store": None, "orders": 3, "sales": 9000 + 19000 + 14000, "discount": 3000, "members": 3},
        {"store": {"code": "SH01"}, "orders": 2, "sales": 28000, "discount": 2000, "members": 2},
        {"store": {"code": "SH02"}, "orders": 1, "sales": 14000, "discount": 1000, "members": 1},
    ]
    store = (await api.gql(query, {"c": gid("Campaign", campaign_id)}, as_="sh02.manager"))["data"]["campaignEffect"]
    assert store == [
        {"store": None, "orders": 1, "sales": 14000, "discount": 1000, "members": 1},
        {"store": {"code": "SH02"}, "orders": 1, "sales": 14000, "discount": 1000, "members": 1},
    ]
    clerk = await api.gql(query, {"c": gid("Campaign", campaign_id)}, as_="sh02.clerk")
    assert clerk["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_refund_gives_the_coupon_back_while_it_is_still_valid(api, state, chain):
    menu = await given_menu(state, chain)
    coupon = await give_coupon(state, menu.plain, CouponKind.THRESHOLD_OFF, threshold=8000, amount_off=1000)
    order = await _place(state, menu.plain, menu.store, {menu.a: 1}, "r-1", coupon_id=coupon)
    await _pay(api, state, order)
    refunded = await api.gql(
        "mutation($idempotencyKey: String!, $id: ID!) { refundOrder(input: {idempotencyKey: $idempotencyKey, id: $id}) { errors { code } refund { amount } } }",
        {"id": gid("Order", order.id)},
        as_="sh01.manager",
    )
    assert refunded["data"]["refundOrder"]["refund"]["amount"] == 9000
    async with state.sessionmaker() as session:
        back = await session.get(MemberCoupon, coupon)
    assert back.status is MemberCouponStatus.AVAILABLE and back.used_order_id is None


async def test_a_referred_members_first_paid_order_rewards_the_referrer_once(api, state, chain):
    menu = await given_menu(state, chain)
    await campaign(state, K.REFERRAL, reward_points=500)
    code = (await api.gql("{ myShareCode }", as_="member:referrer"))["data"]["myShareCode"]
    again = (await api.gql("{ myShareCode }", as_="member:referrer"))["data"]["myShareCode"]
    assert code == again and len(code) == 8
    accept = "mutation($c: String!) { acceptReferral(input: {code: $c}) { errors { code } accepted } }"
    own = await api.gql(accept, {"c": code}, as_="member:referrer")
    assert own["data"]["acceptReferral"]["errors"] == [{"code": "REFERRAL_NOT_ALLOWED"}]
    assert (await api.gql(accept, {"c": code}, as_="member:newbie"))["data"]["acceptReferral"]["accepted"]
    twice = await api.gql(accept, {"c": code}, as_="member:newbie")
    assert twice["data"]["acceptReferral"]["errors"] == [{"code": "REFERRAL_NOT_ALLOWED"}]
    async with state.sessionmaker() as session:
        referrer = await session.scalar(select(Member).where(Member.share_code == code))
        newbie = await session.scalar(select(Member.id).where(Member.id != referrer.id).order_by(Member.id.desc()))
    for n in range(2):
        await _pay(api, state, await _place(state, newbie, menu.store, {menu.c: 1}, f"n-{n}"))
    async with state.sessionmaker() as session:
        rewarded = await session.scalar(select(Member.points_balance).where(Member.share_code == code))
    assert rewarded == 500


async def test_points_buy_coupons_and_items_while_the_mall_has_them(api, state, chain):
    from services.members.points import adjust

    menu = await given_menu(state, chain)
    coupon_template = await template(state, CouponKind.AMOUNT_OFF, amount_off=500, claimable=False, per_member_limit=5)
    make = """mutation($i: CreatePointsMallItemInput!) { createPointsMallItem(input: $i) { errors { code } item { id } } }"""
    coupon_item = (
        await api.gql(
            make,
            {
                "i": {
                    "name": "5元券",
                    "pointsCost": 100,
                    "stock": 1,
                    "couponTemplateId": gid("CouponTemplate", coupon_template),
                }
            },
            as_="hq.operator",
        )
    )["data"]["createPointsMallItem"]["item"]["id"]
    sku_item = (
        await api.gql(
            make, {"i": {"name": "咖啡", "pointsCost": 300, "stock": 5, "skuId": gid("Sku", menu.c)}}, as_="hq.operator"
        )
    )["data"]["createPointsMallItem"]["item"]["id"]
    refused = await api.gql(
        make, {"i": {"name": "x", "pointsCost": 1, "stock": 1, "skuId": gid("Sku", menu.c)}}, as_="sh01.manager"
    )
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    await api.token("member:saver")
    async with write_transaction(state.sessionmaker) as session:
        saver = await session.scalar(select(Member.id).order_by(Member.id.desc()).limit(1))
        assert saver is not None
        await adjust(session, saver, 500, note="given", staff_id=None)
    exchange = """mutation($i: ID!, $k: String!, $s: ID) { exchangePoints(input: {itemId: $i, idempotencyKey: $k,
      storeId: $s}) { errors { code } coupon { status } order { status pickupCode payable } } }"""
    first = (await api.gql(exchange, {"i": coupon_item, "k": "x-1"}, as_="member:saver"))["data"]["exchangePoints"]
    gone = (await api.gql(exchange, {"i": coupon_item, "k": "x-2"}, as_="member:saver"))["data"]["exchangePoints"]
    item = (await api.gql(exchange, {"i": sku_item, "k": "x-3", "s": gid("Store", menu.store)}, as_="member:saver"))[
        "data"
    ]["exchangePoints"]
    poor = (await api.gql(exchange, {"i": sku_item, "k": "x-4", "s": gid("Store", menu.store)}, as_="member:saver"))[
        "data"
    ]["exchangePoints"]
    assert first["coupon"]["status"] == "AVAILABLE" and gone["errors"] == [{"code": "MALL_ITEM_EXHAUSTED"}]
    assert item["order"]["status"] == "PAID" and item["order"]["payable"] == 0 and item["order"]["pickupCode"]
    assert poor["errors"] == [{"code": "INSUFFICIENT_POINTS"}]
    async with state.sessionmaker() as session:
        member = await session.get(Member, saver)
        level = await session.scalar(
            select(StockLevel).where(StockLevel.sku_id == menu.c, StockLevel.store_id == menu.store)
        )
        payments = await session.scalar(
            select(func.count()).select_from(Payment).where(Payment.status == PaymentStatus.SUCCEEDED)
        )
    assert member.points_balance == 100 and level.on_hand == 499 and payments == 0


async def test_the_mini_program_sees_running_campaigns_and_claimable_coupons_of_its_store(api, state, chain):
    menu = await given_menu(state, chain)
    await campaign(state, K.FULL_REDUCTION, tiers=[(10000, 1000)], name="全店满减")
    await campaign(state, K.FULL_REDUCTION, tiers=[(10000, 1000)], name="别店", store_ids=[menu.other_store])
    await template(state, CouponKind.AMOUNT_OFF, amount_off=100, name="本店券", store_ids=[menu.store])
    await template(state, CouponKind.AMOUNT_OFF, amount_off=100, name="别店券", store_ids=[menu.other_store])
    seen = await api.gql(
        "query($s: ID!) { runningCampaigns(storeId: $s) { name tiers { threshold off } } "
        "claimableCoupons(storeId: $s) { name } }",
        {"s": gid("Store", menu.store)},
    )
    assert seen["data"]["runningCampaigns"] == [{"name": "全店满减", "tiers": [{"threshold": 10000, "off": 1000}]}]
    assert seen["data"]["claimableCoupons"] == [{"name": "本店券"}]


async def test_campaign_lists_and_wallets_are_constant_in_statements(api, state, chain):
    menu = await given_menu(state, chain)
    for i in range(30):
        await campaign(
            state,
            K.LIMITED_DISCOUNT,
            name=f"c{i}",
            store_ids=[menu.store, menu.other_store],
            items=[ItemSpec(menu.a, percent=90), ItemSpec(menu.b, price=4000)],
        )
    await api.token("member:wallet")
    async with state.sessionmaker() as session:
        me = await session.scalar(select(Member.id).order_by(Member.id.desc()).limit(1))
    for i in range(30):
        await give_coupon(state, me, CouponKind.AMOUNT_OFF, amount_off=100 + i)
    hq = await api.token("hq.operator")
    member = await api.token("member:wallet")
    lists = {
        "campaigns": (
            "query($n: Int!) { campaigns(first: $n) { edges { node { name stores { code }"
            " items { price sku { barcode product { name } } } } } } }",
            hq,
        ),
        "myCoupons": (
            "query($n: Int!) { myCoupons(first: $n) { edges { node { status template { name amountOff } } } } }",
            member,
        ),
    }
    for name, (query, token) in lists.items():
        counts = {}
        for n in (3, 30):
            with count_statements(state.engine) as counter:
                body = (await api.post(query, {"n": n}, token=token)).json()
            assert "errors" not in body, body
            assert len(body["data"][name]["edges"]) == n
            counts[n] = counter.count
        assert counts[3] == counts[30], (name, counts)


async def test_the_counter_applies_a_members_coupon_once(api, state, chain):
    menu = await given_menu(state, chain)
    async with write_transaction(state.sessionmaker) as session:
        await members.relate(session, menu.plain, menu.store)  # the member is known at this store
    coupon = await give_coupon(state, menu.plain, CouponKind.THRESHOLD_OFF, threshold=10000, amount_off=1500)
    checkout = """mutation($k: String!, $m: ID!, $c: ID!, $sku: ID!, $amount: Int!) { posCheckout(input: {
      clientOrderId: $k, memberId: $m, couponId: $c, lines: [{skuId: $sku, quantity: 1}],
      tenders: [{method: CASH, amount: $amount}]}) { errors { code } order { payable discountTotal
      lines { lineTotal adjustments { rule } } } } }"""
    variables = {
        "m": gid("Member", menu.plain),
        "c": gid("MemberCoupon", coupon),
        "sku": gid("Sku", menu.a),
        "amount": 8500,
    }
    sold = (await api.gql(checkout, {**variables, "k": "pos-c-1"}, as_="sh01.clerk"))["data"]["posCheckout"]
    assert sold["order"] == {
        "payable": 8500,
        "discountTotal": 1500,
        "lines": [{"lineTotal": 8500, "adjustments": [{"rule": "COUPON"}]}],
    }
    again = (await api.gql(checkout, {**variables, "k": "pos-c-2"}, as_="sh01.clerk"))["data"]["posCheckout"]
    assert again["errors"] == [{"code": "COUPON_USED"}]


async def test_an_order_from_one_flash_sale_page_gets_that_sale_when_two_overlap(state, chain):
    menu = await given_menu(state, chain)
    await campaign(state, K.FLASH_SALE, name="早场", items=[ItemSpec(menu.a, price=900, quota=5, per_member_limit=1)])
    late = await campaign(
        state, K.FLASH_SALE, name="晚场", items=[ItemSpec(menu.a, price=800, quota=5, per_member_limit=1)]
    )
    order = await _place(state, menu.plain, menu.store, {menu.a: 1}, "two-sales", flash_sale_id=late)
    async with state.sessionmaker() as session:
        sold = dict((await session.execute(select(CampaignItem.campaign_id, CampaignItem.sold))).all())
    assert order.payable == 800 and sold[late] == 1 and sum(sold.values()) == 1

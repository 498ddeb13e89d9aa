"""The price engine: a table of cases for every rule and every stacking combination, and its properties."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import (
    Campaign,
    CampaignItem,
    CampaignKind,
    CampaignStatus,
    CouponKind,
    CouponTemplate,
    MemberCoupon,
    MemberCouponStatus,
    utcnow,
)
from services.access.scope import Viewer, ViewerKind
from services.orders import lifecycle as orders
from services.platform.db import write_transaction
from services.platform.errors import DomainError
from services.pricing.engine import CartLine, PricingContext, QuoteLine, allocate, apply_coupon, price_lines
from tests.conftest import in_own_loop
from tests.marketing_givens import Menu, campaign, give_coupon, given_menu, price

K = CampaignKind


@dataclass(frozen=True)
class Case:
    name: str
    setup: Callable[[Any, Menu], Awaitable[int | None]]  # makes campaigns; returns a coupon to apply, if any
    cart: Callable[[Menu], dict[int, int]]
    member: str  # "none", "plain" or "gold"
    total: int
    rules: Callable[[Menu], dict[int, list[str]]]  # per SKU, the rules applied in order


async def _nothing(state, m):
    return None


async def _limited_pct(state, m):
    await campaign(state, K.LIMITED_DISCOUNT, items=[_item(m.a, percent=80)])


async def _level_price(state, m):
    from services.members.admin import set_level_price

    async with write_transaction(state.sessionmaker) as session:
        await set_level_price(session, level_id=m.gold_level, sku_id=m.a, price=7000)
    await campaign(state, K.LIMITED_DISCOUNT, items=[_item(m.a, percent=80)])


async def _flash(state, m):
    from services.members.admin import set_level_price

    async with write_transaction(state.sessionmaker) as session:
        await set_level_price(session, level_id=m.gold_level, sku_id=m.a, price=7000)
    await campaign(state, K.FLASH_SALE, items=[_item(m.a, price=5000, quota=10, per_member_limit=2)])
    await campaign(state, K.FULL_REDUCTION, tiers=[(4000, 1000)])


async def _flash_sold_out(state, m):
    await campaign(state, K.FLASH_SALE, items=[_item(m.a, price=5000, quota=1, per_member_limit=5)])


async def _tiers(state, m):
    await campaign(state, K.FULL_REDUCTION, tiers=[(10000, 1000), (20000, 3000)])


async def _tiers_in_category(state, m):
    await campaign(state, K.FULL_REDUCTION, tiers=[(10000, 1000)], category_ids=[m.coffee])


async def _two_reductions(state, m):
    await campaign(state, K.FULL_REDUCTION, tiers=[(10000, 1000)], name="small")
    await campaign(state, K.FULL_REDUCTION, tiers=[(10000, 1500)], name="big")


async def _reduction_and_stackable_coupon(state, m):
    await campaign(state, K.FULL_REDUCTION, tiers=[(10000, 1000)])
    return await give_coupon(state, m.plain, CouponKind.THRESHOLD_OFF, threshold=10000, amount_off=500)


async def _reduction_and_lone_coupon(state, m):
    await campaign(state, K.FULL_REDUCTION, tiers=[(10000, 1000)], category_ids=[m.coffee])
    return await give_coupon(state, m.plain, CouponKind.AMOUNT_OFF, amount_off=800, stackable=False)


async def _percent_cap(state, m):
    return await give_coupon(state, m.plain, CouponKind.PERCENT_OFF, percent=50, cap=3000)


async def _free_item(state, m):
    return await give_coupon(state, m.plain, CouponKind.FREE_ITEM, free_sku_id=m.c)


async def _coupon_bigger_than_cart(state, m):
    return await give_coupon(state, m.plain, CouponKind.AMOUNT_OFF, amount_off=99999)


async def _everything(state, m):
    await campaign(state, K.LIMITED_DISCOUNT, items=[_item(m.b, price=4000)])
    await campaign(state, K.FLASH_SALE, items=[_item(m.c, price=1000, quota=5, per_member_limit=1)])
    await campaign(state, K.FULL_REDUCTION, tiers=[(10000, 1200)])
    return await give_coupon(state, m.gold, CouponKind.PERCENT_OFF, percent=90)


async def _other_store_only(state, m):
    await campaign(state, K.FULL_REDUCTION, tiers=[(100, 50)], store_ids=[m.other_store])


async def _ended(state, m):
    await campaign(
        state,
        K.FULL_REDUCTION,
        tiers=[(100, 50)],
        starts_at=utcnow() - timedelta(days=2),
        ends_at=utcnow() - timedelta(days=1),
    )


def _item(sku: int, **terms: Any):
    from services.marketing.promotions import ItemSpec

    return ItemSpec(sku, **terms)


CASES = [
    Case("list price", _nothing, lambda m: {m.a: 1, m.b: 2}, "none", 20000, lambda m: {m.a: [], m.b: []}),
    Case("level discount", _nothing, lambda m: {m.a: 1}, "gold", 9500, lambda m: {m.a: ["LEVEL_DISCOUNT"]}),
    Case(
        "limited discount beats level discount, no stacking",
        _limited_pct,
        lambda m: {m.a: 1},
        "gold",
        8000,
        lambda m: {m.a: ["LIMITED_DISCOUNT"]},
    ),
    Case(
        "level price beats limited discount",
        _level_price,
        lambda m: {m.a: 1},
        "gold",
        7000,
        lambda m: {m.a: ["LEVEL_PRICE"]},
    ),
    Case(
        "flash sale replaces level price and skips full reduction",
        _flash,
        lambda m: {m.a: 2, m.b: 1},
        "gold",
        2 * 5000 + 4750 - 1000,
        lambda m: {m.a: ["FLASH_SALE"], m.b: ["LEVEL_DISCOUNT", "FULL_REDUCTION"]},
    ),
    Case("flash sale needs a member", _flash_sold_out, lambda m: {m.a: 1}, "none", 10000, lambda m: {m.a: []}),
    Case(
        "flash sale over the member's quantity is not given",
        _flash_sold_out,
        lambda m: {m.a: 2},
        "plain",
        20000,
        lambda m: {m.a: []},
    ),
    Case(
        "full reduction takes the best tier, shared by lines",
        _tiers,
        lambda m: {m.a: 2, m.b: 1},
        "none",
        25000 - 3000,
        lambda m: {m.a: ["FULL_REDUCTION"], m.b: ["FULL_REDUCTION"]},
    ),
    Case("full reduction below the threshold", _tiers, lambda m: {m.b: 1}, "none", 5000, lambda m: {m.b: []}),
    Case(
        "full reduction only on its category",
        _tiers_in_category,
        lambda m: {m.a: 1, m.b: 1},
        "none",
        14000,
        lambda m: {m.a: ["FULL_REDUCTION"], m.b: []},
    ),
    Case(
        "the best of two full reductions, not both",
        _two_reductions,
        lambda m: {m.a: 1},
        "none",
        8500,
        lambda m: {m.a: ["FULL_REDUCTION"]},
    ),
    Case(
        "full reduction then a stackable coupon on what is left",
        _reduction_and_stackable_coupon,
        lambda m: {m.a: 1, m.c: 1},
        "plain",
        12000 - 1000 - 500,
        lambda m: {m.a: ["FULL_REDUCTION", "COUPON"], m.c: ["FULL_REDUCTION", "COUPON"]},
    ),
    Case(
        "a coupon that does not stack skips promoted lines",
        _reduction_and_lone_coupon,
        lambda m: {m.a: 1, m.b: 1},
        "plain",
        15000 - 1000 - 800,
        lambda m: {m.a: ["FULL_REDUCTION"], m.b: ["COUPON"]},
    ),
    Case("percentage coupon with a cap", _percent_cap, lambda m: {m.a: 1}, "plain", 7000, lambda m: {m.a: ["COUPON"]}),
    Case(
        "free item coupon", _free_item, lambda m: {m.a: 1, m.c: 2}, "plain", 12000, lambda m: {m.a: [], m.c: ["COUPON"]}
    ),
    Case("never below zero", _coupon_bigger_than_cart, lambda m: {m.b: 1}, "plain", 0, lambda m: {m.b: ["COUPON"]}),
    Case(
        "everything at once, in order",
        _everything,
        lambda m: {m.a: 1, m.b: 1, m.c: 1},
        "gold",
        # A 9500 (level), B 4000 (limited), C 1000 (flash, locked); 满120 on 13500 of A+B; then 90% of the rest.
        1000 + (13500 - 1200) - (13500 - 1200) // 10,
        lambda m: {
            m.a: ["LEVEL_DISCOUNT", "FULL_REDUCTION", "COUPON"],
            m.b: ["LIMITED_DISCOUNT", "FULL_REDUCTION", "COUPON"],
            m.c: ["FLASH_SALE"],
        },
    ),
    Case(
        "another store's campaign does not apply here",
        _other_store_only,
        lambda m: {m.a: 1},
        "none",
        10000,
        lambda m: {m.a: []},
    ),
    Case("an ended campaign does not apply", _ended, lambda m: {m.a: 1}, "none", 10000, lambda m: {m.a: []}),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_price_engine_case(state, chain, case: Case):
    menu = await given_menu(state, chain)
    coupon = await case.setup(state, menu)
    member = {"none": None, "plain": menu.plain, "gold": menu.gold}[case.member]
    q = await price(state, menu.store, member, case.cart(menu), coupon)
    assert q.total == case.total, [(x.sku_id, x.adjustments) for x in q.lines]
    assert {x.sku_id: [a.rule for a in x.adjustments] for x in q.lines} == case.rules(menu)
    assert q.discount_total == q.subtotal - q.total == -sum(a.amount for x in q.lines for a in x.adjustments)
    if coupon is not None:
        assert q.coupon is not None and q.coupon.member_coupon_id == coupon


async def test_coupons_refused_with_a_code_when_expired_used_or_out_of_scope(state, chain):
    menu = await given_menu(state, chain)
    now = utcnow()
    expired = await give_coupon(
        state,
        menu.plain,
        CouponKind.AMOUNT_OFF,
        amount_off=100,
        valid_from=now - timedelta(days=3),
        valid_until=now + timedelta(seconds=1),
    )
    elsewhere = await give_coupon(
        state, menu.plain, CouponKind.AMOUNT_OFF, amount_off=100, store_ids=[menu.other_store]
    )
    high = await give_coupon(state, menu.plain, CouponKind.THRESHOLD_OFF, threshold=50000, amount_off=100)
    not_mine = await give_coupon(state, menu.gold, CouponKind.AMOUNT_OFF, amount_off=100)
    async with write_transaction(state.sessionmaker) as session:
        row = await session.get(MemberCoupon, expired)
        assert row is not None
        row.valid_until = now - timedelta(seconds=1)
    codes = {}
    for name, coupon in (("expired", expired), ("elsewhere", elsewhere), ("threshold", high), ("not mine", not_mine)):
        with pytest.raises(DomainError) as refused:
            await price(state, menu.store, menu.plain, {menu.a: 1}, coupon)
        codes[name] = (refused.value.code.value, refused.value.field)
    assert codes == {
        "expired": ("COUPON_EXPIRED", "couponId"),
        "elsewhere": ("COUPON_NOT_APPLICABLE", "couponId"),
        "threshold": ("COUPON_NOT_APPLICABLE", "couponId"),
        "not mine": ("NOT_FOUND", "couponId"),
    }


async def test_the_quote_suggests_the_best_coupon_without_applying_it(state, chain):
    menu = await given_menu(state, chain)
    await give_coupon(state, menu.plain, CouponKind.AMOUNT_OFF, amount_off=300)
    best = await give_coupon(state, menu.plain, CouponKind.PERCENT_OFF, percent=90)
    await give_coupon(state, menu.plain, CouponKind.THRESHOLD_OFF, threshold=90000, amount_off=5000)
    q = await price(state, menu.store, menu.plain, {menu.a: 1})
    assert q.suggested_coupon is not None and q.suggested_coupon.member_coupon_id == best
    assert q.suggested_coupon.discount == 1000 and q.coupon is None and q.total == 10000


@pytest.mark.postgres_too
async def test_quote_then_place_order_charges_exactly_the_quoted_total(state, chain):
    """Hypothesis carts with promotions and coupons: the order costs what its quote said, to the fen."""
    menu = await given_menu(state, chain)
    await campaign(state, K.LIMITED_DISCOUNT, items=[_item(menu.b, percent=85)])
    await campaign(state, K.FULL_REDUCTION, tiers=[(8000, 700), (20000, 2500)])
    await campaign(state, K.FLASH_SALE, items=[_item(menu.c, price=999, quota=1000, per_member_limit=1000)])
    terms = {
        CouponKind.THRESHOLD_OFF: {"threshold": 6000, "amount_off": 777},
        CouponKind.PERCENT_OFF: {"percent": 88, "cap": 1500},
        CouponKind.AMOUNT_OFF: {"amount_off": 333},
        CouponKind.FREE_ITEM: {"free_sku_id": menu.b},
    }
    checked: list[int] = []

    def examples(run: Any, sessionmaker: Any) -> None:
        world = SimpleNamespace(sessionmaker=sessionmaker, payment_providers=state.payment_providers)
        viewer = Viewer(kind=ViewerKind.MEMBER, member_id=menu.gold)

        async def one(cart: dict[int, int], kind: CouponKind | None, stackable: bool) -> None:
            coupon = await give_coupon(world, menu.gold, kind, stackable=stackable, **terms[kind]) if kind else None
            try:
                quoted = await price(world, menu.store, menu.gold, cart, coupon)
            except DomainError as exc:  # a coupon that does not fit this cart says so, and nothing is placed
                assert exc.code.value == "COUPON_NOT_APPLICABLE"
                return
            async with write_transaction(world.sessionmaker) as session:
                placed = await orders.place_order(
                    session,
                    viewer,
                    world.payment_providers["sandbox"],
                    orders.PlaceOrder(
                        menu.store, [CartLine(k, v) for k, v in cart.items()], f"h-{len(checked)}", coupon_id=coupon
                    ),
                )
                order = placed.order
            assert order.payable + order.points_value + order.stored_value_used == quoted.total
            assert (order.subtotal, order.discount_total) == (quoted.subtotal, quoted.discount_total)
            checked.append(order.id)

        @settings(max_examples=25, deadline=None, database=None)
        @given(
            cart=st.dictionaries(st.sampled_from([menu.a, menu.b, menu.c]), st.integers(1, 4), min_size=1),
            kind=st.sampled_from([*CouponKind, None]),
            stackable=st.booleans(),
        )
        def example(cart: dict[int, int], kind: CouponKind | None, stackable: bool) -> None:
            run(one(cart, kind, stackable))

        example()

    await in_own_loop(state, examples)
    assert checked  # some carts took their coupon (or none) and were placed


prices = st.integers(min_value=1, max_value=50_000)


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(st.tuples(prices, st.integers(1, 9), st.sampled_from([1, 2])), min_size=1, max_size=6),
    level_pct=st.sampled_from([100, 98, 95, 88]),
    limited=st.dictionaries(st.integers(0, 5), st.integers(1, 99), max_size=3),
    tiers=st.lists(st.tuples(st.integers(100, 200_000), st.integers(1, 99)), max_size=3),
    coupon_kind=st.sampled_from([*CouponKind, None]),
    coupon_amount=st.integers(1, 300_000),
    stackable=st.booleans(),
)
def test_price_engine_properties(lines, level_pct, limited, tiers, coupon_kind, coupon_amount, stackable):
    """Never negative; line discounts add up to the order's; no line is charged more than its list price."""
    from models import Member, MemberLevel

    now = utcnow()
    level = MemberLevel(id=1, name="L", discount_percent=level_pct)
    fr = Campaign(
        id=1,
        kind=CampaignKind.FULL_REDUCTION,
        name="fr",
        status=CampaignStatus.ACTIVE,
        rules={"tiers": [{"threshold": t, "off": t * pct // 100 or 1} for t, pct in tiers]},
    )
    ld = Campaign(id=2, kind=CampaignKind.LIMITED_DISCOUNT, name="ld", status=CampaignStatus.ACTIVE, rules={})
    items = {
        (2, sku): CampaignItem(id=10 + sku, campaign_id=2, sku_id=sku, percent=pct) for sku, pct in limited.items()
    }
    ctx = PricingContext(
        store_id=1,
        member=Member(id=1),
        level=level,
        level_prices={},
        campaigns=[fr, ld],
        items=items,
        bought={},
        group_campaign_id=None,
        at=now,
    )
    quote_lines = [QuoteLine(i, qty, p, p, True, category_id=cat) for i, (p, qty, cat) in enumerate(lines)]
    q = price_lines(ctx, quote_lines)
    if coupon_kind is not None:
        template = CouponTemplate(
            id=1,
            name="c",
            kind=coupon_kind,
            threshold=coupon_amount // 3,
            amount_off=coupon_amount,
            percent=max(1, 100 - coupon_amount % 100),
            cap=None,
            free_sku_id=0,
            store_ids=None,
            category_ids=None,
            sku_ids=None,
            stackable=stackable,
            status=CampaignStatus.ACTIVE,
        )
        member_coupon = MemberCoupon(
            id=1, status=MemberCouponStatus.AVAILABLE, valid_from=now - timedelta(1), valid_until=now + timedelta(1)
        )
        try:
            apply_coupon(ctx, q, member_coupon, template)
        except DomainError as exc:
            assert exc.code.value == "COUPON_NOT_APPLICABLE"
    assert q.total >= 0
    assert all(0 <= x.line_total <= x.list_price * x.quantity for x in q.lines)
    assert q.discount_total == -sum(a.amount for x in q.lines for a in x.adjustments)
    assert q.subtotal - q.discount_total == q.total


@given(total=st.integers(-5, 10**7), weights=st.lists(st.integers(0, 10**6), min_size=1, max_size=20))
def test_allocation_is_exact_and_bounded(total, weights):
    shares = allocate(total, weights)
    assert all(0 <= s <= w for s, w in zip(shares, weights, strict=True))
    assert sum(shares) == (min(total, sum(weights)) if total > 0 and sum(weights) > 0 else 0)

"""Givens for marketing tests: a small priced menu, members at two levels, campaigns and coupons made through services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from models import (
    CampaignKind,
    CouponKind,
    CouponSource,
    CouponTemplate,
    Member,
    MemberCoupon,
    MemberLevel,
    StoreListing,
    utcnow,
)
from resolvers.state import AppState
from services.marketing import coupons, promotions
from services.platform.db import write_transaction
from services.pricing.engine import CartLine, Quote, quote
from tests.factories import HQ, list_in_store, make_library

PRICES = (10000, 5000, 2000)  # A (coffee), B (food), C (coffee)


@dataclass
class Menu:
    store: int
    other_store: int
    a: int
    b: int
    c: int
    coffee: int
    food: int
    plain: int  # a member at the entry level (no discount)
    gold: int  # a member at 金卡 (95%)
    gold_level: int


async def given_menu(state: AppState, chain: Any, *, on_hand: int = 500) -> Menu:
    library = await make_library(state, products=3, skus_per_product=1, price=10000)
    store, other = chain.stores["SH01"], chain.stores["SH02"]
    for s in (store, other):
        await list_in_store(state, s, library.sku_ids, on_hand=on_hand)
    async with write_transaction(state.sessionmaker) as session:
        for sku, price in zip(library.sku_ids, PRICES, strict=True):
            await session.execute(update(StoreListing).where(StoreListing.sku_id == sku).values(price=price))
        levels = dict((await session.execute(select(MemberLevel.name, MemberLevel.id))).all())
        plain, gold = Member(name="普通", level_id=levels["普通会员"]), Member(name="金", level_id=levels["金卡"])
        session.add_all([plain, gold])
        await session.flush()
        a, b, c = library.sku_ids
        return Menu(
            store,
            other,
            a,
            b,
            c,
            library.category_ids["咖啡"],
            library.category_ids["食品"],
            plain.id,
            gold.id,
            levels["金卡"],
        )


async def campaign(state: AppState, kind: CampaignKind, **terms: Any) -> int:
    now = utcnow()
    spec = promotions.NewCampaign(
        kind=kind,
        name=terms.pop("name", kind.value.lower()),
        starts_at=terms.pop("starts_at", now - timedelta(hours=1)),
        ends_at=terms.pop("ends_at", now + timedelta(days=1)),
        **terms,
    )
    async with write_transaction(state.sessionmaker) as session:
        return (await promotions.create(session, HQ, spec)).id


async def template(state: Any, kind: CouponKind, **terms: Any) -> int:
    now = utcnow()
    spec = coupons.NewTemplate(
        name=terms.pop("name", kind.value.lower()),
        kind=kind,
        valid_from=terms.pop("valid_from", now - timedelta(hours=1)),
        valid_until=terms.pop("valid_until", now + timedelta(days=30)),
        **terms,
    )
    async with write_transaction(state.sessionmaker) as session:
        return (await coupons.create_template(session, HQ, spec)).id


async def give_coupon(state: Any, member_id: int, kind: CouponKind, **terms: Any) -> int:
    """A coupon of a new template in the member's wallet; returns the member coupon id."""
    template_id = await template(state, kind, per_member_limit=100, **terms)
    async with write_transaction(state.sessionmaker) as session:
        t = await session.get(CouponTemplate, template_id)
        assert t is not None
        await coupons.grant(session, t, Member.id == member_id, CouponSource.ISSUE, utcnow())
        found = await session.scalar(
            select(MemberCoupon.id).where(MemberCoupon.template_id == template_id, MemberCoupon.member_id == member_id)
        )
        assert found is not None
        return found


async def price(state: Any, store: int, member: int | None, cart: dict[int, int], coupon: int | None = None) -> Quote:
    async with state.sessionmaker() as session:
        return await quote(
            session, store_id=store, lines=[CartLine(k, v) for k, v in cart.items()], member_id=member, coupon_id=coupon
        )

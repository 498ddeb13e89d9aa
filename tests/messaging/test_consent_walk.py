"""No message reaches a member without their consent for its topic: every trigger and every send path, walked.

For each path two members: one who agreed only to the path's topic, one who agreed to every topic but that one.
After the sending job's pass, the first has the message and the second has it kept as SUPPRESSED_CONSENT; and
every message the provider was handed belongs to a member who agreed to its topic."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from models import (
    CardKind,
    CardProduct,
    CouponKind,
    CouponTemplate,
    CouponTrigger,
    Member,
    MemberCard,
    MemberLevel,
    MemberTag,
    MemberTagLink,
    Message,
    MessageConsent,
    MessageStatus,
    MessageTopic,
    MessageTrigger,
    OrderStatus,
    PointsKind,
    utcnow,
)
from services.marketing.coupons import grant_birthdays
from services.members import points
from services.messaging import triggers
from services.messaging.admin import Audience
from services.messaging.outbox import BUILT_IN
from services.messaging.providers import SandboxMessageProvider
from services.orders import lifecycle as orders
from services.orders.states import move
from services.platform.config import CHAIN_TZ
from services.platform.db import write_transaction
from services.platform.events import emit
from services.pricing.engine import CartLine
from tests.conftest import gid
from tests.factories import list_in_store, make_library
from tests.messaging.givens import member_agreeing_to, message_settings, messages_of, send_pass
from tests.orders.test_orders import _member_viewer

TEMPLATE = """mutation { createMessageTemplate(input: {key: "promo.walk", topic: PROMOTIONS, title: "Sale",
  body: "Hello {name}, 20% off today", variables: ["name"]}) { errors { code field } template { id } } }"""
SEND = """mutation($t: ID!, $key: String!, $ids: [ID!], $seg: String, $tag: ID, $lvl: ID) {
  sendMessage(input: {templateId: $t, idempotencyKey: $key, variables: [{name: "name", value: "friend"}],
  memberIds: $ids, segment: $seg, tagId: $tag, levelId: $lvl}) { errors { code field } send { id } } }"""


def others(topic: MessageTopic) -> list[MessageTopic]:
    return [t for t in MessageTopic if t is not topic]


async def _pair(state, topic: MessageTopic, **fields: Any) -> tuple[int, int]:
    """(agrees only to `topic`, agrees to everything but `topic`)."""
    return (
        await member_agreeing_to(state, topic, **fields),
        await member_agreeing_to(state, *others(topic), **fields),
    )


async def _order_ready(state, chain, member_ids: tuple[int, int]) -> None:
    """The real path: placed, paid, marked ready (services/orders/states.py announces READY)."""
    store = chain.stores["SZ01"]
    library = await make_library(state, products=1, skus_per_product=1, price=1000)
    await list_in_store(state, store, library.sku_ids, on_hand=10)
    for member_id in member_ids:
        async with write_transaction(state.sessionmaker) as session:
            placed = await orders.place_order(
                session,
                _member_viewer(member_id),
                state.payment_providers["sandbox"],
                orders.PlaceOrder(store, [CartLine(library.sku_ids[0], 1)], f"walk-{member_id}"),
            )
            await orders.mark_paid(session, placed.order.id, utcnow())
            await move(session, placed.order.id, OrderStatus.READY)


async def _care_replied(state, member_ids: tuple[int, int]) -> None:
    """The care feature's event (it lands later): emitted as it will emit it."""
    for ticket, member_id in enumerate(member_ids, start=70):
        async with write_transaction(state.sessionmaker) as session:
            emit(session, "care.ticket.replied", {"member_id": member_id, "ticket_id": ticket})


async def _points_expiring(state, member_ids: tuple[int, int]) -> None:
    year = datetime.now(CHAIN_TZ).year
    async with write_transaction(state.sessionmaker) as session:
        for member_id in member_ids:
            await points._apply(session, member_id, 120, PointsKind.EARN, earned_year=year - 1)
    async with write_transaction(state.sessionmaker) as session:
        # 20 days before points earned last year expire (the first moment of next year)
        assert await triggers.warn_points_expiring(session, datetime(year, 12, 12, tzinfo=CHAIN_TZ)) >= 2


async def _card_expiring(state, chain, member_ids: tuple[int, int]) -> None:
    """Each member holds a count card with uses left that ends in 20 days; the daily job warns of it."""
    now = utcnow()
    async with write_transaction(state.sessionmaker) as session:
        product = CardProduct(name="十杯咖啡", kind=CardKind.COUNT, price=10_000, uses=10, validity_days=365)
        session.add(product)
        await session.flush()
        for member_id in member_ids:
            session.add(
                MemberCard(
                    product_id=product.id,
                    member_id=member_id,
                    issuer_store_id=chain.stores["SH01"],
                    kind=CardKind.COUNT,
                    units_total=10,
                    units_left=4,
                    value_total=10_000,
                    value_left=4_000,
                    expires_at=now + timedelta(days=20),
                )
            )
    async with write_transaction(state.sessionmaker) as session:
        assert await triggers.warn_cards_expiring(session, now) >= 2


async def _birthday_coupon(state, member_ids: tuple[int, int]) -> None:
    now = utcnow()
    async with write_transaction(state.sessionmaker) as session:
        session.add(
            CouponTemplate(
                name="生日券",
                kind=CouponKind.AMOUNT_OFF,
                amount_off=500,
                valid_from=now - timedelta(days=1),
                valid_until=now + timedelta(days=30),
                trigger=CouponTrigger.BIRTHDAY,
                claimable=False,
            )
        )
    async with write_transaction(state.sessionmaker) as session:
        assert await grant_birthdays(session, now) >= 2
        assert await triggers.announce_birthday_coupons(session, now) >= 2


async def _hq_sends(api, state, pairs: dict[str, tuple[int, int]]) -> None:
    """sendMessage to each kind of audience, over HTTP as HQ."""
    template = (await api.gql(TEMPLATE, as_="hq.admin"))["data"]["createMessageTemplate"]["template"]["id"]
    async with write_transaction(state.sessionmaker) as session:
        tag, level = MemberTag(name="walk"), MemberLevel(name="walk", spend_threshold=987_654_321)
        session.add_all([tag, level])
        await session.flush()
        session.add_all([MemberTagLink(member_id=m, tag_id=tag.id) for m in pairs["send:tag_id"]])
    audiences: dict[str, dict[str, Any]] = {
        "send:member_ids": {"ids": [gid("Member", m) for m in pairs["send:member_ids"]]},
        "send:segment": {"seg": "WALK"},
        "send:tag_id": {"tag": gid("MemberTag", tag.id)},
        "send:level_id": {"lvl": gid("MemberLevel", level.id)},
    }
    async with write_transaction(state.sessionmaker) as session:
        for m in pairs["send:segment"]:
            (await session.get(Member, m)).segment = "WALK"  # type: ignore[union-attr]
        for m in pairs["send:level_id"]:
            (await session.get(Member, m)).level_id = level.id  # type: ignore[union-attr]
    for path, variables in audiences.items():
        sent = await api.gql(SEND, {"t": template, "key": path, **variables}, as_="hq.admin")
        assert sent["data"]["sendMessage"]["errors"] == [], sent


@pytest.mark.postgres_too
async def test_every_trigger_and_every_send_path_reaches_only_members_who_agreed_to_its_topic(api, state, chain):
    await message_settings(state, cap=50, quiet=(0, 0))
    topics = {
        "order.ready": MessageTopic.ORDER_UPDATES,
        "care.replied": MessageTopic.SERVICE_REPLIES,
        "points.expiring": MessageTopic.EXPIRY,
        "card.expiring": MessageTopic.EXPIRY,
        "birthday.coupon": MessageTopic.PROMOTIONS,
        "send:member_ids": MessageTopic.PROMOTIONS,
        "send:segment": MessageTopic.PROMOTIONS,
        "send:tag_id": MessageTopic.PROMOTIONS,
        "send:level_id": MessageTopic.PROMOTIONS,
    }
    # every trigger there is and every kind of audience is walked here
    assert set(BUILT_IN) | {t.template_key for t in triggers.EVENT_TRIGGERS.values()} <= set(topics)
    assert {f"send:{f}" for f in Audience.__dataclass_fields__} <= set(topics)
    today = datetime.now(CHAIN_TZ).date()
    born_today = date(1990, today.month, today.day) if (today.month, today.day) != (2, 29) else date(1992, 2, 29)
    pairs = {
        path: await _pair(state, topic, birthday=born_today if path == "birthday.coupon" else None)
        for path, topic in topics.items()
    }
    await _order_ready(state, chain, pairs["order.ready"])
    await _care_replied(state, pairs["care.replied"])
    await _points_expiring(state, pairs["points.expiring"])
    await _card_expiring(state, chain, pairs["card.expiring"])
    await _birthday_coupon(state, pairs["birthday.coupon"])
    await _hq_sends(api, state, pairs)

    provider = SandboxMessageProvider()
    await send_pass(state, provider)

    async with state.sessionmaker() as session:
        agreed = {
            (c.member_id, c.topic)
            for c in (await session.scalars(select(MessageConsent).where(MessageConsent.granted.is_(True)))).all()
        }
        all_sent = (await session.scalars(select(Message).where(Message.status == MessageStatus.SENT))).all()
        assert await session.scalar(select(MessageTrigger.id)) is None  # every kept event became messages
    assert provider.sent and {(m.member_id, topics_of(all_sent)[m.message_id]) for m in provider.sent} <= agreed
    assert all((m.member_id, m.topic) in agreed for m in all_sent)
    for path, (yes, no) in pairs.items():
        mine = await messages_of(state, yes)
        assert [(m.topic, m.status) for m in mine] == [(topics[path], MessageStatus.SENT)], path
        theirs = await messages_of(state, no)
        assert [(m.topic, m.status) for m in theirs] == [(topics[path], MessageStatus.SUPPRESSED_CONSENT)], path
    assert len({m.message_id for m in provider.sent}) == len(provider.sent) == len(all_sent)

    # a second pass sends nothing again
    await send_pass(state, provider)
    assert len(provider.sent) == len(all_sent)


def topics_of(messages: Sequence[Message]) -> dict[int, MessageTopic]:
    return {m.id: m.topic for m in messages}


async def test_consent_withdrawn_before_the_job_sends_suppresses_the_queued_message(state):
    await message_settings(state)
    member = await member_agreeing_to(state, *MessageTopic)
    async with write_transaction(state.sessionmaker) as session:
        await triggers.notify(session, member, "card.expiring", {"card": "次卡", "date": "2027-01-01"}, "w1")
    async with write_transaction(state.sessionmaker) as session:
        consent = await session.get(MessageConsent, (member, MessageTopic.EXPIRY))
        assert consent is not None
        consent.granted = False
    provider = SandboxMessageProvider()
    await send_pass(state, provider)
    assert provider.sent == []
    assert [m.status for m in await messages_of(state, member)] == [MessageStatus.SUPPRESSED_CONSENT]


async def test_an_event_in_a_rolled_back_transaction_triggers_nothing(state):
    member = await member_agreeing_to(state, *MessageTopic)
    try:
        async with write_transaction(state.sessionmaker) as session:
            emit(session, "care.ticket.replied", {"member_id": member, "ticket_id": 9})
            raise RuntimeError("the reply failed")
    except RuntimeError:
        pass
    await send_pass(state, SandboxMessageProvider())
    assert await messages_of(state, member) == []

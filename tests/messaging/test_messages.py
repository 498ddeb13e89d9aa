"""Messages over HTTP by role: a member's consent and inbox, HQ's templates and idempotent sends, the message log
(flat in statements), the daily cap and quiet hours in the member's time zone, retries, a send's effect, and the
WeChat subscribe-message adapter's requests."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from app import create_app
from models import Member, Message, MessageStatus, MessageTopic, Order, Store, utcnow
from services.messaging import triggers
from services.messaging.outbox import queue_message
from services.messaging.providers import (
    Outgoing,
    SandboxMessageProvider,
    SendFailed,
    WeChatSubscribeProvider,
    configured_message_provider,
    installed,
)
from services.messaging.sending import MAX_ATTEMPTS
from services.orders import lifecycle as orders
from services.platform.config import Settings
from services.platform.db import write_transaction
from services.platform.events import emit
from services.pricing.engine import CartLine
from tests.api.test_e2e_http import running_server
from tests.conftest import count_statements, gid, pk, table_counts
from tests.factories import list_in_store, make_library
from tests.messaging.givens import member_agreeing_to, message_settings, messages_of, send_pass
from tests.orders.test_orders import _member_viewer

CONSENT = """mutation($t: MessageTopic!, $g: Boolean!) { setMessageConsent(input: {topic: $t, granted: $g}) {
  errors { code } consents { topic granted } } }"""
CREATE = """mutation($k: String!, $b: String!, $v: [String!]!, $t: MessageTopic! = PROMOTIONS) {
  createMessageTemplate(input: {key: $k, topic: $t, title: "Sale", body: $b, variables: $v}) {
  errors { code field } template { id key variables } } }"""
SEND = """mutation($t: ID!, $ids: [ID!], $key: String!, $v: [MessageVariableInput!]! = [{name: "name", value: "you"}]) {
  sendMessage(input: {templateId: $t, memberIds: $ids, idempotencyKey: $key, variables: $v}) {
  errors { code field } send { id effect(days: 7) { queued sent suppressed orders } } } }"""
LOG = """query($s: MessageStatus, $n: Int) { messages(filter: {status: $s}, first: $n) { edges { node { id status
  topic member { id name } send { id template { key } } } } } }"""


async def _template(api, key: str = "promo", body: str = "Hello {name}") -> str:
    made = (await api.gql(CREATE, {"k": key, "b": body, "v": ["name"]}, as_="hq.admin"))["data"]
    assert made["createMessageTemplate"]["errors"] == [], made
    template_id: str = made["createMessageTemplate"]["template"]["id"]
    return template_id


async def test_a_member_agrees_per_topic_and_sees_only_what_reached_them(api, state):
    await message_settings(state)
    who = "member:wx-msg:13800001111"
    before = (await api.gql("{ myMessageConsents { topic granted } }", as_=who))["data"]["myMessageConsents"]
    assert before == [{"topic": t.value, "granted": False} for t in MessageTopic]
    agreed = (await api.gql(CONSENT, {"t": "PROMOTIONS", "g": True}, as_=who))["data"]["setMessageConsent"]
    assert {c["topic"]: c["granted"] for c in agreed["consents"]} == {
        "ORDER_UPDATES": False,
        "PROMOTIONS": True,
        "EXPIRY": False,
        "SERVICE_REPLIES": False,
    }
    me = pk((await api.gql("{ me { ... on MemberViewer { member { id } } } }", as_=who))["data"]["me"]["member"]["id"])
    template = await _template(api)
    other = await member_agreeing_to(state)
    sent = await api.gql(
        SEND, {"t": template, "ids": [gid("Member", me), gid("Member", other)], "key": "k1"}, as_="hq.admin"
    )
    assert sent["data"]["sendMessage"]["send"]["effect"] == {"queued": 1, "sent": 0, "suppressed": 1, "orders": 0}
    await send_pass(state, SandboxMessageProvider())
    inbox = (await api.gql("{ myMessages { edges { node { text status topic } } } }", as_=who))["data"]["myMessages"]
    assert [e["node"] for e in inbox["edges"]] == [{"text": "Hello you", "status": "SENT", "topic": "PROMOTIONS"}]
    export = (await api.gql("{ myDataExport }", as_=who))["data"]["myDataExport"]
    assert {k: export["messageConsents"][0][k] for k in ("topic", "granted")} == {
        "topic": "PROMOTIONS",
        "granted": True,
    }
    assert [(m["status"], m["text"]) for m in export["messages"]] == [("SENT", "Hello you")]
    # a member cannot read HQ's log, nor another member's message by id
    refused = await api.gql(LOG, {"n": 5}, as_=who)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    theirs = (await messages_of(state, other))[0]
    node = await api.gql("query($id: ID!) { node(id: $id) { id } }", {"id": gid("Message", theirs.id)}, as_=who)
    assert node["data"]["node"] is None


@pytest.mark.parametrize("who", ["sh01.manager", "sh01.clerk", "hq.analyst"])
async def test_only_hq_with_message_manage_sends_and_reads_the_log(api, state, who):
    template = await _template(api)
    refused = await api.gql(SEND, {"t": template, "ids": [], "key": "x"}, as_=who)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await api.gql(LOG, {"n": 5}, as_=who))["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    anonymous = await api.gql(LOG, {"n": 5})
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_send_message_is_idempotent_and_a_refused_one_changes_nothing(api, state):
    template = await _template(api)
    yes, no = await member_agreeing_to(state, MessageTopic.PROMOTIONS), await member_agreeing_to(state)
    ids = [gid("Member", yes), gid("Member", no)]
    first = (await api.gql(SEND, {"t": template, "ids": ids, "key": "once"}, as_="hq.admin"))["data"]["sendMessage"]
    again = (await api.gql(SEND, {"t": template, "ids": ids, "key": "once"}, as_="hq.admin"))["data"]["sendMessage"]
    assert first["send"]["id"] == again["send"]["id"] and again["errors"] == []
    async with state.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Message)) == 2
    before = await table_counts(state)
    other = await api.gql(SEND, {"t": template, "ids": ids[:1], "key": "once"}, as_="hq.admin")
    assert other["data"]["sendMessage"]["errors"][0]["code"] == "IDEMPOTENCY_KEY_REUSED"
    missing = await api.gql(SEND, {"t": template, "ids": ids, "key": "new", "v": []}, as_="hq.admin")
    assert missing["data"]["sendMessage"]["errors"] == [{"code": "INVALID_INPUT", "field": "variables"}]
    assert await table_counts(state) == before


async def test_templates_declare_every_placeholder_and_a_triggers_template_keeps_its_topic(api, state):
    undeclared = await api.gql(CREATE, {"k": "bad", "b": "Hi {name} {city}", "v": ["name"]}, as_="hq.admin")
    assert undeclared["data"]["createMessageTemplate"]["errors"] == [{"code": "INVALID_INPUT", "field": "body"}]
    broken = await api.gql(CREATE, {"k": "bad", "b": "Hi {name", "v": ["name"]}, as_="hq.admin")
    assert broken["data"]["createMessageTemplate"]["errors"] == [{"code": "INVALID_INPUT", "field": "body"}]
    wrong = await api.gql(CREATE, {"k": "order.ready", "b": "Come {order}", "v": ["order"]}, as_="hq.admin")
    assert wrong["data"]["createMessageTemplate"]["errors"] == [{"code": "INVALID_INPUT", "field": "key"}]
    reworded = await api.gql(
        CREATE, {"k": "order.ready", "b": "订单{order}可以取了", "v": ["order"], "t": "ORDER_UPDATES"}, as_="hq.admin"
    )
    template = reworded["data"]["createMessageTemplate"]["template"]
    edited = await api.gql(
        """mutation($id: ID!) { updateMessageTemplate(input: {id: $id, title: "取餐", body: "{order} 好了",
        variables: ["order"]}) { errors { code } template { key } } }""",
        {"id": template["id"]},
        as_="hq.admin",
    )
    assert edited["data"]["updateMessageTemplate"] == {"errors": [], "template": {"key": "order.ready"}}
    await message_settings(state)
    member = await member_agreeing_to(state, MessageTopic.ORDER_UPDATES)
    async with write_transaction(state.sessionmaker) as session:
        await queue_message(session, member, MessageTopic.ORDER_UPDATES, "order.ready", {"order": "A12"}, "t1")
    provider = SandboxMessageProvider()
    await send_pass(state, provider)
    assert [(m.title, m.text) for m in provider.sent] == [("取餐", "A12 好了")]


@pytest.mark.postgres_too
async def test_the_daily_cap_suppresses_and_quiet_hours_wait_in_the_members_time_zone(state, chain):
    await message_settings(state, cap=2, quiet=(22, 8))
    async with write_transaction(state.sessionmaker) as session:
        await session.execute(update(Store).where(Store.id == chain.stores["SZ01"]).values(timezone="Asia/Tokyo"))
    member = await member_agreeing_to(state, *MessageTopic, home_store_id=chain.stores["SZ01"])
    tokyo = ZoneInfo("Asia/Tokyo")
    late = datetime(2026, 12, 3, 23, 30, tzinfo=tokyo)  # 22:30 in Shanghai: quiet in Tokyo only
    async with write_transaction(state.sessionmaker) as session:
        for n in range(3):
            await queue_message(
                session, member, MessageTopic.EXPIRY, "card.expiring", {"card": f"c{n}", "date": "x"}, f"q{n}", now=late
            )
    provider = SandboxMessageProvider()
    await send_pass(state, provider, late)
    held = await messages_of(state, member)
    assert provider.sent == [] and {m.status for m in held} == {MessageStatus.QUEUED}
    assert {m.due_at for m in held} == {datetime(2026, 12, 4, 8, 0, tzinfo=tokyo)}
    await send_pass(state, provider, datetime(2026, 12, 4, 7, 59, tzinfo=tokyo))
    assert provider.sent == []
    await send_pass(state, provider, datetime(2026, 12, 4, 8, 1, tzinfo=tokyo))
    assert [m.status for m in await messages_of(state, member)] == [
        MessageStatus.SENT,
        MessageStatus.SENT,
        MessageStatus.SUPPRESSED_CAP,
    ]
    # the next local day has room again
    async with write_transaction(state.sessionmaker) as session:
        await triggers.notify(session, member, "card.expiring", {"card": "c9", "date": "x"}, "next-day")
    await send_pass(state, provider, datetime(2026, 12, 5, 9, 0, tzinfo=tokyo))
    assert len(provider.sent) == 3


async def test_a_failing_provider_is_retried_with_backoff_then_the_message_fails(state):
    await message_settings(state)
    member = await member_agreeing_to(state, *MessageTopic)
    now = utcnow()
    async with write_transaction(state.sessionmaker) as session:
        await queue_message(
            session, member, MessageTopic.EXPIRY, "card.expiring", {"card": "a", "date": "x"}, "r1", now=now
        )
        await queue_message(
            session, member, MessageTopic.EXPIRY, "card.expiring", {"card": "b", "date": "x"}, "r2", now=now
        )
    provider = SandboxMessageProvider(fail_next=3)
    await send_pass(state, provider, now)  # both fail once
    first, second = await messages_of(state, member)
    assert (first.status, first.attempts, second.attempts) == (MessageStatus.QUEUED, 1, 1)
    assert first.due_at > now and first.last_error
    await send_pass(state, provider, now + timedelta(seconds=31))  # a: fails again; b: sent
    await send_pass(state, provider, now + timedelta(minutes=5))  # a: sent on its third attempt
    assert [(m.status, m.attempts) for m in await messages_of(state, member)] == [
        (MessageStatus.SENT, 3),
        (MessageStatus.SENT, 2),
    ]
    async with write_transaction(state.sessionmaker) as session:
        await queue_message(
            session, member, MessageTopic.EXPIRY, "card.expiring", {"card": "c", "date": "x"}, "r3", now=now
        )
    down = SandboxMessageProvider(fail_next=100)
    for n in range(MAX_ATTEMPTS + 1):
        await send_pass(state, down, now + timedelta(hours=n + 1))
    last = (await messages_of(state, member))[-1]
    assert (last.status, last.attempts) == (MessageStatus.FAILED, MAX_ATTEMPTS)


async def test_the_message_log_is_flat_in_statements_at_10_and_100_rows(api, state):
    template = await _template(api)
    members = [await member_agreeing_to(state, MessageTopic.PROMOTIONS, name=f"m{n}") for n in range(100)]
    sent = await api.gql(
        SEND, {"t": template, "ids": [gid("Member", m) for m in members], "key": "many"}, as_="hq.admin"
    )
    assert sent["data"]["sendMessage"]["errors"] == []
    token = await api.token("hq.admin")
    counts = {}
    for n in (10, 100):
        with count_statements(state.engine) as counter:
            body = (await api.post(LOG, {"s": "QUEUED", "n": n}, token=token)).json()
        assert "errors" not in body, body
        edges = body["data"]["messages"]["edges"]
        assert len(edges) == n and all(e["node"]["send"]["template"]["key"] == "promo" for e in edges)
        counts[n] = counter.count
    assert counts[10] == counts[100], counts


async def test_a_log_showing_each_messages_send_and_its_effect_is_flat_in_statements_over_sends(api, state):
    template = await _template(api)
    members = [await member_agreeing_to(state, MessageTopic.PROMOTIONS, name=f"m{n}") for n in range(12)]
    for n, member in enumerate(members):  # a send each
        sent = await api.gql(SEND, {"t": template, "ids": [gid("Member", member)], "key": f"one-{n}"}, as_="hq.admin")
        assert sent["data"]["sendMessage"]["errors"] == []
    log = """query($n: Int) { messages(filter: {status: QUEUED}, first: $n) { edges { node { send { id
      week: effect(days: 7) { queued sent } month: effect(days: 30) { queued days } } } } } }"""
    token = await api.token("hq.admin")
    counts = {}
    for n in (3, 12):
        with count_statements(state.engine) as counter:
            body = (await api.post(log, {"n": n}, token=token)).json()
        assert "errors" not in body, body
        sends = [e["node"]["send"] for e in body["data"]["messages"]["edges"]]
        assert len({s["id"] for s in sends}) == n
        assert all(s["week"] == {"queued": 1, "sent": 0} and s["month"] == {"queued": 1, "days": 30} for s in sends)
        counts[n] = counter.count
    assert counts[3] == counts[12], counts


@pytest.mark.postgres_too
async def test_a_sends_effect_counts_sent_messages_and_paid_orders_within_n_days_after(api, state, chain):
    await message_settings(state)
    template = await _template(api)
    buyer = await member_agreeing_to(state, MessageTopic.PROMOTIONS)
    idle = await member_agreeing_to(state, MessageTopic.PROMOTIONS)
    ids = [gid("Member", buyer), gid("Member", idle)]
    send = (await api.gql(SEND, {"t": template, "ids": ids, "key": "eff"}, as_="hq.admin"))["data"]["sendMessage"]
    await send_pass(state, SandboxMessageProvider())
    store = chain.stores["SZ01"]
    library = await make_library(state, products=1, skus_per_product=1, price=1000)
    await list_in_store(state, store, library.sku_ids, on_hand=10)
    for n, days_later in enumerate((1, 2, 12)):
        async with write_transaction(state.sessionmaker) as session:
            placed = await orders.place_order(
                session,
                _member_viewer(buyer),
                state.payment_providers["sandbox"],
                orders.PlaceOrder(store, [CartLine(library.sku_ids[0], 1)], f"eff-{n}"),
            )
            await orders.mark_paid(session, placed.order.id, utcnow())
            placed.order.created_at = utcnow() + timedelta(days=days_later)
    async with state.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Order).where(Order.member_id == buyer)) == 3
    effect = await api.gql(
        """query($id: ID!) { messageSend(id: $id) { effect(days: 7) { sent suppressed orders days }
          month: effect(days: 30) { orders } } }""",
        {"id": send["send"]["id"]},
        as_="hq.admin",
    )
    assert effect["data"]["messageSend"]["effect"] == {"sent": 2, "suppressed": 0, "orders": 2, "days": 7}
    assert effect["data"]["messageSend"]["month"] == {"orders": 3}  # each window counted on its own, in one batch
    bad = await api.gql(
        "query($id: ID!) { messageSend(id: $id) { effect(days: 91) { orders } } }",
        {"id": send["send"]["id"]},
        as_="hq.admin",
    )
    assert bad["errors"][0]["extensions"]["reason"] == "INVALID_INPUT", bad


async def test_the_wechat_adapter_builds_subscribe_message_requests_and_sorts_its_failures():
    calls: list[tuple[str, str, dict[str, Any] | None]] = []
    answers: list[dict[str, Any]] = [
        {"access_token": "TOKEN", "expires_in": 7200},
        {"errcode": 0, "msgid": 42},
        {"errcode": 43101},
    ]

    async def transport(method: str, url: str, body: dict[str, Any] | None) -> dict[str, Any]:
        calls.append((method, url, body))
        return answers.pop(0)

    provider = WeChatSubscribeProvider("wxapp", "s3cret", {"order.ready": "TMPL_READY"}, transport)
    message = Outgoing(7, 1, "openid-1", "order.ready", "Order ready", "ready", {"order": "A12"})
    assert await provider.send(message) == "42"
    assert calls[0][0] == "GET" and "appid=wxapp" in calls[0][1] and "grant_type=client_credential" in calls[0][1]
    assert calls[1] == (
        "POST",
        "https://api.weixin.qq.com/cgi-bin/message/subscribe/send?access_token=TOKEN",
        {
            "touser": "openid-1",
            "template_id": "TMPL_READY",
            "page": "pages/messages/index",
            "miniprogram_state": "formal",
            "lang": "zh_CN",
            "data": {"order": {"value": "A12"}},
        },
    )
    with pytest.raises(SendFailed) as refused:  # the member refused the subscription: not retried
        await provider.send(message)
    assert refused.value.permanent and len(calls) == 3  # the token was reused
    with pytest.raises(SendFailed) as no_openid:
        await provider.send(Outgoing(8, 2, None, "order.ready", "t", "x", {"order": "1"}))
    assert no_openid.value.permanent


async def test_the_running_apps_job_sends_on_its_messages_interval(state, monkeypatch):
    """The app's runner repeats the sending pass every MESSAGES_INTERVAL_S (README): here 0.2 s, far below the
    10 s default, and the message goes out through the provider the app installed."""
    monkeypatch.setenv("MESSAGES_INTERVAL_S", "0.2")
    assert Settings.from_env().messages_interval_s == 0.2
    state.settings = replace(state.settings, messages_interval_s=0.2, jobs_interval_s=60, facts_interval_s=60)
    await message_settings(state)
    member = await member_agreeing_to(state, MessageTopic.SERVICE_REPLIES)
    async with write_transaction(state.sessionmaker) as session:
        emit(session, "care.ticket.replied", {"member_id": member, "ticket_id": 5})
    provider = state.message_provider
    assert isinstance(provider, SandboxMessageProvider) and installed() is provider
    async with running_server(create_app(state=state), lifespan="on"):
        for _ in range(40):
            if provider.sent:
                break
            await asyncio.sleep(0.1)
    assert [(m.member_id, m.text) for m in provider.sent] == [(member, "We replied to your feedback 5.")]
    assert [m.status for m in await messages_of(state, member)] == [MessageStatus.SENT]


async def test_a_deleted_account_gets_no_message_whatever_it_had_agreed_to(state):
    await message_settings(state)
    member = await member_agreeing_to(state, *MessageTopic)
    async with write_transaction(state.sessionmaker) as session:
        await triggers.notify(session, member, "card.expiring", {"card": "a", "date": "x"}, "before")
        await session.execute(update(Member).where(Member.id == member).values(deleted_at=utcnow()))
        await triggers.notify(session, member, "card.expiring", {"card": "b", "date": "x"}, "after")
    provider = SandboxMessageProvider()
    await send_pass(state, provider)
    assert provider.sent == []
    assert [m.status for m in await messages_of(state, member)] == [MessageStatus.SUPPRESSED_CONSENT] * 2


def test_the_provider_is_wechat_where_configured_the_sandbox_in_development_and_none_in_bare_production():
    wechat = Settings(wechat_app_id="wx1", wechat_app_secret="s", wechat_message_templates=(("order.ready", "T1"),))
    assert isinstance(configured_message_provider(wechat), WeChatSubscribeProvider)
    assert isinstance(configured_message_provider(Settings()), SandboxMessageProvider)
    assert configured_message_provider(Settings(env="production")) is None

"""The business day's messages: HQ sends a promotion to two members of whom only one agreed to promotions; the
running app's sending job (every MESSAGES_INTERVAL_S) delivers it to that one, and the log keeps the other's as
SUPPRESSED_CONSENT. Driven only over the socket; the test waits for the app, it calls nothing in it."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

from tests.acceptance.conftest import Server

# The running app sends every MESSAGES_INTERVAL_S (1 s here; README's default is 10 s); at most this long.
SEND_WAIT_S = 30.0

SETTINGS = """mutation { updateChainSettings(input: {quietHoursStart: 0, quietHoursEnd: 0, messageCapPerDay: 5})
  { errors { code } settings { priceBandPercent } } }"""
SIGN_IN = """mutation($c: String!) { memberSignIn(input: {provider: "local", code: $c}) {
  errors { code } tokens { accessToken } member { id } } }"""
CONSENT = """mutation { setMessageConsent(input: {topic: PROMOTIONS, granted: true}) {
  errors { code } consents { topic granted } } }"""
TEMPLATE = """mutation { createMessageTemplate(input: {key: "promo.day", topic: PROMOTIONS, title: "今日特惠",
  body: "{name}: 全场9折", variables: ["name"]}) { errors { code } template { id } } }"""
SEND = """mutation($t: ID!, $ids: [ID!]!, $key: String!) { sendMessage(input: {templateId: $t, memberIds: $ids,
  idempotencyKey: $key, variables: [{name: "name", value: "会员"}]}) { errors { code } send { id } } }"""
LOG = """query($s: ID!) { messages(filter: {sendId: $s}) { edges { node { status member { id } text } } } }"""
INBOX = "{ myMessages { edges { node { title text topic } } } }"


async def send_a_promotion_to_members_who_agreed(hq: Any, member: Any, server: Server) -> None:
    from tests.acceptance.test_business_day import Gql, ok

    ok((await hq(SETTINGS))["updateChainSettings"])  # no quiet hours: the day's test runs at any hour
    agreed = ok((await member(CONSENT))["setMessageConsent"])["consents"]
    assert {"topic": "PROMOTIONS", "granted": True} in agreed
    me = (await member("{ me { ... on MemberViewer { member { id } } } }"))["me"]["member"]["id"]
    signed = ok((await Gql(server)(SIGN_IN, c=f"quiet-{secrets.token_hex(3)}:13900139000"))["memberSignIn"])
    quiet = Gql(server, signed["tokens"]["accessToken"])
    template = ok((await hq(TEMPLATE))["createMessageTemplate"])["template"]["id"]
    key = f"promo-{secrets.token_hex(4)}"
    send = ok((await hq(SEND, t=template, ids=[me, signed["member"]["id"]], key=key))["sendMessage"])["send"]
    again = ok((await hq(SEND, t=template, ids=[me, signed["member"]["id"]], key=key))["sendMessage"])["send"]
    assert again["id"] == send["id"]  # a retried send is the same send

    deadline = time.monotonic() + SEND_WAIT_S
    while True:
        log = {e["node"]["member"]["id"]: e["node"] for e in (await hq(LOG, s=send["id"]))["messages"]["edges"]}
        if log.get(me, {}).get("status") == "SENT":
            break
        assert time.monotonic() < deadline, f"the running app's job did not send within {SEND_WAIT_S} s: {log}"
        await asyncio.sleep(0.5)
    assert {m["status"] for m in log.values()} == {"SENT", "SUPPRESSED_CONSENT"} and len(log) == 2
    assert log[signed["member"]["id"]]["status"] == "SUPPRESSED_CONSENT"
    inbox = [e["node"] for e in (await member(INBOX))["myMessages"]["edges"]]
    assert {"title": "今日特惠", "text": "会员: 全场9折", "topic": "PROMOTIONS"} in inbox
    assert (await quiet(INBOX))["myMessages"]["edges"] == []

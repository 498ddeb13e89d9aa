"""The business day's brand page (总部统一设计模板 门店个性化内容填充): HQ publishes the store page's template, the store's
manager fills its notice and featured items, HQ approves when the chain asks for it, and the member reads the
store's page: the store's content, the campaign running there and the menu at the member's price, in one request."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

SAVE_TEMPLATE = """mutation($sections: [PageSectionInput!]!) { savePageTemplate(input: {kind: STORE,
  sections: $sections, logoUrl: "https://cdn.example.com/logo.png",
  theme: {primaryColor: "#C8102E", accentColor: "#FFC72C", backgroundColor: "#FFFFFF"}}) {
  errors { code field message } template { version status } } }"""
PUBLISH = "mutation { publishPageTemplate(input: {kind: STORE}) { errors { code field } template { version status } } }"
SAVE_PAGE = """mutation($s: ID!, $slots: [PageSlotInput!]!) { saveStorePage(input: {storeId: $s, slots: $slots}) {
  errors { code field message } page { id status } } }"""
SUBMIT = "mutation($s: ID!) { submitStorePage(input: {storeId: $s}) { errors { code field } page { id status } } }"
DECIDE = """mutation($id: ID!) { decideStorePage(input: {id: $id, approve: true}) { errors { code field }
  page { status } } }"""
CAMPAIGN = """mutation($s: ID!, $k: ID!, $from: DateTime!, $to: DateTime!) { createCampaign(input: {
  kind: LIMITED_DISCOUNT, name: "验收限时折扣", startsAt: $from, endsAt: $to, storeIds: [$s],
  items: [{skuId: $k, percent: 90}]}) { errors { code field message } campaign { id } } }"""
STORE_PAGE = """query($s: ID!) { storePage(storeId: $s) { store { id } template { version logoUrl }
  sections { key filledByStore content { text } items { price memberPrice sku { id } } campaigns { name } }
  menu { items { price memberPrice availability sku { id } } } } }"""
SECTIONS = [
    {
        "key": "banner",
        "kind": "BANNER_CAROUSEL",
        "storeFillable": True,
        "maxItems": 3,
        "items": [{"kind": "IMAGE", "url": "https://cdn.example.com/hq-banner.jpg"}],
    },
    {"key": "campaigns", "kind": "CAMPAIGN_STRIP", "title": "今日优惠", "maxItems": 5},
    {"key": "featured", "kind": "RECOMMENDED_ITEMS", "title": "门店特色推荐", "storeFillable": True, "maxItems": 4},
    {"key": "notice", "kind": "STORE_NOTICE", "storeFillable": True, "maxItems": 1, "allowedKinds": ["TEXT"]},
    {"key": "menu", "kind": "MENU", "title": "菜单", "maxItems": 50},
]


async def fill_the_store_page(hq: Any, manager: Any, member: Any, store_id: str, sku: str) -> None:
    """Every step over the socket, through the Gql callers of the day (the callables are passed in)."""
    from tests.acceptance.test_business_day import ok

    ok((await hq(SAVE_TEMPLATE, sections=SECTIONS))["savePageTemplate"])
    assert ok((await hq(PUBLISH))["publishPageTemplate"])["template"]["status"] == "PUBLISHED"
    now = datetime.now(UTC)
    ok(
        (
            await hq(
                CAMPAIGN,
                s=store_id,
                k=sku,
                **{"from": (now - timedelta(minutes=1)).isoformat(), "to": (now + timedelta(days=1)).isoformat()},
            )
        )["createCampaign"]
    )
    notice = f"今晚20点后烘焙八折 #{secrets.token_hex(2)}"
    slots = [
        {"key": "notice", "items": [{"kind": "TEXT", "text": notice}]},
        {"key": "featured", "items": [{"kind": "SKU", "skuId": sku}]},
    ]
    ok((await manager(SAVE_PAGE, s=store_id, slots=slots))["saveStorePage"])
    submitted = ok((await manager(SUBMIT, s=store_id))["submitStorePage"])["page"]
    needs = (await hq("{ chainSettings { storePagesNeedApproval } }"))["chainSettings"]["storePagesNeedApproval"]
    if needs:
        assert submitted["status"] == "PENDING"
        assert ok((await hq(DECIDE, id=submitted["id"]))["decideStorePage"])["page"]["status"] == "LIVE"
    else:
        assert submitted["status"] == "LIVE"

    page = (await member(STORE_PAGE, s=store_id))["storePage"]
    assert page["store"]["id"] == store_id and page["template"]["logoUrl"] == "https://cdn.example.com/logo.png"
    sections = {s["key"]: s for s in page["sections"]}
    assert sections["notice"]["filledByStore"] and sections["notice"]["content"] == [{"text": notice}]
    featured = sections["featured"]["items"]
    assert [i["sku"]["id"] for i in featured] == [sku]
    assert featured[0]["memberPrice"] == featured[0]["price"] * 90 // 100  # the store's 90% campaign
    assert {"name": "验收限时折扣"} in sections["campaigns"]["campaigns"]
    menu = {i["sku"]["id"]: i for m in page["menu"] for i in m["items"]}
    assert menu[sku]["memberPrice"] == featured[0]["memberPrice"] and menu[sku]["availability"] in {"IN_STOCK", "LOW"}

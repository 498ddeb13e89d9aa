"""Brand templates and store pages, by role over HTTP: HQ designs and publishes the store page's template, a store
manager fills the slots HQ opens (notice, featured items) within its rules, HQ approves when the chain asks for it,
and a member reads one storePage with the template, the store's content, the running campaigns and the menu at the
member's price. Drafts, publishing and rolling back versions; a refusal changes nothing; the statement count of
storePage does not grow with sections or items."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from models import CampaignKind, Member, MemberLevel, PageKind
from services.brand import templates
from services.brand.templates import Item, ItemKind, Section, SectionKind, TemplateSpec
from services.marketing.promotions import ItemSpec
from services.org.settings import update_settings
from services.platform.db import write_transaction
from tests.conftest import count_statements, gid, pk, table_counts
from tests.factories import HQ, list_in_store, make_library
from tests.marketing_givens import campaign

SAVE_TEMPLATE = """mutation($input: SavePageTemplateInput!) { savePageTemplate(input: $input) {
  errors { code field message } template { id version status sections { key kind storeFillable maxItems } } } }"""
PUBLISH = """mutation($kind: PageKind!) { publishPageTemplate(input: {kind: $kind}) {
  errors { code field } template { version status } } }"""
ROLL_BACK = """mutation($version: Int!) { rollBackPageTemplate(input: {kind: STORE, version: $version}) {
  errors { code field } template { version status copiedFrom sections { key } } } }"""
VERSIONS = "{ pageTemplates(kind: STORE) { edges { node { version status copiedFrom } } } }"
SAVE_PAGE = """mutation($s: ID!, $slots: [PageSlotInput!]!) { saveStorePage(input: {storeId: $s, slots: $slots}) {
  errors { code field message } page { id status slots { key items { kind text sku { id } } } } } }"""
SUBMIT = """mutation($s: ID!) { submitStorePage(input: {storeId: $s}) { errors { code field } page { id status } } }"""
DECIDE = """mutation($id: ID!, $approve: Boolean!, $reason: String) { decideStorePage(input: {id: $id,
  approve: $approve, reason: $reason}) { errors { code field } page { status rejectReason store { code } } } }"""
PAGES = """query($status: StorePageStatus) { storePages(status: $status) { edges { node { id status store { code } } } } }"""
STORE_PAGE = """query($s: ID!) { storePage(storeId: $s) { kind store { code } template { version logoUrl
  theme { primaryColor } } sections { key kind title filledByStore content { kind url text category { name } }
  items { price memberPrice priceRule availability sku { id barcode } }
  campaigns { name kind } } menu { category { name } items { price memberPrice availability sku { id } } } } }"""
PUBLIC_PAGE = """query($s: ID!) { storePage(storeId: $s) { store { code } sections { key filledByStore
  content { text } } } }"""
VISITOR_PAGE = "query($s: ID!) { storePage(storeId: $s) { sections { key items { memberPrice } } } }"


def sections(n: int = 3, sku: str | None = None, category: str | None = None) -> list[dict[str, Any]]:
    """HQ's store page: banners (a store may add its own), featured categories (HQ's), the campaign strip, featured
    items (the store's 门店特色推荐), the store's notice (text only, one), and the menu."""
    return [
        {
            "key": "banner",
            "kind": "BANNER_CAROUSEL",
            "storeFillable": True,
            "maxItems": n,
            "items": [{"kind": "IMAGE", "url": "https://cdn.example.com/hq.jpg"}],
        },
        {
            "key": "categories",
            "kind": "FEATURED_CATEGORIES",
            "maxItems": n,
            "items": [{"kind": "CATEGORY", "categoryId": category}] if category else [],
        },
        {"key": "campaigns", "kind": "CAMPAIGN_STRIP", "title": "今日优惠", "maxItems": n},
        {"key": "featured", "kind": "RECOMMENDED_ITEMS", "title": "门店特色推荐", "storeFillable": True, "maxItems": n},
        {"key": "notice", "kind": "STORE_NOTICE", "storeFillable": True, "maxItems": 1, "allowedKinds": ["TEXT"]},
        {"key": "menu", "kind": "MENU", "title": "菜单", "maxItems": 20},
    ]


async def publish(api, secs: list[dict[str, Any]], *, who: str = "hq.operator", logo: str | None = None) -> int:
    body = await api.gql(
        SAVE_TEMPLATE, {"input": {"kind": "STORE", "sections": secs, "logoUrl": logo, "theme": theme()}}, as_=who
    )
    assert "data" in body, body
    saved = body["data"]["savePageTemplate"]
    assert saved["errors"] == [], saved
    published = (await api.gql(PUBLISH, {"kind": "STORE"}, as_=who))["data"]["publishPageTemplate"]
    assert published["errors"] == [] and published["template"]["status"] == "PUBLISHED", published
    version: int = published["template"]["version"]
    return version


def theme() -> dict[str, str]:
    return {"primaryColor": "#C8102E", "accentColor": "#FFC72C", "backgroundColor": "#FFFFFF"}


async def given_store(state, chain) -> dict[str, Any]:
    """SH01 lists three SKUs (10 each) at 10.00; a limited-time discount on the first runs there."""
    library = await make_library(state, products=4, skus_per_product=1, price=1000)
    await list_in_store(state, chain.stores["SH01"], library.sku_ids[:3], on_hand=10)
    await campaign(
        state,
        CampaignKind.LIMITED_DISCOUNT,
        name="周三半价",
        store_ids=[chain.stores["SH01"]],
        items=[ItemSpec(library.sku_ids[0], price=500)],
    )
    return {
        "s": gid("Store", chain.stores["SH01"]),
        "other": gid("Store", chain.stores["SH02"]),
        "skus": library.sku_ids[:3],
        "unlisted": library.sku_ids[3],
        "category": gid("Category", library.category_ids["咖啡"]),
    }


async def gold_member(api, state, code: str = "page-reader") -> str:
    """A member at 金卡 (95%): signs in, then reaches the level."""
    signed = await api.member_sign_in(code)
    member_id = pk(signed["member"]["id"])
    async with write_transaction(state.sessionmaker) as session:
        gold = await session.scalar(select(MemberLevel.id).where(MemberLevel.name == "金卡"))
        await session.execute(update(Member).where(Member.id == member_id).values(level_id=gold))
    api.tokens[f"member:{code}"] = signed["tokens"]["accessToken"]
    return f"member:{code}"


def by_key(page: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["key"]: s for s in page["sections"]}


@pytest.mark.postgres_too
async def test_given_a_published_template_when_the_manager_fills_it_and_hq_approves_then_a_member_sees_it(
    api, state, chain
):
    g = await given_store(state, chain)
    a, b, c = g["skus"]
    await publish(api, sections(category=g["category"]), logo="https://cdn.example.com/logo.png")
    slots = [
        {"key": "notice", "items": [{"kind": "TEXT", "text": "本周六店庆 全场饮品第二杯半价"}]},
        {
            "key": "featured",
            "items": [{"kind": "SKU", "skuId": gid("Sku", a)}, {"kind": "SKU", "skuId": gid("Sku", b)}],
        },
    ]
    saved = (await api.gql(SAVE_PAGE, {"s": g["s"], "slots": slots}, as_="sh01.manager"))["data"]["saveStorePage"]
    assert saved["errors"] == [] and saved["page"]["status"] == "DRAFT"
    submitted = (await api.gql(SUBMIT, {"s": g["s"]}, as_="sh01.manager"))["data"]["submitStorePage"]
    assert submitted["page"]["status"] == "PENDING"  # the chain asks for approval by default
    member = await gold_member(api, state)

    before = (await api.gql(STORE_PAGE, {"s": g["s"]}, as_=member))["data"]["storePage"]
    assert by_key(before)["notice"]["content"] == [] and by_key(before)["featured"]["items"] == []
    assert by_key(before)["banner"]["filledByStore"] is False  # HQ's banner until the store's page is approved

    pending = (await api.gql(PAGES, {"status": "PENDING"}, as_="hq.operator"))["data"]["storePages"]["edges"]
    assert [e["node"]["store"]["code"] for e in pending] == ["SH01"]
    decided = (await api.gql(DECIDE, {"id": pending[0]["node"]["id"], "approve": True}, as_="hq.operator"))["data"]
    assert decided["decideStorePage"]["page"]["status"] == "LIVE"

    page = (await api.gql(STORE_PAGE, {"s": g["s"]}, as_=member))["data"]["storePage"]
    assert page["store"]["code"] == "SH01" and page["template"]["logoUrl"] == "https://cdn.example.com/logo.png"
    assert [s["key"] for s in page["sections"]] == ["banner", "categories", "campaigns", "featured", "notice", "menu"]
    got = by_key(page)
    assert got["notice"]["filledByStore"] and got["notice"]["content"][0]["text"] == "本周六店庆 全场饮品第二杯半价"
    assert got["categories"]["content"][0]["category"]["name"] == "咖啡"
    featured = got["featured"]["items"]
    assert [pk(i["sku"]["id"]) for i in featured] == [a, b]
    # A: the limited-time price beats the level's 95%; B: the member's 95%.
    assert [(i["price"], i["memberPrice"], i["priceRule"]) for i in featured] == [
        (1000, 500, "LIMITED_DISCOUNT"),
        (1000, 950, "LEVEL_DISCOUNT"),
    ]
    assert {i["availability"] for i in featured} == {"IN_STOCK"}
    assert got["campaigns"]["campaigns"] == [{"name": "周三半价", "kind": "LIMITED_DISCOUNT"}]
    menu = {pk(i["sku"]["id"]): i for section in page["menu"] for i in section["items"]}
    assert set(menu) == {a, b, c} and menu[c]["memberPrice"] == 950

    anonymous = await api.gql(VISITOR_PAGE, {"s": g["s"]})
    assert "data" in anonymous, anonymous
    visitor = anonymous["data"]["storePage"]  # anonymous: no level price
    assert [i["memberPrice"] for i in by_key(visitor)["featured"]["items"]] == [500, 1000]


async def test_given_the_chain_asks_no_approval_when_the_manager_submits_then_the_page_is_live_at_once(
    api, state, chain
):
    g = await given_store(state, chain)
    async with write_transaction(state.sessionmaker) as session:
        await update_settings(session, store_pages_need_approval=False)
    await publish(api, sections())
    slots = [{"key": "notice", "items": [{"kind": "TEXT", "text": "今日营业至22点"}]}]
    assert (await api.gql(SAVE_PAGE, {"s": g["s"], "slots": slots}, as_="sh01.manager"))["data"]["saveStorePage"][
        "errors"
    ] == []
    submitted = (await api.gql(SUBMIT, {"s": g["s"]}, as_="sh01.manager"))["data"]["submitStorePage"]
    assert submitted["page"]["status"] == "LIVE"
    page = (await api.gql(PUBLIC_PAGE, {"s": g["s"]}))["data"]["storePage"]
    assert by_key(page)["notice"]["content"][0]["text"] == "今日营业至22点"


async def test_given_a_submitted_page_when_hq_rejects_it_then_it_is_not_shown_and_the_store_sees_why(api, state, chain):
    g = await given_store(state, chain)
    await publish(api, sections())
    slots = [{"key": "notice", "items": [{"kind": "TEXT", "text": "全场一折"}]}]
    await api.gql(SAVE_PAGE, {"s": g["s"], "slots": slots}, as_="sh01.manager")
    page_id = (await api.gql(SUBMIT, {"s": g["s"]}, as_="sh01.manager"))["data"]["submitStorePage"]["page"]["id"]
    rejected = (await api.gql(DECIDE, {"id": page_id, "approve": False, "reason": "价格不实"}, as_="hq.admin"))["data"]
    assert rejected["decideStorePage"]["page"] == {
        "status": "REJECTED",
        "rejectReason": "价格不实",
        "store": {"code": "SH01"},
    }
    again = (await api.gql(DECIDE, {"id": page_id, "approve": True}, as_="hq.admin"))["data"]["decideStorePage"]
    assert again["errors"][0]["code"] == "INVALID_TRANSITION"
    shown = (await api.gql(PUBLIC_PAGE, {"s": g["s"]}))["data"]["storePage"]
    assert by_key(shown)["notice"]["content"] == []
    mine = (await api.gql(PAGES, {"status": "REJECTED"}, as_="sh01.manager"))["data"]["storePages"]["edges"]
    assert [e["node"]["id"] for e in mine] == [page_id]
    theirs = (await api.gql(PAGES, {}, as_="sh02.manager"))["data"]["storePages"]["edges"]
    assert theirs == []


async def test_given_hq_rules_when_a_store_fills_outside_them_then_it_is_refused_and_nothing_changes(api, state, chain):
    g = await given_store(state, chain)
    await publish(api, sections(n=2))
    other_sku = g["unlisted"]  # not on SH01's menu
    sku = [{"kind": "SKU", "skuId": gid("Sku", s)} for s in g["skus"]]
    cases = [
        ([{"key": "menu", "items": []}], "NOT_ALLOWED_BY_POLICY", "slots[0].key"),  # HQ's, not the store's
        ([{"key": "categories", "items": []}], "NOT_ALLOWED_BY_POLICY", "slots[0].key"),
        ([{"key": "featured", "items": sku}], "NOT_ALLOWED_BY_POLICY", "slots[0].items"),  # 3 > maxItems 2
        (
            [{"key": "notice", "items": [{"kind": "IMAGE", "url": "https://cdn.example.com/n.jpg"}]}],
            "NOT_ALLOWED_BY_POLICY",
            "slots[0].items[0]",
        ),  # text only
        ([{"key": "featured", "items": [{"kind": "SKU", "skuId": gid("Sku", other_sku)}]}], "NOT_FOUND", None),
        ([{"key": "banner", "items": [{"kind": "IMAGE", "url": "http://x.example.com/a.jpg"}]}], "INVALID_INPUT", None),
    ]
    await api.token("sh01.manager")
    before = await table_counts(state)
    for slots, code, field in cases:
        result = (await api.gql(SAVE_PAGE, {"s": g["s"], "slots": slots}, as_="sh01.manager"))["data"]["saveStorePage"]
        assert result["errors"][0]["code"] == code, (slots, result)
        if field:
            assert result["errors"][0]["field"] == field
    other = await api.gql(SAVE_PAGE, {"s": g["other"], "slots": []}, as_="sh01.manager")
    assert other["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await table_counts(state) == before


@pytest.mark.postgres_too
async def test_given_versions_when_hq_rolls_back_then_the_earlier_version_is_live_again_as_a_new_one(api, state, chain):
    g = await given_store(state, chain)
    first = await publish(api, sections())
    draft = (
        await api.gql(
            SAVE_TEMPLATE,
            {"input": {"kind": "STORE", "sections": [{"key": "menu", "kind": "MENU", "maxItems": 5}]}},
            as_="hq.admin",
        )
    )["data"]["savePageTemplate"]
    assert draft["template"]["status"] == "DRAFT"
    shown = (await api.gql(PUBLIC_PAGE, {"s": g["s"]}))["data"]["storePage"]
    assert len(shown["sections"]) == 6  # a draft changes nothing the mini-program shows
    second = (await api.gql(PUBLISH, {"kind": "STORE"}, as_="hq.admin"))["data"]["publishPageTemplate"]["template"]
    assert second["version"] == first + 1
    assert [s["key"] for s in (await api.gql(PUBLIC_PAGE, {"s": g["s"]}))["data"]["storePage"]["sections"]] == ["menu"]
    rolled = (await api.gql(ROLL_BACK, {"version": first}, as_="hq.admin"))["data"]["rollBackPageTemplate"]
    assert rolled["template"]["status"] == "PUBLISHED" and rolled["template"]["copiedFrom"] == first
    assert len((await api.gql(PUBLIC_PAGE, {"s": g["s"]}))["data"]["storePage"]["sections"]) == 6
    versions = (await api.gql(VERSIONS, as_="hq.admin"))["data"]["pageTemplates"]["edges"]
    assert [(v["node"]["version"], v["node"]["status"]) for v in versions] == [
        (first + 2, "PUBLISHED"),
        (first + 1, "RETIRED"),
        (first, "RETIRED"),
    ]
    missing = (await api.gql(ROLL_BACK, {"version": 99}, as_="hq.admin"))["data"]["rollBackPageTemplate"]
    assert missing["errors"][0]["code"] == "NOT_FOUND"


async def test_templates_are_hq_business_and_the_page_is_public(api, state, chain):
    g = await given_store(state, chain)
    body = {"input": {"kind": "STORE", "sections": sections()}}
    for who, code in (("sh01.manager", "FORBIDDEN"), ("sh01.clerk", "FORBIDDEN"), ("hq.analyst", "FORBIDDEN")):
        assert (await api.gql(SAVE_TEMPLATE, body, as_=who))["errors"][0]["extensions"]["code"] == code
    assert (await api.gql(SAVE_TEMPLATE, body))["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert (await api.gql(PUBLIC_PAGE, {"s": g["s"]}))["data"]["storePage"] is None  # nothing published yet
    await publish(api, sections())
    slots = [{"key": "notice", "items": [{"kind": "TEXT", "text": "x"}]}]
    clerk = await api.gql(SAVE_PAGE, {"s": g["s"], "slots": slots}, as_="sh01.clerk")
    assert clerk["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    viewers: list[str | None] = [None, "member:someone", "sh02.clerk"]
    for viewer in viewers:
        assert (await api.gql(PUBLIC_PAGE, {"s": g["s"]}, as_=viewer))["data"]["storePage"]["store"]["code"] == "SH01"


async def publish_wide(state, n: int, library: Any) -> None:
    """Given HQ publishes n sections (the six kinds in turn), each with n items where it holds items (through the
    service: 50 x 50 items are more than one request body may carry)."""
    skus = tuple(Item(ItemKind.SKU, sku_id=s) for s in library.sku_ids[:n])
    cats = tuple(Item(ItemKind.CATEGORY, category_id=c) for c in library.category_ids.values())
    banners = tuple(Item(ItemKind.IMAGE, url=f"https://cdn.example.com/{i}.jpg") for i in range(n))
    kinds = [  # a page of five holds every kind that reads something: only the banners (no query) are left out
        (SectionKind.FEATURED_CATEGORIES, (cats * n)[:n]),
        (SectionKind.CAMPAIGN_STRIP, ()),
        (SectionKind.RECOMMENDED_ITEMS, skus),
        (SectionKind.MENU, ()),
        (SectionKind.STORE_NOTICE, tuple(Item(ItemKind.TEXT, text=f"公告{i}") for i in range(n))),
        (SectionKind.BANNER_CAROUSEL, banners),
    ]
    secs = [Section(f"s{i}", kinds[i % 6][0], max_items=n, items=kinds[i % 6][1]) for i in range(n)]
    async with write_transaction(state.sessionmaker) as session:
        await templates.save_draft(session, HQ, TemplateSpec(PageKind.STORE, secs))
        await templates.publish(session, HQ, PageKind.STORE)


async def test_store_page_statements_do_not_grow_with_sections_or_items(api, state, chain):
    library = await make_library(state, products=25, skus_per_product=2)
    await list_in_store(state, chain.stores["SH01"], library.sku_ids, on_hand=10)
    await campaign(state, CampaignKind.LIMITED_DISCOUNT, items=[ItemSpec(s, percent=80) for s in library.sku_ids[:3]])
    member = await gold_member(api, state)
    store = gid("Store", chain.stores["SH01"])
    counts, sizes = [], []
    for n in (5, 50):
        await publish_wide(state, n, library)
        await api.gql(STORE_PAGE, {"s": store}, as_=member)  # warm: the token's session
        with count_statements(state.engine) as counter:
            body = await api.gql(STORE_PAGE, {"s": store}, as_=member)
        assert "errors" not in body, body
        page = body["data"]["storePage"]
        sizes.append(
            (
                len(page["sections"]),
                sum(len(s["items"]) for s in page["sections"]) + sum(len(m["items"]) for m in page["menu"]),
            )
        )
        counts.append(counter.count)
        print("STMTS", n, [x[:150] for x in counter.statements])
    assert sizes[0][0] == 5 and sizes[1][0] == 50 and sizes[1][1] > 10 * sizes[0][1]
    assert counts[0] == counts[1], counts


MANIFEST = json.loads((Path(__file__).parents[2] / "trusted-documents.json").read_text())


async def test_the_mini_programs_trusted_store_page_document_runs_for_a_visitor_and_a_member(api, state, chain):
    """Within the anonymous cost budget, with everything the page shows."""
    g = await given_store(state, chain)
    await publish(api, sections(category=g["category"]))
    body = next(op["body"] for op in MANIFEST["operations"] if op["name"] == "StorePage")
    member = await gold_member(api, state)
    for viewer in (None, member):
        answer = await api.gql(body, {"storeId": g["s"]}, as_=viewer)
        assert "errors" not in answer, answer
        assert answer["data"]["storePage"]["store"]["name"] == "静安寺店"
        assert {i["sku"]["id"] for m in answer["data"]["storePage"]["menu"] for i in m["items"]} == {
            gid("Sku", s) for s in g["skus"]
        }


async def test_the_home_page_has_its_own_template_and_a_warehouse_has_no_page(api, state, chain):
    g = await given_store(state, chain)
    await publish(api, sections())
    home = [
        {
            "key": "banner",
            "kind": "BANNER_CAROUSEL",
            "items": [{"kind": "IMAGE", "url": "https://cdn.example.com/h.jpg"}],
        }
    ]
    saved = await api.gql(SAVE_TEMPLATE, {"input": {"kind": "HOME", "sections": home}}, as_="hq.operator")
    assert saved["data"]["savePageTemplate"]["template"]["version"] == 1  # versions count per kind
    assert (await api.gql(PUBLISH, {"kind": "HOME"}, as_="hq.operator"))["data"]["publishPageTemplate"]["errors"] == []
    query = (
        "query($s: ID!, $k: PageKind!) { storePage(storeId: $s, kind: $k) { kind sections { key content { url } } } }"
    )
    page = (await api.gql(query, {"s": g["s"], "k": "HOME"}))["data"]["storePage"]
    assert page == {
        "kind": "HOME",
        "sections": [{"key": "banner", "content": [{"url": "https://cdn.example.com/h.jpg"}]}],
    }
    warehouse = await api.gql(query, {"s": gid("Store", chain.stores["WHSH"]), "k": "STORE"}, as_="member:someone")
    assert warehouse["data"]["storePage"] is None  # invisible to members, as everywhere

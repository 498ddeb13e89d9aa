"""Browsing history (浏览记录) over the API: the mini-program records views in batches (one per product per minute,
rate limited), the member sees and clears their own history, staff in scope see the categories a member looks at,
recommendations use views, and a daily job purges views older than 90 days."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from models import ProductView, utcnow
from services.access.scope import Viewer, ViewerKind
from services.analytics import recommendations
from services.members import browsing
from services.platform import jobs
from services.platform.db import write_transaction
from services.registry import JOB_DOMAINS
from tests.conftest import count_statements, gid
from tests.factories import make_library

PHONE = "13900139077"
RECORD = """mutation($p: [ID!]!, $s: ID) { recordProductViews(input: {productIds: $p, storeId: $s}) {
  errors { code field } recorded } }"""
HISTORY = """query($n: Int) { myBrowsingHistory(first: $n) { edges { node { viewedAt product { name category { name } }
  store { code } } } pageInfo { hasNextPage } } }"""
CLEAR = "mutation { clearMyBrowsingHistory { errors { code } cleared } }"
CATEGORIES = """query($id: ID!) { node(id: $id) { ... on Member { viewedCategories { views category { name } } } } }"""


def codes(body):
    return {e["extensions"]["code"] for e in body.get("errors", [])}


async def given_a_member_of_sh01(api):
    registered = await api.gql(
        "mutation($p: String!) { registerMember(input: {phone: $p}) { member { id } } }", {"p": PHONE}, as_="sh01.clerk"
    )
    member = registered["data"]["registerMember"]["member"]["id"]
    token = await api.token(f"member:wx-views:{PHONE}")
    return member, token


async def test_views_are_kept_once_per_product_and_minute_and_the_member_sees_and_clears_them(api, state, chain):
    library = await make_library(state, products=3)
    products = [gid("Product", p) for p in library.product_ids]
    _member, token = await given_a_member_of_sh01(api)
    store = gid("Store", chain.stores["SH01"])
    first = (await api.post(RECORD, {"p": products[:2], "s": store}, token=token)).json()["data"]
    again = (await api.post(RECORD, {"p": [products[1], products[1]], "s": store}, token=token)).json()["data"]
    assert first["recordProductViews"] == {"errors": [], "recorded": 2}
    assert again["recordProductViews"] == {"errors": [], "recorded": 0}
    history = (await api.post(HISTORY, {"n": 10}, token=token)).json()["data"]["myBrowsingHistory"]
    assert sorted(e["node"]["product"]["name"] for e in history["edges"]) == ["商品0", "商品1"]
    assert {e["node"]["store"]["code"] for e in history["edges"]} == {"SH01"}
    cleared = (await api.post(CLEAR, token=token)).json()["data"]["clearMyBrowsingHistory"]
    assert cleared == {"errors": [], "cleared": 2}
    empty = (await api.post(HISTORY, {"n": 10}, token=token)).json()["data"]["myBrowsingHistory"]
    assert empty["edges"] == []


async def test_only_members_record_and_read_a_history(api, state):
    library = await make_library(state, products=1)
    body = await api.gql(RECORD, {"p": [gid("Product", library.product_ids[0])]}, as_="sh01.manager")
    assert codes(body) == {"FORBIDDEN"}
    assert codes(await api.gql(HISTORY, {"n": 5}, as_="hq.admin")) == {"FORBIDDEN"}
    assert codes(await api.gql(HISTORY, {"n": 5})) == {"UNAUTHENTICATED"}


async def test_the_store_sees_the_categories_a_member_looks_at_and_another_store_sees_no_member(api, state):
    library = await make_library(state, products=3)
    member, token = await given_a_member_of_sh01(api)
    products = [gid("Product", p) for p in library.product_ids]
    await api.post(RECORD, {"p": products}, token=token)
    seen = await api.gql(CATEGORIES, {"id": member}, as_="sh01.manager")
    assert seen["data"]["node"]["viewedCategories"] == [
        {"views": 2, "category": {"name": "咖啡"}},
        {"views": 1, "category": {"name": "食品"}},
    ]
    mine = (await api.post(CATEGORIES, {"id": member}, token=token)).json()
    assert mine["data"]["node"]["viewedCategories"][0]["views"] == 2
    elsewhere = await api.gql(CATEGORIES, {"id": member}, as_="sh02.manager")
    nowhere = await api.gql(CATEGORIES, {"id": gid("Member", 999_999)}, as_="sh02.manager")
    assert elsewhere["data"]["node"] is None and elsewhere == nowhere


async def test_recording_views_is_rate_limited_per_member(api, state):
    library = await make_library(state, products=1)
    _member, token = await given_a_member_of_sh01(api)
    product = [gid("Product", library.product_ids[0])]
    bodies = [(await api.post(RECORD, {"p": product}, token=token)).json() for _ in range(21)]
    assert all("errors" not in b for b in bodies[:20])
    assert codes(bodies[20]) == {"RATE_LIMITED"}


@pytest.mark.postgres_too
async def test_concurrent_batches_of_the_same_views_keep_one_per_product_and_minute(api, state):
    library = await make_library(state, products=2)
    await given_a_member_of_sh01(api)
    async with state.sessionmaker() as session:
        from models import MemberIdentity

        member_id = await session.scalar(select(MemberIdentity.member_id).where(MemberIdentity.subject == "wx-views"))
    viewer = Viewer(kind=ViewerKind.MEMBER, member_id=member_id)
    now = utcnow()

    async def record() -> int:
        async with write_transaction(state.sessionmaker) as session:
            return await browsing.record_views(session, viewer, product_ids=library.product_ids, store_id=None, now=now)

    recorded = await asyncio.gather(*(record() for _ in range(4)))
    assert sum(recorded) == 2
    async with state.sessionmaker() as session:
        assert await session.scalar(select(func.count(ProductView.id))) == 2


async def test_the_daily_job_purges_views_older_than_90_days(api, state):
    assert browsing in JOB_DOMAINS and "members.views_purge" in jobs.HANDLERS
    library = await make_library(state, products=2)
    await given_a_member_of_sh01(api)
    async with state.sessionmaker() as session:
        from models import MemberIdentity

        member_id = await session.scalar(select(MemberIdentity.member_id).where(MemberIdentity.subject == "wx-views"))
    viewer = Viewer(kind=ViewerKind.MEMBER, member_id=member_id)
    now = utcnow()
    async with write_transaction(state.sessionmaker) as session:
        await browsing.record_views(session, viewer, product_ids=library.product_ids[:1], store_id=None, now=now)
        old = now - timedelta(days=91)
        await browsing.record_views(session, viewer, product_ids=library.product_ids[1:], store_id=None, now=old)
    async with write_transaction(state.sessionmaker) as session:
        assert await browsing.purge(session, now) == 1
        assert await browsing.purge(session, now) == 0
        left = (await session.scalars(select(ProductView.product_id))).all()
    assert left == library.product_ids[:1]


async def test_recommendations_weigh_views_after_purchases(api, state):
    library = await make_library(state, products=3, skus_per_product=1)
    await given_a_member_of_sh01(api)
    async with state.sessionmaker() as session:
        from models import MemberIdentity

        member_id = await session.scalar(select(MemberIdentity.member_id).where(MemberIdentity.subject == "wx-views"))
    viewer = Viewer(kind=ViewerKind.MEMBER, member_id=member_id)
    now = utcnow()
    async with write_transaction(state.sessionmaker) as session:
        for minute in range(3):
            await browsing.record_views(
                session, viewer, product_ids=library.product_ids[2:], store_id=None, now=now - timedelta(minutes=minute)
            )
        await browsing.record_views(session, viewer, product_ids=library.product_ids[:1], store_id=None, now=now)
    async with state.sessionmaker() as session:
        looked = await recommendations._viewed(session, member_id, now, 10)
    assert [(int(s), int(n)) for s, _c, n in looked] == [(library.sku_ids[2], 3), (library.sku_ids[0], 1)]


@pytest.mark.parametrize("n", [10, 100])
async def test_a_members_history_is_constant_in_statements(api, state, n):
    library = await make_library(state, products=100, skus_per_product=1)
    _member, token = await given_a_member_of_sh01(api)
    async with state.sessionmaker() as session:
        from models import MemberIdentity

        member_id = await session.scalar(select(MemberIdentity.member_id).where(MemberIdentity.subject == "wx-views"))
    viewer = Viewer(kind=ViewerKind.MEMBER, member_id=member_id)
    async with write_transaction(state.sessionmaker) as session:
        await browsing.record_views(session, viewer, product_ids=library.product_ids[:50], store_id=None)
        await browsing.record_views(
            session, viewer, product_ids=library.product_ids[50:], store_id=None, now=utcnow() - timedelta(minutes=1)
        )
    with count_statements(state.engine) as counter:
        body = (await api.post(HISTORY, {"n": n}, token=token)).json()
    assert "errors" not in body, body
    assert len(body["data"]["myBrowsingHistory"]["edges"]) == n
    # viewer, page, products, categories (stores: none recorded): the same for 10 and 100.
    assert counter.count == 4, counter.statements

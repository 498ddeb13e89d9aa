"""HQ creates, edits, opens and closes stores; visitors list them and find the nearest."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from models import Store, StoreStatus
from services.org.stores import distance_km, is_open_at

STORE_FIELDS = "{ id code name city status hours { weekday opens closes } timezone phone }"


async def test_hq_creates_edits_and_opens_a_store(api):
    created = await api.gql(
        'mutation { createStore(input: {code: "nj01", name: "新街口店", city: "南京", address: "中山路1号", lat: 32.04,'
        ' lng: 118.78, hours: [{weekday: 0, opens: "09:00", closes: "21:00"}]}) { errors { code } store'
        + STORE_FIELDS
        + " } }",
        as_="hq.admin",
    )
    store = created["data"]["createStore"]["store"]
    assert store["code"] == "NJ01" and store["status"] == "PREPARING"
    assert store["hours"] == [{"weekday": 0, "opens": "09:00", "closes": "21:00"}]
    updated = await api.gql(
        'mutation($id: ID!) { updateStore(input: {id: $id, phone: "025-1234", timezone: "Asia/Shanghai"}) { store { phone } } }',
        {"id": store["id"]},
        as_="hq.admin",
    )
    assert updated["data"]["updateStore"]["store"]["phone"] == "025-1234"
    opened = await api.gql(
        "mutation($id: ID!) { setStoreStatus(input: {id: $id, status: OPEN}) { store { status } } }",
        {"id": store["id"]},
        as_="hq.admin",
    )
    assert opened["data"]["setStoreStatus"]["store"]["status"] == "OPEN"
    public = await api.gql("query($id: ID!) { store(id: $id) { name } }", {"id": store["id"]})
    assert public["data"]["store"]["name"] == "新街口店"


async def test_unknown_time_zone_is_refused(api, chain):
    from tests.conftest import gid

    body = await api.gql(
        'mutation($id: ID!) { updateStore(input: {id: $id, timezone: "Mars/Olympus"}) { errors { code field } } }',
        {"id": gid("Store", chain.stores["SH01"])},
        as_="hq.admin",
    )
    assert body["data"]["updateStore"]["errors"] == [{"code": "INVALID_INPUT", "field": "timezone"}]


@pytest.mark.postgres_too
async def test_stores_filter_by_city_status_and_search(api):
    async def codes(filter_):
        body = await api.gql(
            "query($f: StoreFilterInput) { stores(first: 50, filter: $f) { edges { node { code } } } }", {"f": filter_}
        )
        return [e["node"]["code"] for e in body["data"]["stores"]["edges"]]

    assert await codes({"city": "杭州"}) == ["HZ01", "HZ02", "HZ03"]
    assert await codes({"search": "湖"}) == ["HZ01", "SZ02"]
    assert await codes({"search": "sz0"}) == ["SZ01", "SZ02"]
    assert len(await codes({"status": "OPEN"})) == 9
    assert await codes({"status": "CLOSED"}) == []


async def test_stores_paginate_with_cursors_without_gaps_or_repeats(api):
    seen, after = [], None
    while True:
        body = await api.gql(
            "query($a: String) { stores(first: 4, after: $a) { edges { node { code } } pageInfo { hasNextPage endCursor } } }",
            {"a": after},
        )
        conn = body["data"]["stores"]
        seen += [e["node"]["code"] for e in conn["edges"]]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == 9


@pytest.mark.postgres_too
async def test_nearby_stores_are_ordered_by_distance_within_the_radius(api):
    body = await api.gql(
        "{ nearbyStores(lat: 31.2335, lng: 121.4737, radiusKm: 8) { edges { node { code distanceKm } } } }"
    )
    nodes = [e["node"] for e in body["data"]["nearbyStores"]["edges"]]
    assert [n["code"] for n in nodes][:1] == ["SH02"]
    assert {n["code"] for n in nodes} == {"SH01", "SH02", "SH03", "SH04"}
    distances = [n["distanceKm"] for n in nodes]
    assert distances == sorted(distances) and distances[-1] <= 8
    far = await api.gql("{ nearbyStores(lat: 30.2590, lng: 120.1641, radiusKm: 50) { edges { node { city } } } }")
    assert {e["node"]["city"] for e in far["data"]["nearbyStores"]["edges"]} == {"杭州"}


async def test_closed_stores_are_not_nearby(api, chain):
    from tests.conftest import gid

    await api.gql(
        "mutation($id: ID!) { setStoreStatus(input: {id: $id, status: CLOSED}) { errors { code } } }",
        {"id": gid("Store", chain.stores["SH02"])},
        as_="hq.admin",
    )
    body = await api.gql("{ nearbyStores(lat: 31.2335, lng: 121.4737, radiusKm: 1) { edges { node { code } } } }")
    assert body["data"]["nearbyStores"]["edges"] == []


def test_distance_is_great_circle():
    # Shanghai People's Square to Hangzhou West Lake is about 165 km.
    assert 160 < distance_km(31.2335, 121.4737, 30.2590, 120.1641) < 170


def test_opening_hours_follow_the_store_time_zone_and_cross_midnight():
    store = Store(
        status=StoreStatus.OPEN, timezone="Asia/Shanghai", hours=[{"weekday": 0, "opens": "22:00", "closes": "02:00"}]
    )
    # Monday 23:30 and Tuesday 01:30 in Shanghai are open; Tuesday 03:00 is not.
    assert is_open_at(store, datetime(2026, 11, 23, 15, 30, tzinfo=UTC))
    assert is_open_at(store, datetime(2026, 11, 23, 17, 30, tzinfo=UTC))
    assert not is_open_at(store, datetime(2026, 11, 23, 19, 0, tzinfo=UTC))
    store.status = StoreStatus.CLOSED
    assert not is_open_at(store, datetime(2026, 11, 23, 15, 30, tzinfo=UTC))


async def test_the_demo_menu_loads_once_into_every_store(api, state):
    from services.platform.db import write_transaction
    from services.seed import DEMO_MENU, seed_demo_catalog

    async with write_transaction(state.sessionmaker) as session:
        assert await seed_demo_catalog(session) is True
    async with write_transaction(state.sessionmaker) as session:
        assert await seed_demo_catalog(session) is False
    body = await api.gql(
        "{ nearbyStores(lat: 31.31, lng: 120.63, radiusKm: 5) { edges { node { menu(first: 50) { edges { node { availability } } } } } } }"
    )
    menus = [e["node"]["menu"]["edges"] for e in body["data"]["nearbyStores"]["edges"]]
    skus = sum(len(skus) for _, _, skus in DEMO_MENU)
    assert menus and all(len(m) == skus and {x["node"]["availability"] for x in m} == {"IN_STOCK"} for m in menus)

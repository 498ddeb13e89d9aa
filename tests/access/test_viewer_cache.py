"""The session check remembered per token: a signed-in request costs no database round trip after the first, and
nothing that ends or changes a session waits for the cache: logout, disabling and a role change act on the next
request, on this instance at once and on another instance as the broadcast arrives."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from app import create_app
from services.access.auth import ACCESS_CHANGED, SESSION_REVOKED
from services.access.scope import Viewer, ViewerKind
from services.access.viewer_cache import ViewerCache
from services.org.settings import SettingsMemo, update_settings
from services.platform.db import write_transaction
from services.platform.events import Event, pending
from services.platform.public_reads import PUBLIC_CHANGED
from tests.conftest import Api, count_statements, gid
from tests.factories import list_in_store, make_library
from tests.instances import two_instances

ME = "{ me { ... on StaffViewer { staff { username } } } }"
LOGOUT = "mutation { logout { errors { code } } }"


def _viewer(session_id: int) -> Viewer:
    return Viewer(kind=ViewerKind.MEMBER, member_id=1, session_id=session_id)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_given_a_remembered_token_when_its_session_ends_then_the_next_check_reads_again():
    clock, reads = Clock(), []
    cache = ViewerCache(ttl_s=5, clock=clock)

    async def read() -> tuple[Viewer, float]:
        reads.append(1)
        return _viewer(7), time.time() + 900

    assert (await cache.check("t", read)).session_id == 7
    await cache.check("t", read)
    assert len(reads) == 1  # remembered
    cache.apply(Event(SESSION_REVOKED, {"sessionIds": [7]}))
    await cache.check("t", read)
    assert len(reads) == 2  # read again (and would be refused by the database)
    clock.now += 4.9
    await cache.check("t", read)
    assert len(reads) == 3  # an ended session is never remembered while a stale check could still arrive
    clock.now += 20
    await cache.check("t", read)
    await cache.check("t", read)
    assert len(reads) == 4  # long after: remembered again (the database decides)


async def test_given_a_check_in_flight_when_access_changes_then_its_result_is_not_remembered():
    cache = ViewerCache(ttl_s=5)
    started, release, reads = asyncio.Event(), asyncio.Event(), []

    async def slow_read() -> tuple[Viewer, float]:
        reads.append(1)
        started.set()
        await release.wait()
        return _viewer(3), time.time() + 900

    check = asyncio.create_task(cache.check("t", slow_read))
    await started.wait()
    cache.apply(Event(ACCESS_CHANGED, {"roleId": 1}))
    release.set()
    await check
    await cache.check("t", slow_read)
    assert len(reads) == 2


async def test_given_an_entry_past_its_ttl_or_its_token_expiry_then_it_is_read_again():
    clock, reads = Clock(), []
    cache = ViewerCache(ttl_s=5, clock=clock)

    async def read_expiring() -> tuple[Viewer, float]:
        reads.append(1)
        return _viewer(1), time.time() + 0.2

    await cache.check("a", read_expiring)
    await asyncio.sleep(0.25)
    await cache.check("a", read_expiring)
    assert len(reads) == 2  # the token expired before the cache's ttl: never served past it
    clock.now += 5
    await cache.check("a", read_expiring)
    assert len(reads) == 3


async def test_given_the_cache_on_when_a_manager_signs_in_then_later_requests_read_no_session(state, settings):
    state.viewers = ViewerCache(ttl_s=5)
    app = create_app(state=state)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        api = Api(http)
        token = await api.token("sh01.manager")
        assert (await api.post(ME, token=token)).json()["data"]["me"]["staff"]["username"] == "sh01.manager"
        with count_statements(state.engine) as counter:
            await api.post("{ __typename }", token=token)
        assert counter.count == 0
        # Logging out acts on the very next request on this instance.
        assert (await api.post(LOGOUT, token=token)).json()["data"]["logout"]["errors"] == []
        refused = await api.post(ME, token=token)
        assert refused.status_code == 401 and refused.json()["errors"][0]["extensions"]["reason"] == "SESSION_REVOKED"


async def test_given_the_cache_on_when_a_clerk_is_disabled_then_their_next_request_is_refused(state, chain):
    state.viewers = ViewerCache(ttl_s=5)
    app = create_app(state=state)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        api = Api(http)
        clerk = await api.token("sh01.clerk")
        assert (await api.post(ME, token=clerk)).status_code == 200
        clerk_id = gid("Staff", chain.staff["sh01.clerk"])
        body = await api.gql(
            "mutation($id: ID!) { setStaffActive(input: {id: $id, active: false}) { errors { code } } }",
            {"id": clerk_id},
            as_="hq.admin",
        )
        assert body["data"]["setStaffActive"]["errors"] == [], body
        assert (await api.post(ME, token=clerk)).status_code == 401


@pytest.mark.postgres_only
async def test_given_two_instances_when_a_session_ends_on_one_then_the_other_refuses_it(state, settings, redis_url):
    async with two_instances(settings, redis_url, session_cache_s=30.0) as (a, b):
        token = await a.api.token("sh01.manager")
        assert (await b.api.post(ME, token=token)).status_code == 200  # B now remembers it (for 30 s)
        await asyncio.sleep(0.3)  # both instances listen to the broadcast
        assert (await a.api.post(LOGOUT, token=token)).json()["data"]["logout"]["errors"] == []
        statuses = []
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            statuses.append((await b.api.post(ME, token=token)).status_code)
            if statuses[-1] == 401:
                break
            await asyncio.sleep(0.02)
        assert statuses[-1] == 401, statuses  # within a second on B, though B would remember it for 30


STOCK = "query($s: ID!) { node(id: $s) { ... on Store { stockLevels { edges { node { lowThreshold } } } } } }"
SET_LOW = "mutation($n: Int!) { updateChainSettings(input: {defaultLowStockThreshold: $n}) { errors { code } } }"


async def test_given_remembered_chain_settings_when_hq_changes_them_then_the_next_read_shows_the_change(
    state, chain, api
):
    state.chain_settings = SettingsMemo(ttl_s=30)
    library = await make_library(state, products=1, skus_per_product=2)
    await list_in_store(state, chain.stores["SH01"], library.sku_ids, on_hand=10)
    store = gid("Store", chain.stores["SH01"])

    async def thresholds() -> set[int]:
        body = await api.gql(STOCK, {"s": store}, as_="sh01.manager")
        return {e["node"]["lowThreshold"] for e in body["data"]["node"]["stockLevels"]["edges"]}

    assert await thresholds() == {5}
    with count_statements(state.engine) as counter:
        assert await thresholds() == {5}
    assert not [s for s in counter.statements if "FROM settings" in s]  # remembered by the instance
    assert (await api.gql(SET_LOW, {"n": 9}, as_="hq.admin"))["data"]["updateChainSettings"]["errors"] == []
    assert await thresholds() == {9}


async def test_remembered_settings_are_forgotten_by_whichever_announcement_of_a_change_arrives_first(state):
    """settings.changed and public.changed travel on two channels: an instance that hears the public one first
    must not make a menu again with the old low-stock line."""
    memo = SettingsMemo(ttl_s=30)
    assert (await memo.get(state.read_sessionmaker)).default_low_stock_threshold == 5
    async with write_transaction(state.sessionmaker) as session:
        await update_settings(session, default_low_stock_threshold=9)
        announced = list(pending(session.info))
    for event in announced:
        if event.topic == PUBLIC_CHANGED:
            memo.apply(event)  # settings.changed has not arrived yet
    assert (await memo.get(state.read_sessionmaker)).default_low_stock_threshold == 9

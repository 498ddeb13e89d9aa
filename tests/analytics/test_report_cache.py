"""The HQ dashboard computed once per scope and period: served from the instance's memory until a fold changes the
facts it read, on this instance and (through Redis) on the others; never shared across scopes."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from app import create_app
from bench.dashboard import DASHBOARD
from models import PaymentMethod, utcnow
from resolvers.state import AppState
from services.access.viewer_cache import ViewerCache
from services.analytics import report_cache
from services.analytics.facts import FACTS_FOLDED
from services.analytics.report_cache import Reads, ReportCache
from services.orders import pos
from services.org.settings import SETTINGS_CHANGED
from services.platform import jobs
from services.platform.db import write_transaction
from services.platform.events import Event
from services.pricing.engine import CartLine, quote
from tests.analytics.test_report_fold import serving_with_lifespan
from tests.conftest import Api, count_statements, gid, mint_token
from tests.factories import HQ
from tests.instances import two_instances
from tests.marketing_givens import Menu, given_menu

SALES = """query($s: ID, $from: Date, $to: Date) { salesReport(storeId: $s, from: $from, to: $to, top: 5) {
  totals { orders net gmv refunds } previous { orders net } series { label figures { orders net } }
  byHour { label figures { orders } } byChannel { label figures { net } } topProducts { label quantity net }
  freshness { asOf pendingEvents } } }"""
RANKING = """query($from: Date, $to: Date) { storeRanking(from: $from, to: $to, first: 5) {
  rows { rank figures { net orders } } } }"""


def _window(store: str | None = None) -> dict[str, Any]:
    today = utcnow().date()
    return {"s": store, "from": (today - timedelta(days=1)).isoformat(), "to": (today + timedelta(days=1)).isoformat()}


async def _sell(state: AppState, store: int, sku: int, quantity: int, key: str) -> None:
    lines = [CartLine(sku, quantity)]
    async with write_transaction(state.sessionmaker) as session:
        total = (await quote(session, store_id=store, lines=lines, member_id=None)).total
        await pos.checkout(session, HQ, pos.Checkout(store, key, lines, [pos.Tender(PaymentMethod.CASH, total)]))


async def _fold(state: AppState) -> None:
    """What the app's runner does every FACTS_INTERVAL_S: the registered work, with the app's broker."""
    await jobs.PERIODIC["facts.fold"].work(state.sessionmaker, state.broker)


async def _totals(api: Api, who: str, store: str | None = None) -> dict[str, int]:
    body = await api.gql(SALES, _window(store), as_=who)
    assert "errors" not in body, body
    totals: dict[str, int] = body["data"]["salesReport"]["totals"]
    return totals


@pytest.fixture
def cached(state: AppState) -> AppState:
    """The app's state with the report cache on (and the session check remembered, so a cached answer reads nothing)."""
    state.report_cache = ReportCache(ttl_s=60)
    state.viewers = ViewerCache(ttl_s=60)
    return state


async def _sold(state: AppState, chain: Any) -> Menu:
    menu = await given_menu(state, chain)
    await _sell(state, menu.store, menu.a, 2, "c-1")
    await _sell(state, menu.other_store, menu.b, 1, "c-2")
    await _fold(state)
    return menu


@pytest.mark.postgres_too
async def test_given_the_dashboard_asked_once_then_the_next_ask_reads_nothing_and_answers_the_same(cached, chain, api):
    await _sold(cached, chain)
    cached.report_cache.ttl_s = 0  # the answer computed per request, as without the cache
    uncached = await api.gql(SALES, _window(), as_="hq.admin")
    cached.report_cache.ttl_s = 60
    first = await api.gql(SALES, _window(), as_="hq.admin")
    with count_statements(cached.engine) as counter:
        second = await api.gql(SALES, _window(), as_="hq.admin")
    assert counter.count == 0, counter.statements
    assert second == first
    for body in (uncached, first):
        body["data"]["salesReport"]["freshness"].pop("asOf")  # the time it was read
    assert first == uncached
    assert first["data"]["salesReport"]["totals"]["orders"] == 2


async def test_the_whole_hq_dashboard_asked_again_reads_nothing(cached, chain, api):
    """The bench's document: the sales report and the store ranking with each ranked store's code and name."""
    await _sold(cached, chain)
    first = await api.gql(DASHBOARD, as_="hq.admin")
    assert "errors" not in first and len(first["data"]["storeRanking"]["rows"]) == 2
    with count_statements(cached.engine) as counter:
        again = await api.gql(DASHBOARD, as_="hq.admin")
    assert counter.count == 0, counter.statements
    assert again == first


async def test_a_store_renamed_shows_its_new_name_in_the_cached_ranking(cached, chain, api):
    """The ranking names its stores as it read them; a store's rename is announced and the answer made again."""
    menu = await _sold(cached, chain)
    first = await api.gql(DASHBOARD, as_="hq.admin")
    assert "errors" not in first, first
    rename = 'mutation($id: ID!) { updateStore(input: {id: $id, name: "改名门店"}) { errors { code } } }'
    body = await api.gql(rename, {"id": gid("Store", menu.store)}, as_="hq.admin")
    assert body["data"]["updateStore"]["errors"] == [], body
    again = await api.gql(DASHBOARD, as_="hq.admin")
    names = [row["store"]["name"] for row in again["data"]["storeRanking"]["rows"]]
    assert "改名门店" in names, names


async def test_given_a_cached_dashboard_when_another_hq_session_asks_then_it_is_shared(cached, chain, api):
    await _sold(cached, chain)
    first = (await api.post(SALES, _window(), await api.token("hq.admin"))).json()
    other = await mint_token(cached, "hq.admin")  # another sign-in: the cache keys on scope, not on the session
    await api.post("{ __typename }", None, other)  # its session check, remembered
    with count_statements(cached.engine) as counter:
        shared = (await api.post(SALES, _window(), other)).json()
    assert counter.count == 0 and shared == first and len(cached.report_cache) == 1


async def test_viewers_of_another_scope_never_share_an_answer(cached, chain, api):
    menu = await _sold(cached, chain)
    chain_wide = await _totals(api, "hq.admin")
    sh01, sh02 = gid("Store", menu.store), gid("Store", menu.other_store)
    # HQ's chain-wide answer is cached; each store's manager gets their own store's figures, never HQ's.
    own = await _totals(api, "sh01.manager")
    other = await _totals(api, "sh02.manager")
    assert chain_wide["orders"] == 2 and own["orders"] == 1 and other["orders"] == 1
    assert own != other and own["net"] + other["net"] == chain_wide["net"]
    # HQ narrowed to one store is another entry again, and agrees with that store's manager.
    assert await _totals(api, "hq.admin", sh02) == other and await _totals(api, "hq.admin", sh01) == own
    # A manager naming another store is refused, though HQ's answer for it is in the cache.
    refused = await api.gql(SALES, _window(sh02), as_="sh01.manager")
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # Another HQ role that sees the same (every store, with cost) shares the admin's answer.
    before = len(cached.report_cache)
    assert await _totals(api, "hq.analyst") == chain_wide
    assert len(cached.report_cache) == before
    # The ranking: a store's manager sees their own row only, though HQ's full ranking is cached.
    hq_rows = (await api.gql(RANKING, _window(), as_="hq.admin"))["data"]["storeRanking"]["rows"]
    own_rows = (await api.gql(RANKING, _window(), as_="sh01.manager"))["data"]["storeRanking"]["rows"]
    assert len(hq_rows) >= 2 and len(own_rows) == 1 and own_rows[0]["figures"]["orders"] == 1


def test_who_sees_cost_is_part_of_the_scope():
    from models import RoleScope
    from services.access.scope import Viewer, ViewerKind

    def staff(scope: RoleScope, store: int | None, *perms: str) -> Viewer:
        return Viewer(kind=ViewerKind.STAFF, role_scope=scope, store_id=store, permissions=frozenset(perms))

    with_cost = staff(RoleScope.HQ, None, "report.view", "catalog.view_cost")
    without = staff(RoleScope.HQ, None, "report.view")
    manager = staff(RoleScope.STORE, 1, "report.view", "catalog.view_cost")
    assert report_cache.scope(with_cost, None) == report_cache.scope(replace(with_cost, staff_id=9), None)
    assert report_cache.scope(with_cost, None) != report_cache.scope(without, None)
    # HQ narrowed to store 1 and store 1's manager: the same stores, but not the same margin rule.
    assert report_cache.scope(with_cost, [1]) != report_cache.scope(manager, [1])
    assert report_cache.scope(manager, [1]) != report_cache.scope(manager, [2])


async def test_given_the_cache_on_when_sales_are_folded_then_the_next_dashboard_shows_them(cached, chain, api):
    menu = await _sold(cached, chain)
    follower = asyncio.create_task(cached.follow_announcements())  # as the app's lifespan starts it
    try:
        await asyncio.sleep(0)  # the follower subscribes
        assert (await _totals(api, "hq.admin"))["orders"] == 2
        assert (await _totals(api, "sh02.manager"))["orders"] == 1
        await _sell(cached, menu.store, menu.a, 1, "c-3")
        assert (await _totals(api, "hq.admin"))["orders"] == 2  # not folded yet: the cached answer holds
        await _fold(cached)
        for _ in range(100):  # the announcement reaches the follower within a few turns of the loop
            if len(cached.report_cache) < 2:
                break
            await asyncio.sleep(0.01)
        assert (await _totals(api, "hq.admin"))["orders"] == 3
        # SH01's sale dropped HQ's answer (it reads every store), not SH02's manager's.
        assert len(cached.report_cache) == 2
    finally:
        follower.cancel()


async def test_a_cached_answer_that_counted_pending_events_does_not_keep_counting_them(cached, chain, api):
    menu = await _sold(cached, chain)
    follower = asyncio.create_task(cached.follow_announcements())
    try:

        async def pending() -> int:
            body = await api.gql(SALES, _window(), as_="sh02.manager")
            return int(body["data"]["salesReport"]["freshness"]["pendingEvents"])

        await _sell(cached, menu.store, menu.a, 1, "p-1")  # SH01's: not in SH02's figures, but pending chain-wide
        assert await pending() == 1
        assert len(cached.report_cache) == 1
        await _fold(cached)  # folds SH01's facts only; SH02's answer said one event was pending
        for _ in range(100):
            if len(cached.report_cache) == 0:
                break
            await asyncio.sleep(0.01)
        assert await pending() == 0
    finally:
        follower.cancel()


@pytest.mark.postgres_too
async def test_a_sale_reaches_the_cached_dashboard_through_the_running_apps_own_fold(state, chain):
    """The running app (lifespan: its runner folds every 0.2 s here, its follower listens): with a cache that would
    keep the answer for a minute, the sale shows as soon as a fold takes it in."""
    menu = await given_menu(state, chain)
    running = replace(state, settings=replace(state.settings, facts_interval_s=0.2), report_cache=ReportCache(ttl_s=60))
    async with (
        serving_with_lifespan(create_app(state=running)) as server,
        httpx.AsyncClient(base_url=f"http://{server}") as http,
    ):
        api = Api(http)
        assert (await _totals(api, "hq.admin"))["orders"] == 0
        assert len(running.report_cache) == 1
        await _sell(state, menu.store, menu.a, 2, "run-1")
        totals: dict[str, int] = {}
        for _ in range(100):  # at most ~10 s, against a minute's TTL
            totals = await _totals(api, "hq.admin")
            if totals["orders"] == 1:
                break
            await asyncio.sleep(0.1)
        assert totals["orders"] == 1


async def test_concurrent_asks_for_one_answer_compute_it_once(cached, chain, api):
    await _sold(cached, chain)
    with count_statements(cached.engine) as one:
        await _totals(api, "hq.admin")
    cached.report_cache.clear()
    await api.token("hq.admin")
    with count_statements(cached.engine) as twenty:
        answers = await asyncio.gather(*(_totals(api, "hq.admin") for _ in range(20)))
    assert len({tuple(a.items()) for a in answers}) == 1
    facts = [s for s in twenty.statements if "store_day_facts" in s]
    assert len(facts) == len([s for s in one.statements if "store_day_facts" in s])


async def test_the_cache_computes_once_and_keeps_nothing_an_announcement_overtook():
    cache, calls = ReportCache(ttl_s=60), []
    release = asyncio.Event()
    reads = Reads(None, date(2026, 1, 1), date(2026, 1, 31))

    async def compute() -> int:
        calls.append(1)
        n = len(calls)
        await release.wait()
        return n

    asks = [asyncio.create_task(cache.get("k", compute, lambda _: reads)) for _ in range(20)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*asks) == [1] * 20 and len(calls) == 1 and len(cache) == 1
    # A fold lands while an answer is computed: that answer is given to who asked, but not kept; an ask after the
    # announcement does not wait for it.
    cache.clear()
    release.clear()
    early = asyncio.create_task(cache.get("k", compute, lambda _: reads))
    await asyncio.sleep(0)
    cache.apply(Event(FACTS_FOLDED, {"stores": [1], "days": ["2026-01-15"]}))
    late = asyncio.create_task(cache.get("k", compute, lambda _: reads))
    await asyncio.sleep(0)
    release.set()
    assert sorted(await asyncio.gather(early, late)) == [2, 3] and len(cache) == 1
    assert await cache.get("k", compute, lambda _: reads) == 3


async def test_a_fold_drops_the_answers_that_read_its_stores_and_days_and_settings_drop_all():
    cache, computed = ReportCache(ttl_s=60), list[str]()
    jan = (date(2026, 1, 1), date(2026, 1, 31))
    answers = {
        "chain": Reads(None, *jan),
        "store 1": Reads(frozenset({1}), *jan),
        "store 2": Reads(frozenset({2}), *jan),
        "store 1 in march": Reads(frozenset({1}), date(2026, 3, 1), date(2026, 3, 31)),
        # Store 2's answer that counted pending events: any fold changes its freshness.
        "store 2 while events pended": Reads(frozenset({2}), *jan, pending=True),
    }

    async def ask_all() -> list[str]:
        computed.clear()
        for key, reads in answers.items():

            async def compute(key: str = key) -> str:
                computed.append(key)
                return key

            def read(_: str, reads: Reads = reads) -> Reads:
                return reads

            assert await cache.get(key, compute, read) == key
        return computed

    assert len(await ask_all()) == 5
    cache.apply(Event(FACTS_FOLDED, {"stores": [1], "days": ["2026-01-31"]}))
    assert await ask_all() == ["chain", "store 1", "store 2 while events pended"]
    cache.apply(Event(SETTINGS_CHANGED, {"keys": ["storesSeeMargin"]}))
    assert len(await ask_all()) == 5


async def test_an_answer_is_kept_no_longer_than_the_ttl_and_a_failure_is_not_kept():
    now = [100.0]
    cache, calls = ReportCache(ttl_s=5, clock=lambda: now[0]), []
    reads = Reads(None, date(2026, 1, 1), date(2026, 1, 1))

    async def compute() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the database went away")
        return len(calls)

    with pytest.raises(RuntimeError):
        await cache.get("k", compute, lambda _: reads)
    assert await cache.get("k", compute, lambda _: reads) == 2
    now[0] += 4.9
    assert await cache.get("k", compute, lambda _: reads) == 2
    now[0] += 0.2
    assert await cache.get("k", compute, lambda _: reads) == 3


@pytest.mark.postgres_only
async def test_given_two_instances_when_one_folds_then_the_others_cached_dashboard_drops(state, chain, redis_url):
    menu = await _sold(state, chain)
    async with two_instances(state.settings, redis_url, run_jobs=False, report_cache_s=60.0) as (a, b):
        assert (await _totals(b.api, "hq.admin"))["orders"] == 2
        assert len(b.state.report_cache) == 1  # B remembers it (for a minute)
        await asyncio.sleep(0.3)  # both instances listen to the broadcast
        sale = await a.api.gql(
            "mutation($in: PosCheckoutInput!) { posCheckout(input: $in) { errors { code } } }",
            {
                "in": {
                    "clientOrderId": "two-1",
                    "storeId": gid("Store", menu.store),
                    "lines": [{"skuId": gid("Sku", menu.a), "quantity": 1}],
                    "tenders": [{"method": "CASH", "amount": 10000}],
                }
            },
            as_="sh01.clerk",
        )
        assert sale["data"]["posCheckout"]["errors"] == [], sale
        assert (await _totals(b.api, "hq.admin"))["orders"] == 2  # not folded yet
        await _fold(a.state)  # A's runner folds: committed, then announced through Redis
        seen: list[int] = []
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            seen.append((await _totals(b.api, "hq.admin"))["orders"])
            if seen[-1] == 3:
                break
            await asyncio.sleep(0.02)
        assert seen[-1] == 3, seen  # within moments on B, though B would keep its answer for a minute

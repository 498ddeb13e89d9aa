"""Load, measured against a baseline: each scenario runs its contenders interleaved (ours, baseline, ours,
baseline, ... for BENCH_ROUNDS rounds) with wrk, so a slow minute on this shared machine falls on both; each round
gives a ratio and the median of the rounds is reported, with requests/s, p50/p99 and the CPU each request cost the
server (its uvicorn processes' utime + stime from /proc, over the requests served). Results go to bench/RESULTS.md.

    make bench-load            (needs `make bench-data` first: PostgreSQL at BENCH_DATABASE_URL; wrk: `make bench-setup`)

Scenarios: the member's menu by query text (never cached) against bench/baseline.py's /menu (the same SQL,
hand-written, orjson, identical JSON); HQ's store list with stock against /stores; the mini-program's trusted
StoreMenu document, anonymous, over 20 stores while a writer moves one listed SKU's availability in each of them
once a second (and how long each change took to show, read on a second instance when Redis is there); 20 HQ users on
the dashboard; a flash sale on one hot SKU against the same load spread over many SKUs (and 0 oversold); then, in
one process, the database statements and CPU of one request, step by step.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event, func, select, update

from bench import cpu, wrk
from bench.dashboard import DASHBOARD, RESULTS, _machine, _merge
from models import (
    CampaignItem,
    CampaignKind,
    Order,
    OrderStatus,
    RoleScope,
    StockLevel,
    Store,
    StoreListing,
    utcnow,
)
from services.access.permissions import Perm
from services.access.scope import Viewer, ViewerKind
from services.marketing import promotions
from services.platform.db import create_engine, create_sessionmaker, write_transaction

ROOT = Path(__file__).resolve().parent.parent
APP_PORT, BASE_PORT, MIRROR_PORT = 8100, 8101, 8102
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
WARMUP = float(os.environ.get("BENCH_WARMUP", "3"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
# The app's instances share events (cache invalidation, sessions) through Redis, as in production; "" for none.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
STORES_USED = 20
# Staleness is read after the writes to this many of the 20 stores (every 10 ms until the change shows): reading after
# all 20 kept about 20 uncached StoreMenu requests running on the second instance, on the same 2 CPUs.
WATCHED = int(os.environ.get("BENCH_STALENESS_STORES", "4"))
AROUND_THE_CLOCK = [{"weekday": d, "opens": "00:00", "closes": "00:00"} for d in range(7)]  # orders at any hour
ON_HAND = 100  # the writer's SKU in each store moves between this (IN_STOCK) and 0 (SOLD_OUT)

MENU = """query($s: ID!) { store(id: $s) { menu(first: 20) { edges { node { listingId price
  sku { barcode product { name } } } } } } }"""
STORES = """{ stores(first: 20) { edges { node { code name stockLevels(first: 5) { edges { node { onHand reserved
  sku { barcode } } } } } } } }"""
QUOTE = (
    """query($s: ID!, $l: [CartLineInput!]!) { quote(input: {storeId: $s, lines: $l}) { total lines { unitPrice } } }"""
)
PLACE = """mutation($s: ID!, $k: ID!, $key: String!) { placeOrder(input: {storeId: $s, lines: [{skuId: $k, quantity: 1}],
  idempotencyKey: $key}) { errors { code } order { id } } }"""
PLACE_FLASH = """mutation($s: ID!, $k: ID!, $f: ID!, $key: String!) { placeOrder(input: {storeId: $s, flashSaleId: $f,
  lines: [{skuId: $k, quantity: 1}], idempotencyKey: $key}) { errors { code } order { id } } }"""
POS = """mutation($s: ID!, $k: ID!, $key: String!) { posCheckout(input: {storeId: $s, clientOrderId: $key,
  lines: [{skuId: $k, quantity: 1}], tenders: [{method: CASH, amount: 1000}]}) { errors { code } order { id } } }"""
COUNT = """mutation($s: ID!, $k: ID!, $q: Int!, $key: String!) { submitStocktake(input: {storeId: $s,
  counts: [{skuId: $k, quantity: $q}], idempotencyKey: $key}) { errors { code message } } }"""
STORE_DASHBOARD = """query($s: ID!) { salesReport(storeId: $s, top: 10) { totals { orders net } previous { net }
  series { label figures { net } } byHour { label figures { orders } } topProducts { label quantity } } }"""
STORE_MENU = "StoreMenu"


def _gid(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def trusted(name: str) -> tuple[str, str]:
    """The mini-program's trusted document by operation name: (documentId, its text)."""
    manifest = json.loads((ROOT / "trusted-documents.json").read_text())
    doc = next(d for d in manifest["operations"] if d["name"] == name and d["frontEnd"] == "mini_program")
    return doc["id"], doc["body"]


@dataclass
class Config:
    stores: list[str]
    store_pks: list[int]
    skus: list[str]  # placeOrder, quote and POS pick among these (not the flash SKU, not the writer's)
    flash_sku: str
    flash_id: str
    flash_pk: int
    flash_sku_pk: int
    watched_sku: str  # the writer moves its stock in each of the 20 stores
    tokens: dict[str, str] = field(default_factory=dict)


async def prepare(url: str) -> Config:
    """Pick 20 stores and 200 SKUs listed in them, open the stores around the clock, give the SKUs deep stock at one
    price, set the writer's SKU to ON_HAND, and set up a flash sale on one hot SKU in the first store."""
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    try:
        async with write_transaction(sessionmaker) as session:
            stores = list(
                (
                    await session.scalars(
                        select(Store.id).where(Store.code.like("G%")).order_by(Store.id).limit(STORES_USED)
                    )
                ).all()
            )
            skus = list(
                (
                    await session.scalars(
                        select(StoreListing.sku_id)
                        .where(StoreListing.store_id == stores[0])
                        .order_by(StoreListing.id)
                        .limit(200)
                    )
                ).all()
            )
            await session.execute(update(Store).where(Store.id.in_(stores)).values(hours=AROUND_THE_CLOCK))
            await session.execute(
                update(StoreListing)
                .where(StoreListing.store_id.in_(stores), StoreListing.sku_id.in_(skus))
                .values(price=1000)
            )
            await session.execute(
                update(StockLevel)
                .where(StockLevel.store_id.in_(stores), StockLevel.sku_id.in_(skus))
                .values(on_hand=10_000_000, reserved=0)
            )
            await session.execute(
                update(StockLevel)
                .where(StockLevel.store_id.in_(stores), StockLevel.sku_id == skus[1])
                .values(on_hand=ON_HAND, reserved=0)
            )
            hq = Viewer(kind=ViewerKind.STAFF, role_scope=RoleScope.HQ, permissions=frozenset({Perm.MARKETING_MANAGE}))
            flash = await promotions.create(
                session,
                hq,
                promotions.NewCampaign(
                    kind=CampaignKind.FLASH_SALE,
                    name="bench flash",
                    starts_at=utcnow(),
                    ends_at=utcnow() + timedelta(hours=2),
                    store_ids=[stores[0]],
                    items=[promotions.ItemSpec(skus[0], price=500, quota=10_000_000, per_member_limit=10_000_000)],
                ),
            )
    finally:
        await engine.dispose()
    return Config(
        stores=[_gid("Store", s) for s in stores],
        store_pks=stores,
        skus=[_gid("Sku", k) for k in skus[2:]],
        flash_sku=_gid("Sku", skus[0]),
        flash_id=_gid("Campaign", flash.id),
        flash_pk=flash.id,
        flash_sku_pk=skus[0],
        watched_sku=_gid("Sku", skus[1]),
    )


class Server:
    """`uvicorn --workers N` in a child process, started once and kept up across rounds."""

    def __init__(self, target: str, port: int, url: str, redis_url: str = "") -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log = open(f"/tmp/bench-server-{port}.log", "wb")  # noqa: SIM115 (open while the server runs)
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "REDIS_URL": redis_url,
            "RUN_JOBS": "0",
            "LOG_LEVEL": "WARNING",
            "APP_ENV": "development",
            "ACCESS_TOKEN_TTL": "14400",  # the tokens in the load scripts outlive the run
        }
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                target,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(WORKERS),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait(self, path: str) -> None:
        for _ in range(300):
            try:
                if httpx.get(self.base + path, timeout=1).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server on {self.port} did not start")

    def cpu_s(self) -> float:
        return cpu.seconds(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)
        self.log.close()


@dataclass(frozen=True)
class Run:
    result: wrk.Result
    cpu_ms: float  # the server's CPU per request

    def row(self) -> dict[str, Any]:
        return {**self.result.as_dict(), "cpu_ms": self.cpu_ms}


@dataclass(frozen=True)
class Contender:
    label: str
    server: Server
    load: wrk.Load
    connections: int = CONNECTIONS
    writer: bool = False  # the stock writer runs during this contender's runs


async def measure(c: Contender, seconds: float) -> Run:
    before = c.server.cpu_s()
    result = await wrk.run(c.server.base, c.load, seconds, connections=c.connections)
    used = c.server.cpu_s() - before
    return Run(result, used / result.requests * 1000 if result.requests else float("nan"))


def _headers(token: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"} if token else {}


def graphql_load(bodies: list[dict[str, Any]], token: str | None = None) -> wrk.Load:
    return wrk.Load(
        paths=["/graphql"], bodies=[json.dumps(b, separators=(",", ":")) for b in bodies], headers=_headers(token)
    )


@dataclass
class Writer:
    """Counts the watched SKU's stock in each store once a second (20 writes/s over 20 stores) through the app's own
    submitStocktake, alternating between ON_HAND and 0 so its availability band flips (a count, not a delta, so a
    write cut off at the end of a run leaves nothing to undo); after each write's answer in the first WATCHED stores
    it reads the StoreMenu document (on `read_base`) until the new band shows, and records how long that took."""

    write_base: str
    read_base: str
    config: Config
    document_id: str
    delays: list[float] = field(default_factory=list)
    writes: int = 0
    seconds: float = 0.0  # how long the writer ran, over all runs
    cost_ms: float = float("nan")  # the app's CPU per write, measured with the writer alone
    unseen: int = 0  # changes not seen within the poll's limit
    superseded: int = 0  # changes not seen before the store's next write (over a second)
    failures: list[str] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    _stopping: bool = False
    _started: float = 0.0
    _polls: set[asyncio.Task[None]] = field(default_factory=set)
    _empty: dict[str, bool] = field(default_factory=dict)
    _generation: dict[str, int] = field(default_factory=dict)

    def start(self) -> None:
        self._stopping = False
        self._started = time.perf_counter()
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        """Let the write in flight finish (its answer tells which band the store is in), then wait for the polls."""
        assert self._task is not None
        self._stopping = True
        await self._task
        self.seconds += time.perf_counter() - self._started
        if self._polls:
            await asyncio.gather(*self._polls, return_exceptions=True)
        self._polls.clear()

    async def _loop(self) -> None:
        """One writer per store, each once a second, started 1/20 s apart: 20 writes/s when the app keeps up."""
        async with httpx.AsyncClient(timeout=30) as client:
            n = len(self.config.stores)
            await asyncio.gather(*(self._store(client, s, i / n) for i, s in enumerate(self.config.stores)))

    async def _store(self, client: httpx.AsyncClient, store: str, offset: float) -> None:
        watched = self.config.stores.index(store) < WATCHED
        await asyncio.sleep(offset)
        next_at = time.perf_counter()
        while not self._stopping:
            empty = not self._empty.get(store, False)  # flip: in stock -> sold out -> in stock
            if await self._write(client, store, 0 if empty else ON_HAND):
                self._empty[store] = empty
                self._generation[store] = self._generation.get(store, 0) + 1
            if watched and self._empty.get(store) is empty:  # this write went through: see when it shows
                done_at = time.perf_counter()
                poll = asyncio.create_task(self._poll(client, store, "SOLD_OUT" if empty else "IN_STOCK", done_at))
                self._polls.add(poll)
                poll.add_done_callback(self._polls.discard)
            next_at += 1.0
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    async def _write(self, client: httpx.AsyncClient, store: str, quantity: int) -> bool:
        variables = {"s": store, "k": self.config.watched_sku, "q": quantity, "key": os.urandom(8).hex()}
        response = await client.post(
            self.write_base + "/graphql",
            json={"query": COUNT, "variables": variables},
            headers=_headers(self.config.tokens["hq"]),
        )
        body = response.json()
        self.writes += 1
        errors = body.get("errors") or (body.get("data") or {}).get("submitStocktake", {}).get("errors")
        if response.status_code != 200 or errors:
            self.failures.append(str(body)[:300])
            print(f"  write failed: {self.failures[-1]}", flush=True)
            return False
        return True

    async def _poll(self, client: httpx.AsyncClient, store: str, band: str, since: float, limit: float = 10) -> None:
        body = {"documentId": self.document_id, "variables": {"storeId": store}}
        generation = self._generation[store]
        while time.perf_counter() - since < limit:
            if self._generation[store] != generation:
                self.superseded += 1
                return
            answer = (await client.post(self.read_base + "/graphql", json=body)).json()
            edges = answer["data"]["store"]["menu"]["edges"]
            shown = next(e["node"]["availability"] for e in edges if e["node"]["sku"]["id"] == self.config.watched_sku)
            if shown == band:
                self.delays.append(time.perf_counter() - since)
                return
            await asyncio.sleep(0.01)
        self.unseen += 1


Rounds = dict[str, list[Run]]  # contender label -> its runs, one per round


async def writer_alone(server: Server, writer: Writer, seconds: float = 5.0) -> float:
    """The app's CPU per write with the writer running alone, to read the cached scenario's CPU per request by."""
    before, writes = server.cpu_s(), writer.writes
    writer.start()
    await asyncio.sleep(seconds)
    await writer.stop()
    done = writer.writes - writes
    used = server.cpu_s() - before
    writer.delays.clear()  # staleness is reported under the read load only
    writer.writes = writer.superseded = writer.unseen = 0
    writer.seconds = 0.0
    return used / done * 1000 if done else float("nan")


async def interleaved(contenders: list[Contender], writer: Writer | None = None) -> Rounds:
    """A warm-up run of each, then ROUNDS rounds of each in turn."""
    runs: Rounds = {c.label: [] for c in contenders}

    async def one(c: Contender, seconds: float) -> Run:
        if c.writer and writer is not None:
            writer.start()
            try:
                return await measure(c, seconds)
            finally:
                await writer.stop()
        return await measure(c, seconds)

    for c in contenders:
        await one(c, WARMUP)
    for r in range(ROUNDS):
        for c in contenders:
            run = await one(c, SECONDS)
            runs[c.label].append(run)
            x = run.result
            print(
                f"  round {r + 1} {c.label}: {x.rps:.0f} req/s, p50 {x.p50_ms:.1f} ms, p99 {x.p99_ms:.1f} ms, "
                f"CPU {run.cpu_ms:.2f} ms/req, failed {x.failed}, socket errors {x.socket_errors}"
                + (f" ({x.sample[:200]})" if x.failed else ""),
                flush=True,
            )
    return runs


async def _oversold(url: str, config: Config) -> dict[str, int]:
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session:
            item = await session.scalar(select(CampaignItem).where(CampaignItem.campaign_id == config.flash_pk))
            level = await session.scalar(
                select(StockLevel).where(
                    StockLevel.store_id == config.store_pks[0], StockLevel.sku_id == config.flash_sku_pk
                )
            )
            held = await session.scalar(
                select(func.count())
                .select_from(Order)
                .where(Order.status == OrderStatus.CREATED, Order.store_id == config.store_pks[0])
            )
    finally:
        await engine.dispose()
    assert item is not None and level is not None
    return {
        "sold": item.sold,
        "quota": item.quota or 0,
        "reserved": level.reserved,
        "on_hand": level.on_hand,
        "unpaid_orders": int(held or 0),
    }


def _cases(config: Config) -> list[tuple[str, dict[str, Any], str | None]]:
    store = {"s": config.stores[0]}
    menu_id, _ = trusted(STORE_MENU)
    return [
        ("GraphQL `{ __typename }`, anonymous", {"query": "{ __typename }"}, None),
        ("the same with a member's token (signature, session check)", {"query": "{ __typename }"}, "member"),
        (
            "+ `store(id) { name }`",
            {"query": "query($s: ID!) { store(id: $s) { name } }", "variables": store},
            "member",
        ),
        (
            "+ `menu(first: 20)`: listing ids and prices",
            {
                "query": "query($s: ID!) { store(id: $s) { menu(first: 20) { edges { node { listingId price } } } } }",
                "variables": store,
            },
            "member",
        ),
        (
            "+ each item's SKU barcode",
            {
                "query": "query($s: ID!) { store(id: $s) { menu(first: 20) { edges { node { listingId price "
                "sku { barcode } } } } } }",
                "variables": store,
            },
            "member",
        ),
        ("the menu as benched (+ product name)", {"query": MENU, "variables": store}, "member"),
        (
            "the mini-program's StoreMenu document, anonymous",
            {"documentId": menu_id, "variables": {"storeId": config.stores[0]}},
            None,
        ),
        ("HQ store list with stock, as benched", {"query": STORES}, "hq"),
    ]


async def in_process(url: str, config: Config, n: int = 100) -> list[tuple[str, float, float]]:
    """Database statements and CPU per request in one process (httpx's ASGI transport: no server, no load
    generator): where our time goes, step by step, next to the baseline's handlers. Statements are counted by a
    SQLAlchemy listener (BEGIN/COMMIT the driver sends are not in it); CPU is the best of three rounds of `n`."""
    from dataclasses import replace

    os.environ["DATABASE_URL"] = url  # bench.baseline's engine, made on import
    from app import GC_YOUNG_THRESHOLD, create_app
    from bench import baseline
    from resolvers.state import build_state
    from services.platform.config import Settings

    state = build_state(replace(Settings.from_env(), database_url=url, run_jobs=False, log_json=False))
    app = create_app(state=state)
    gc.collect()
    gc.freeze()  # as app:app does for the server
    gc.set_threshold(GC_YOUNG_THRESHOLD, 50, 100)
    counted = [0]

    def count(*_: Any) -> None:
        counted[0] += 1

    async def cost(client: httpx.AsyncClient, send: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]) -> float:
        for _ in range(20):
            response = await send(client)
        assert response.status_code == 200 and "errors" not in response.json(), response.text[:300]
        best = float("inf")
        for _ in range(3):
            start = time.process_time()
            for _ in range(n):
                await send(client)
            best = min(best, (time.process_time() - start) / n * 1000)
        return best

    async def statements(
        client: httpx.AsyncClient, send: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]
    ) -> float:
        counted[0] = 0
        for _ in range(20):
            await send(client)
        return counted[0] / 20

    out: list[tuple[str, float, float]] = []
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client,
    ):
        event.listen(state.engine.sync_engine, "before_cursor_execute", count)
        for label, body, who in _cases(config):
            headers = _headers(config.tokens[who] if who else None)

            async def send(
                c: httpx.AsyncClient, b: dict[str, Any] = body, h: dict[str, str] = headers
            ) -> httpx.Response:
                return await c.post("/graphql", json=b, headers=h)

            ms = await cost(client, send)
            out.append((label, await statements(client, send), ms))
        event.remove(state.engine.sync_engine, "before_cursor_execute", count)
    await state.engine.dispose()
    event.listen(baseline.engine.sync_engine, "before_cursor_execute", count)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=baseline.app), base_url="http://bench") as client:
        menu_url = f"/menu?store={config.store_pks[0]}"

        async def base_menu(c: httpx.AsyncClient) -> httpx.Response:
            return await c.get(menu_url)

        async def base_stores(c: httpx.AsyncClient) -> httpx.Response:
            return await c.get("/stores")

        for label, handler in (("baseline: the menu", base_menu), ("baseline: the store list", base_stores)):
            ms = await cost(client, handler)
            out.append((label, await statements(client, handler), ms))
    await baseline.engine.dispose()
    return out


def _sign_in(base: str) -> dict[str, str]:
    from services.seed import DEMO_PASSWORD

    def post(query: str) -> dict[str, Any]:
        body: dict[str, Any] = httpx.post(base + "/graphql", json={"query": query}, timeout=30).json()
        return body

    hq = post(
        f'mutation {{ login(input: {{username: "hq.admin", password: "{DEMO_PASSWORD}"}}) {{ tokens {{ accessToken }} }} }}'
    )["data"]["login"]["tokens"]["accessToken"]
    member = post(
        'mutation { memberSignIn(input: {provider: "local", code: "bench-member"}) { tokens { accessToken } } }'
    )["data"]["memberSignIn"]["tokens"]["accessToken"]
    return {"hq": hq, "member": member}


def _check_identical(app: Server, base: Server, config: Config) -> None:
    """The baseline must answer the very JSON we do, or the ratio compares different work."""
    ours_menu = httpx.post(
        app.base + "/graphql",
        json={"query": MENU, "variables": {"s": config.stores[0]}},
        headers=_headers(config.tokens["member"]),
    ).json()
    base_menu = httpx.get(f"{base.base}/menu?store={config.store_pks[0]}").json()
    ours_stores = httpx.post(
        app.base + "/graphql", json={"query": STORES}, headers=_headers(config.tokens["hq"])
    ).json()
    base_stores = httpx.get(f"{base.base}/stores").json()
    assert ours_menu == base_menu, (ours_menu, base_menu)
    assert ours_stores == base_stores, "the baseline's store list differs from ours"


def scenarios(app: Server, base: Server, config: Config) -> dict[str, list[Contender]]:
    """Each scenario's contenders, run interleaved."""
    t = config.tokens
    rng = random.Random(7)
    menu_id, menu_text = trusted(STORE_MENU)
    by_store = [{"s": s} for s in config.stores]
    pairs = [(rng.choice(config.stores), rng.choice(config.skus)) for _ in range(200)]
    spread = [rng.choice(config.skus) for _ in range(200)]
    key = wrk.KEY
    return {
        "menu": [
            Contender(
                "ours: member menu by query text",
                app,
                graphql_load([{"query": MENU, "variables": v} for v in by_store], t["member"]),
            ),
            Contender(
                "baseline: /menu",
                base,
                wrk.Load(paths=[f"/menu?store={pk}" for pk in config.store_pks], bodies=[], headers={}),
            ),
        ],
        "stores": [
            Contender("ours: HQ store list with stock", app, graphql_load([{"query": STORES}], t["hq"])),
            Contender("baseline: /stores", base, wrk.Load(paths=["/stores"], bodies=[], headers={})),
        ],
        "cached_menu": [
            Contender(
                "ours: StoreMenu by documentId, anonymous, with writes",
                app,
                graphql_load([{"documentId": menu_id, "variables": {"storeId": s}} for s in config.stores]),
                writer=True,
            ),
            Contender(
                "ours: the same text by query, anonymous, with writes",
                app,
                graphql_load([{"query": menu_text, "variables": {"storeId": s}} for s in config.stores]),
                writer=True,
            ),
            Contender(
                "baseline: /menu",
                base,
                wrk.Load(paths=[f"/menu?store={pk}" for pk in config.store_pks], bodies=[], headers={}),
            ),
        ],
        "dashboard": [
            Contender(
                "ours: HQ dashboard, 20 HQ users", app, graphql_load([{"query": DASHBOARD}], t["hq"]), connections=20
            ),
            Contender(
                "ours: a store's dashboard, as HQ",
                app,
                graphql_load([{"query": STORE_DASHBOARD, "variables": v} for v in by_store], t["hq"]),
            ),
        ],
        "writes": [
            Contender(
                "ours: member quote",
                app,
                graphql_load(
                    [{"query": QUOTE, "variables": {"s": s, "l": [{"skuId": k, "quantity": 1}]}} for s, k in pairs],
                    t["member"],
                ),
            ),
            Contender(
                "ours: member placeOrder (pickup, spread over stores and SKUs)",
                app,
                graphql_load(
                    [{"query": PLACE, "variables": {"s": s, "k": k, "key": key}} for s, k in pairs], t["member"]
                ),
            ),
            Contender(
                "ours: clerk POS checkout",
                app,
                graphql_load([{"query": POS, "variables": {"s": s, "k": k, "key": key}} for s, k in pairs], t["hq"]),
            ),
        ],
        "flash": [
            Contender(
                "ours: placeOrder spread over 198 SKUs in one store",
                app,
                graphql_load(
                    [{"query": PLACE, "variables": {"s": config.stores[0], "k": k, "key": key}} for k in spread],
                    t["member"],
                ),
            ),
            Contender(
                "ours: flash sale, placeOrder on one hot SKU",
                app,
                graphql_load(
                    [
                        {
                            "query": PLACE_FLASH,
                            "variables": {
                                "s": config.stores[0],
                                "k": config.flash_sku,
                                "f": config.flash_id,
                                "key": key,
                            },
                        }
                    ],
                    t["member"],
                ),
            ),
        ],
    }


def median(runs: list[Run], attr: str) -> float:
    if attr == "cpu_ms":
        return statistics.median(r.cpu_ms for r in runs)
    return statistics.median(float(getattr(r.result, attr)) for r in runs)


def ratios(a: list[Run], b: list[Run], attr: str = "rps") -> list[float]:
    """Per round, a / b (NaN where b is 0: a run too short for any request to finish)."""

    def value(r: Run) -> float:
        return r.cpu_ms if attr == "cpu_ms" else float(getattr(r.result, attr))

    return [value(x) / value(y) if value(y) else float("nan") for x, y in zip(a, b, strict=True)]


async def run_all(url: str) -> None:
    wrk.which()
    config = await prepare(url)
    app = Server("app:app", APP_PORT, url, REDIS_URL)
    base = Server("bench.baseline:app", BASE_PORT, url)
    mirror = Server("app:app", MIRROR_PORT, url, REDIS_URL) if REDIS_URL else None
    only = set(filter(None, os.environ.get("BENCH_ONLY", "").split(",")))  # a quick look at some; no results file
    results: dict[str, Rounds] = {}
    started = time.perf_counter()
    try:
        app.wait("/healthz")
        base.wait("/stores")
        if mirror is not None:
            mirror.wait("/healthz")
        config.tokens = _sign_in(app.base)
        _check_identical(app, base, config)
        menu_id, _ = trusted(STORE_MENU)
        writer = Writer(app.base, (mirror or app).base, config, menu_id)
        for name, contenders in scenarios(app, base, config).items():
            if only and name not in only:
                continue
            print(f"{name}:", flush=True)
            if name == "cached_menu":
                writer.cost_ms = await writer_alone(app, writer)
                print(f"  the writer alone: {writer.cost_ms:.1f} ms of server CPU a write", flush=True)
            results[name] = await interleaved(contenders, writer if name == "cached_menu" else None)
            if name == "cached_menu":
                # The rest is ours alone: the baseline's and the second instance's pools would hold PostgreSQL
                # connections the dashboard's parallel reads need (max_connections is 100 here, shared).
                for idle in (base, mirror):
                    if idle is not None and idle.proc.poll() is None:
                        idle.stop()
        stock = await _oversold(url, config)
    finally:
        for server in (app, base, mirror):
            if server is not None and server.proc.poll() is None:
                server.stop()
    loaded = time.perf_counter() - started
    steps = await in_process(url, config)
    for label, statements_, ms in steps:
        print(f"  {label}: {statements_:.1f} statements, {ms:.2f} ms CPU", flush=True)
    print(f"stock after the flash sale: {stock}; staleness: {_staleness(writer)}", flush=True)
    if only:
        return
    write_results(url, results, stock, writer, steps, loaded)


def _staleness(w: Writer) -> dict[str, float | int]:
    delays = sorted(w.delays)
    return {
        "writes": w.writes,
        "seen": len(delays),
        "unseen": w.unseen,
        "superseded": w.superseded,
        "failed": len(w.failures),
        "per_s": w.writes / w.seconds if w.seconds else 0.0,
        "p50_ms": statistics.median(delays) * 1000 if delays else float("nan"),
        "max_ms": delays[-1] * 1000 if delays else float("nan"),
    }


def _table(rounds: Rounds) -> str:
    lines = [
        "| contender | req/s (median) | req/s by round | p50 ms | p99 ms | server CPU ms/req | failed |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, runs in rounds.items():
        by_round = ", ".join(f"{r.result.rps:.0f}" for r in runs)
        failed = sum(r.result.failed + r.result.socket_errors for r in runs)
        lines.append(
            f"| {label} | {median(runs, 'rps'):.0f} | {by_round} | {median(runs, 'p50_ms'):.1f} | "
            f"{median(runs, 'p99_ms'):.1f} | {median(runs, 'cpu_ms'):.2f} | {failed} |"
        )
    return "\n".join(lines)


def _ratio_line(what: str, a: list[Run], b: list[Run], note: str = "") -> str:
    rps = ratios(a, b)
    cpu_r = ratios(a, b, "cpu_ms")
    return (
        f"- **{what}: {statistics.median(rps):.2f}x** throughput (rounds: {', '.join(f'{x:.2f}' for x in rps)}); "
        f"CPU per request {statistics.median(cpu_r):.2f}x{note}"
    )


def write_results(
    url: str,
    r: dict[str, Rounds],
    stock: dict[str, int],
    writer: Writer,
    steps: list[tuple[str, float, float]],
    took: float,
) -> None:
    menu, stores, cached, flash = r["menu"], r["stores"], r["cached_menu"], r["flash"]
    m_ours, m_base = menu["ours: member menu by query text"], menu["baseline: /menu"]
    s_ours, s_base = stores["ours: HQ store list with stock"], stores["baseline: /stores"]
    c_doc = cached["ours: StoreMenu by documentId, anonymous, with writes"]
    c_text = cached["ours: the same text by query, anonymous, with writes"]
    c_base = cached["baseline: /menu"]
    f_spread = flash["ours: placeOrder spread over 198 SKUs in one store"]
    f_hot = flash["ours: flash sale, placeOrder on one hot SKU"]
    dash = r["dashboard"]["ours: HQ dashboard, 20 HQ users"]
    st = _staleness(writer)
    step_rows = "\n".join(f"| {label} | {n:.1f} | {ms:.2f} |" for label, n, ms in steps)
    oversold = max(0, stock["sold"] - stock["quota"]) + max(0, stock["reserved"] - stock["on_hand"])
    section = f"""## Load: interleaved against a baseline, wrk

- Date: {datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}
- Machine: {_machine()}
- Data: {url.split("@")[-1]}; 20 generated stores used (menus: their first 20 listings)
- Setup: `uvicorn --workers {WORKERS}` for the app (REDIS_URL {"set: events between its workers and a second instance" if REDIS_URL else "unset"}) and for
  the baseline, both started once; wrk `-t1 -c{CONNECTIONS}` (`-c20` for the dashboard), {SECONDS:g} s a run after a
  {WARMUP:g} s warm-up, contenders interleaved for {ROUNDS} rounds; ratios are per round, the median shown. Server CPU
  is utime + stime of the uvicorn processes over the requests served (PostgreSQL's not included). The whole load
  part took {took / 60:.1f} min.

### Member menu by query text (never cached) vs baseline /menu

{_table(menu)}

{_ratio_line("Ours / baseline", m_ours, m_base)} (the JSON is identical; checked before the run).

### HQ store list with stock vs baseline /stores

{_table(stores)}

{_ratio_line("Ours / baseline", s_ours, s_base)}

### Cached menu under writes: StoreMenu by documentId over 20 stores, a writer flipping availability 20 times/s

{_table(cached)}

{_ratio_line("documentId / uncached baseline menu", c_doc, c_base, " (target: throughput at least 3x)")}
{_ratio_line("documentId / the same document as query text (the cache's effect; about 1x: no cache)", c_doc, c_text)}
- **Staleness** (submitStocktake answered -> the new band read on {"the other instance" if REDIS_URL else "the same server"}):
  p50 {st["p50_ms"]:.0f} ms, max {st["max_ms"]:.0f} ms over {st["seen"]} changes seen (read after the writes to
  {WATCHED} of the 20 stores, every 10 ms); {st["superseded"]} more were not
  seen before the store's next write a second later, {st["unseen"]} not within 10 s; {st["failed"]} writes failed of
  {st["writes"]}; {st["per_s"]:.1f} writes/s reached of the 20 asked for. The server CPU per request of the two
  "with writes" rows includes the writes: {writer.cost_ms:.1f} ms of server CPU each, measured with the writer alone.

### HQ dashboard, 20 HQ users

{_table(r["dashboard"])}

- **{median(dash, "rps"):.0f} req/s** (target: at least 50).

### Quote, placeOrder and POS checkout

{_table(r["writes"])}

### Flash sale: one hot SKU vs the same load spread over many

{_table(flash)}

{_ratio_line("Hot / spread", f_hot, f_spread)}
- After the run the hot SKU had {stock["sold"]:,} sold of a {stock["quota"]:,} quota, {stock["reserved"]:,} units
  reserved of {stock["on_hand"]:,} on hand: {oversold} oversold (sold over quota plus reserved over on hand).

### One request in one process: database statements and CPU (no server, no load generator; best of 3 x 100)

| request | statements | CPU ms |
|---|---|---|
{step_rows}
"""
    RESULTS.write_text(_merge(RESULTS.read_text() if RESULTS.exists() else "", section))
    print(section)


def main() -> None:
    url = os.environ.get("BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/bench")
    asyncio.run(run_all(url))


if __name__ == "__main__":
    main()

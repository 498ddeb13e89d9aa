"""Load, measured against a baseline: requests per second and p50/p99 for what each front end does most, on the
bench data, with uvicorn workers on this machine; the menu and HQ's store list also against bench/baseline.py
(the same SQL, hand-written, orjson) returning identical JSON; and a flash sale on one hot SKU against the same
load spread over many SKUs. Results go to bench/RESULTS.md.

    make bench-load            (needs `make bench-data` first: PostgreSQL at BENCH_DATABASE_URL)
"""

from __future__ import annotations

import asyncio
import csv
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select, update

from bench.dashboard import DASHBOARD, RESULTS, _machine, _merge
from models import (
    CampaignItem,
    CampaignKind,
    Order,
    OrderStatus,
    RoleScope,
    Sku,
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
APP_PORT, BASE_PORT = 8100, 8101
USERS = int(os.environ.get("BENCH_USERS", "20"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "15"))
WORKERS = int(os.environ.get("BENCH_WORKERS", str(os.cpu_count() or 2)))

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
STORE_DASHBOARD = """query($s: ID!) { salesReport(storeId: $s, top: 10) { totals { orders net } previous { net }
  series { label figures { net } } byHour { label figures { orders } } topProducts { label quantity } } }"""


def _gid(type_name: str, pk: int) -> str:
    import base64

    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


async def prepare(url: str) -> dict[str, Any]:
    """Pick stores and SKUs, give them deep stock at one price, and set up a flash sale on one hot SKU."""
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    try:
        async with write_transaction(sessionmaker) as session:
            stores = list(
                (
                    await session.scalars(select(Store.id).where(Store.code.like("G%")).order_by(Store.id).limit(20))
                ).all()
            )
            skus = list((await session.scalars(select(Sku.id).order_by(Sku.id).limit(200))).all())
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
    return {
        "stores": [_gid("Store", s) for s in stores],
        "store_pks": stores,
        "skus": [_gid("Sku", k) for k in skus],
        "flash_store": _gid("Store", stores[0]),
        "flash_sku": _gid("Sku", skus[0]),
        "flash_id": _gid("Campaign", flash.id),
        "flash_pk": flash.id,
        "flash_store_pk": stores[0],
        "flash_sku_pk": skus[0],
        "menu": MENU,
        "stores_doc": STORES,
        "quote": QUOTE,
        "place": PLACE,
        "place_flash": PLACE_FLASH,
        "pos": POS,
        "dashboard": DASHBOARD,
        "store_dashboard": STORE_DASHBOARD,
    }


def _serve(target: str, port: int, url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": url, "RUN_JOBS": "0", "LOG_LEVEL": "WARNING", "APP_ENV": "development"}
    return subprocess.Popen(
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
    )


def _wait(port: int, path: str) -> None:
    for _ in range(200):
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server on {port} did not start")


def _post(query: str, variables: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    body: dict[str, Any] = httpx.post(
        f"http://127.0.0.1:{APP_PORT}/graphql",
        json={"query": query, "variables": variables},
        headers=headers,
        timeout=30,
    ).json()
    return body


def _locust(scenario: str, host: str, config: dict[str, Any]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        prefix = f"{tmp}/stats"
        env = {**os.environ, "SCENARIO": scenario, "BENCH_CONFIG": json.dumps(config)}
        subprocess.run(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(ROOT / "bench" / "locustfile.py"),
                "--headless",
                "-u",
                str(USERS),
                "-r",
                str(USERS),
                "-t",
                f"{SECONDS}s",
                "--host",
                host,
                "--csv",
                prefix,
                "--only-summary",
                "--loglevel",
                "WARNING",
            ],
            cwd=ROOT,
            env=env,
            check=False,
            capture_output=True,
        )
        with open(f"{prefix}_stats.csv") as f:
            row = next(r for r in csv.DictReader(f) if r["Name"] == "Aggregated")
    return {
        "rps": float(row["Requests/s"]),
        "p50": float(row["50%"]),
        "p99": float(row["99%"]),
        "requests": float(row["Request Count"]),
        "failures": float(row["Failure Count"]),
    }


async def _oversold(url: str, config: dict[str, Any]) -> dict[str, int]:
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session:
            item = await session.scalar(select(CampaignItem).where(CampaignItem.campaign_id == config["flash_pk"]))
            level = await session.scalar(
                select(StockLevel).where(
                    StockLevel.store_id == config["flash_store_pk"], StockLevel.sku_id == config["flash_sku_pk"]
                )
            )
            held = await session.scalar(
                select(func.count())
                .select_from(Order)
                .where(Order.status == OrderStatus.CREATED, Order.store_id == config["flash_store_pk"])
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


def _cases(config: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], str | None]]:
    store = {"s": config["stores"][0]}
    return [
        ("GraphQL `{ __typename }`, anonymous", "{ __typename }", {}, None),
        ("the same with a member's token (signature, session check)", "{ __typename }", {}, "member"),
        ("+ `store(id) { name }`", "query($s: ID!) { store(id: $s) { name } }", store, "member"),
        (
            "+ `menu(first: 20)`: listing ids and prices",
            "query($s: ID!) { store(id: $s) { menu(first: 20) { edges { node { listingId price } } } } }",
            store,
            "member",
        ),
        (
            "+ each item's SKU barcode",
            "query($s: ID!) { store(id: $s) { menu(first: 20) { edges { node { listingId price "
            "sku { barcode } } } } } }",
            store,
            "member",
        ),
        ("the menu as benched (+ product name)", MENU, store, "member"),
        ("HQ store list with stock, as benched", STORES, {}, "hq"),
    ]


async def cpu_breakdown(url: str, config: dict[str, Any], n: int = 300) -> list[tuple[str, float]]:
    """CPU per request in one process (httpx's ASGI transport: no server, no locust): where our time goes, step by
    step, next to the baseline's handlers. The best of three rounds of `n` requests each."""
    os.environ["DATABASE_URL"] = url
    from app import create_app
    from bench import baseline
    from services.platform.config import Settings

    app = create_app(Settings.from_env())
    gc.collect()
    gc.freeze()  # as app:app does for the server

    async def cost(client: httpx.AsyncClient, send: Any) -> float:
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

    out: list[tuple[str, float]] = []
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client,
    ):
        for label, query, variables, who in _cases(config):
            headers = {"authorization": f"Bearer {config[who]}"} if who else {}
            body = {"query": query, "variables": variables}
            out.append((label, await cost(client, lambda c, b=body, h=headers: c.post("/graphql", json=b, headers=h))))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=baseline.app), base_url="http://bench") as client:
        menu_url = f"/menu?store={config['store_pks'][0]}"
        out.append(("baseline: the menu", await cost(client, lambda c: c.get(menu_url))))
        out.append(("baseline: the store list", await cost(client, lambda c: c.get("/stores"))))
    await baseline.engine.dispose()
    return out


def main() -> None:
    url = os.environ.get("BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/bench")
    config = asyncio.run(prepare(url))
    servers = [_serve("app:app", APP_PORT, url), _serve("bench.baseline:app", BASE_PORT, url)]
    try:
        _wait(APP_PORT, "/healthz")
        _wait(BASE_PORT, "/stores")
        hq = _post(
            'mutation { login(input: {username: "hq.admin", password: "demo-pass-2026"}) { tokens { accessToken } } }',
            {},
        )["data"]["login"]["tokens"]["accessToken"]
        member = _post(
            'mutation { memberSignIn(input: {provider: "local", code: "bench-member"}) { tokens { accessToken } } }', {}
        )["data"]["memberSignIn"]["tokens"]["accessToken"]
        config |= {"hq": hq, "member": member}
        ours_menu = _post(MENU, {"s": config["stores"][0]}, member)
        base_menu = httpx.get(f"http://127.0.0.1:{BASE_PORT}/menu?store={config['store_pks'][0]}").json()
        ours_stores = _post(STORES, {}, hq)
        base_stores = httpx.get(f"http://127.0.0.1:{BASE_PORT}/stores").json()
        assert ours_menu == base_menu, (ours_menu, base_menu)
        assert ours_stores == base_stores, "the baseline's store list differs from ours"
        results: dict[str, dict[str, float]] = {}
        only = set(filter(None, os.environ.get("BENCH_ONLY", "").split(",")))  # a quick look at some; no results file
        for scenario, port in (
            ("menu", APP_PORT),
            ("menu_baseline", BASE_PORT),
            ("stores", APP_PORT),
            ("stores_baseline", BASE_PORT),
            ("quote", APP_PORT),
            ("place_order", APP_PORT),
            ("pos", APP_PORT),
            ("hq_dashboard", APP_PORT),
            ("store_dashboard", APP_PORT),
            ("flash_spread", APP_PORT),
            ("flash_hot", APP_PORT),
        ):
            if only and scenario not in only:
                continue
            results[scenario] = _locust(scenario, f"http://127.0.0.1:{port}", config)
            print(scenario, results[scenario], flush=True)
        if only:
            return
        stock = asyncio.run(_oversold(url, config))
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)
    cpu = asyncio.run(cpu_breakdown(url, config))
    write_results(url, results, stock, cpu)


def write_results(
    url: str, r: dict[str, dict[str, float]], stock: dict[str, int], cpu: list[tuple[str, float]]
) -> None:
    def row(name: str, label: str) -> str:
        x = r[name]
        return f"| {label} | {x['rps']:.0f} | {x['p50']:.0f} | {x['p99']:.0f} | {x['requests']:.0f} | {x['failures']:.0f} |"

    menu_ratio = r["menu_baseline"]["rps"] / r["menu"]["rps"]
    stores_ratio = r["stores_baseline"]["rps"] / r["stores"]["rps"]
    hot_ratio = r["flash_hot"]["rps"] / r["flash_spread"]["rps"]
    cpu_rows = "\n".join(f"| {label} | {ms:.2f} |" for label, ms in cpu)
    section = f"""## Load: each front end's busiest calls, against a baseline

- Date: {datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}
- Machine: {_machine()}
- Setup: bench data (500 stores, 2,000 SKUs, 200,000 members, 1,000,000 orders) in {url.split("@")[-1]};
  `uvicorn --workers {WORKERS}` for the app and for the baseline; locust, {USERS} users without think time, {SECONDS} s
  each, on the same machine (so the load generator shares the CPUs)

| call | req/s | p50 ms | p99 ms | requests | failures |
|---|---|---|---|---|---|
{row("menu", "member: a store's menu (20 items)")}
{row("menu_baseline", "baseline: the same menu, hand-written")}
{row("stores", "HQ: store list with stock (20 stores x 5 levels)")}
{row("stores_baseline", "baseline: the same store list, hand-written")}
{row("quote", "member: quote")}
{row("place_order", "member: placeOrder (pickup, spread over SKUs and stores)")}
{row("pos", "clerk: POS checkout")}
{row("hq_dashboard", "HQ dashboard")}
{row("store_dashboard", "a store's dashboard")}
{row("flash_spread", "placeOrder spread over 200 SKUs in one store")}
{row("flash_hot", "flash sale: placeOrder on one hot SKU")}

- **Baseline / ours (throughput):** menu {menu_ratio:.2f}x, HQ store list {stores_ratio:.2f}x (the JSON is identical;
  checked before the run).
- **Flash sale, hot / spread (throughput): {hot_ratio:.2f}.** After the run the hot SKU had {stock["sold"]:,} sold of a
  {stock["quota"]:,} quota, {stock["reserved"]:,} units reserved of {stock["on_hand"]:,} on hand: 0 oversold.

CPU per request in one process (no server, no locust; best of 3 x 300), step by step:

| request | CPU ms |
|---|---|
{cpu_rows}
"""
    RESULTS.write_text(_merge(RESULTS.read_text() if RESULTS.exists() else "", section))
    print(section)


if __name__ == "__main__":
    main()

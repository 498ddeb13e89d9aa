"""The HQ dashboard's latency at 100,000 and at 1,000,000 orders, written to bench/RESULTS.md.

    BENCH_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/bench make bench-dashboard

And its throughput with many HQ users at once, over a chain already loaded (e.g. `bench.generate --small`), with the
report cache off and on (`--concurrent`; 20 users unless `--users N`; in this process, or with `--served` through
`uvicorn --workers <CPUs>` as in production):

    .venv/bin/python -m bench.dashboard --concurrent [--served] --url postgresql+asyncpg://postgres@127.0.0.1:5432/bench

Loads the chain (bench/generate.py) to 100k orders, keeps a copy of that database (`<name>_100k`), grows the
original to 1M, then times the two in turn for 3 rounds (`--compare URL_100K URL_1M` times databases loaded earlier).
The dashboard reads only the daily facts, so the ratio should stay near 1 (the goal: at most 1.2).
Requests go through the whole app (HTTP semantics via httpx's ASGI transport, auth, GraphQL, SQL).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app import create_app
from bench.generate import FULL, Size, generate
from resolvers.state import build_state
from services.platform.config import Settings
from services.seed import DEMO_PASSWORD

DASHBOARD = """{
  salesReport(top: 10) { totals { orders gmv net refunds averageOrderValue } previous { net orders } netChange
    series { label figures { orders net } } byHour { label figures { orders net } }
    byChannel { label figures { orders net } } byFulfilment { label figures { orders net } }
    byCategory { label net quantity } topProducts { label quantity net } freshness { asOf pendingEvents } }
  storeRanking(first: 10) {
    rows { rank store { code name } figures { net orders averageOrderValue } previous { net } } }
}"""
RESULTS = Path(__file__).with_name("RESULTS.md")


async def time_dashboard(url: str, runs: int = 40, warmup: int = 5) -> dict[str, float]:
    """The dashboard computed afresh each time (the report cache off): what HQ waits for after each fold, and what
    must not grow with the orders (the cache would hide it)."""
    settings = replace(Settings.from_env(), database_url=url, run_jobs=False, log_json=False, report_cache_s=0.0)
    state = build_state(settings)
    app = create_app(state=state)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as http:
        login = await http.post(
            "/graphql",
            json={
                "query": 'mutation($p: String!) { login(input: {username: "hq.admin",'
                " password: $p}) { tokens { accessToken } } }",
                "variables": {"p": DEMO_PASSWORD},
            },
        )
        token = login.json()["data"]["login"]["tokens"]["accessToken"]
        headers = {"authorization": f"Bearer {token}"}
        samples = []
        for i in range(warmup + runs):
            start = time.perf_counter()
            body = (await http.post("/graphql", json={"query": DASHBOARD}, headers=headers)).json()
            elapsed = (time.perf_counter() - start) * 1000
            assert "errors" not in body, body
            if i >= warmup:
                samples.append(elapsed)
        orders = body["data"]["salesReport"]["totals"]["orders"]
    await state.engine.dispose()
    samples.sort()
    return {
        "p50_ms": statistics.median(samples),
        "p90_ms": samples[int(len(samples) * 0.9) - 1],
        "mean_ms": statistics.fmean(samples),
        "orders_in_period": orders,
    }


async def _sign_in(http: httpx.AsyncClient) -> str:
    login = await http.post(
        "/graphql",
        json={
            "query": 'mutation($p: String!) { login(input: {username: "hq.admin", password: $p}) { tokens { accessToken } } }',
            "variables": {"p": DEMO_PASSWORD},
        },
    )
    token: str = login.json()["data"]["login"]["tokens"]["accessToken"]
    return token


async def _drive(http: httpx.AsyncClient, users: int, seconds: float) -> dict[str, float]:
    """`users` HQ users asking for the dashboard one request after another, all at once, for `seconds`. Sign-ins are
    rate limited per account, so the users share a few sessions of hq.admin (the report cache keys on scope, not on
    the session)."""
    tokens = [await _sign_in(http) for _ in range(min(users, 5))]
    done: list[float] = []
    deadline = time.perf_counter() + seconds

    async def user(token: str) -> None:
        headers = {"authorization": f"Bearer {token}"}
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            body = (await http.post("/graphql", json={"query": DASHBOARD}, headers=headers)).json()
            assert "errors" not in body, body
            done.append(time.perf_counter() - start)

    began = time.perf_counter()
    await asyncio.gather(*(user(tokens[i % len(tokens)]) for i in range(users)))
    elapsed = time.perf_counter() - began
    done.sort()
    return {
        "requests": len(done),
        "req_per_s": round(len(done) / elapsed, 1),
        "p50_ms": round(statistics.median(done) * 1000),
        "p90_ms": round(done[int(len(done) * 0.9) - 1] * 1000),
    }


async def dashboard_throughput(url: str, users: int = 20, seconds: float = 15.0, **changes: Any) -> dict[str, float]:
    """The dashboard's throughput in this process (ASGI, no server); `changes` override settings (the report cache)."""
    settings = replace(Settings.from_env(), database_url=url, run_jobs=False, log_json=False, **changes)
    state = build_state(settings)
    app = create_app(state=state)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=120
        ) as http:
            cpu = time.process_time()
            result = await _drive(http, users, seconds)
            # This process's CPU per request (the app and the driver; not PostgreSQL's): steadier than req/s on a
            # machine shared with other work.
            result["app_cpu_ms"] = round((time.process_time() - cpu) * 1000 / result["requests"], 1)
            return result
    finally:
        await state.engine.dispose()


async def served_throughput(
    url: str, users: int = 20, seconds: float = 15.0, cache_s: float = 60.0
) -> dict[str, float]:
    """The same through `uvicorn --workers <CPUs>` (each worker with its own cache), the driver in this process."""
    port = 8790
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "RUN_JOBS": "0",
        "LOG_LEVEL": "WARNING",
        "APP_ENV": "development",
        "REPORT_CACHE_S": str(cache_s),
    }
    workers = str(os.cpu_count() or 2)
    server = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "uvicorn", "app:app", "--port", str(port), "--workers", workers, "--no-access-log"],
        cwd=Path(__file__).parents[1],
        env=env,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
            for _ in range(200):
                try:
                    await http.get("/healthz")
                    break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
            return await _drive(http, users, seconds)
    finally:
        server.terminate()
        await server.wait()


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(x.split()[1]) for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")
        )
        memory = f"{mem_kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        memory = "?"
    system = f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    return f"{cpu}, {os.cpu_count()} CPUs, {memory} RAM, {system}"


def write_results(
    urls: tuple[str, str], rounds: list[tuple[dict[str, Any], dict[str, Any]]], loads: dict[str, Any]
) -> None:
    ratios = [large["p50_ms"] / small["p50_ms"] for small, large in rounds]
    rows = "\n".join(
        f"| {i} | {small['p50_ms']:.1f} | {small['p90_ms']:.1f} | {large['p50_ms']:.1f} | {large['p90_ms']:.1f} | "
        f"{ratio:.2f} |"
        for i, ((small, large), ratio) in enumerate(zip(rounds, ratios, strict=True), 1)
    )
    small, large = rounds[-1]
    loaded = (
        f"Loading took {loads['first']:.0f} s to 100k and {loads['second']:.0f} s more to 1M (orders, lines, payments, "
        "and folding the report facts with the app's own job)."
        if loads
        else "Timed over databases loaded earlier."
    )
    section = f"""## HQ dashboard: 100,000 vs 1,000,000 orders

- Date: {datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}
- Machine: {_machine()}
- Databases: {" and ".join(u.split("@")[-1].split("?")[0] for u in urls)} ({urls[0].split(":")[0]}); chain:
  {FULL.stores} stores, {FULL.skus} SKUs listed in every store, {FULL.members:,} members, orders over the last
  {FULL.days} days; {small["orders_in_period"]:,} and {large["orders_in_period"]:,} orders in the 30-day window
- Dashboard: one GraphQL request (sales report: totals, previous period, daily series, by hour, channel, fulfilment,
  category, top products; store ranking top 10 with cost), signed in as HQ, through the whole app, computed afresh
  (report cache off); the two databases timed in turn, {ROUND_RUNS} runs each per round after 5 warm-up

| round | 100k p50 ms | 100k p90 ms | 1M p50 ms | 1M p90 ms | ratio (p50) |
|---|---|---|---|---|---|
{rows}

**Ratio (p50, 1M / 100k), median of {len(ratios)} rounds: {statistics.median(ratios):.2f}** (goal: at most 1.2).
{loaded}
"""
    RESULTS.write_text(_merge(RESULTS.read_text() if RESULTS.exists() else "", section))
    print(section)


def _merge(existing: str, section: str) -> str:
    """Replace this bench's section in RESULTS.md, keeping the other benches' sections."""
    title = section.splitlines()[0]
    parts = [p for p in existing.split("\n## ") if p.strip()]
    kept = [("## " + p if not p.startswith("#") else p) for p in parts if not ("## " + p).startswith(title)]
    header = "# Bench results\n\nMade by the commands in README.md, on the machine each section names.\n"
    body = [k for k in kept if not k.startswith("# Bench results")]
    return "\n\n".join([header.rstrip(), *[b.rstrip() for b in body], section.rstrip()]) + "\n"


ROUND_RUNS = 20


async def compare(small_url: str, large_url: str, loads: dict[str, Any], rounds: int = 3) -> None:
    """Both databases timed in turn, round by round, and the ratio taken within each round: a machine busy with other
    work slows both sides of a round alike, where timing 100k before loading 1M would compare two moments."""
    results = []
    for i in range(rounds):
        small = await time_dashboard(small_url, runs=ROUND_RUNS)
        large = await time_dashboard(large_url, runs=ROUND_RUNS)
        print(f"round {i + 1}: 100k {small} 1M {large}", flush=True)
        results.append((small, large))
    write_results((small_url, large_url), results, loads)


async def _copy_database(url: str, copy: str) -> None:
    """`copy` made anew from `url`'s database as it is now (PostgreSQL's CREATE DATABASE ... TEMPLATE)."""
    source, target = url.rsplit("/", 1)[1].split("?")[0], copy.rsplit("/", 1)[1].split("?")[0]
    admin = create_async_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{target}"'))
            await conn.execute(text(f'CREATE DATABASE "{target}" TEMPLATE "{source}"'))
    finally:
        await admin.dispose()


async def main() -> None:
    """Load 100k orders, keep a copy of that database, grow the original to 1M, then time the two in turn."""
    url = os.environ.get("BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/bench")
    small_url = url.split("?")[0] + "_100k"
    t0 = time.perf_counter()
    await generate(url, Size(FULL.stores, FULL.skus, FULL.members, 100_000, FULL.days))
    first = time.perf_counter() - t0
    await _copy_database(url, small_url)
    t1 = time.perf_counter()
    await generate(url, FULL)
    second = time.perf_counter() - t1
    await compare(small_url, url, {"first": first, "second": second})


async def concurrent(url: str, users: int, served: bool) -> None:
    for label, cache_s in (("report cache off", 0.0), ("report cache on", 60.0)):
        if served:
            result = await served_throughput(url, users, cache_s=cache_s)
        else:
            result = await dashboard_throughput(url, users, report_cache_s=cache_s)
        print(f"{users} HQ users, {label}{' (uvicorn)' if served else ''}:", result, flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard")
    parser.add_argument("--url", default=os.environ.get("BENCH_DATABASE_URL"))
    parser.add_argument("--concurrent", action="store_true", help="throughput of many HQ users, cache off and on")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--served", action="store_true", help="through uvicorn --workers <CPUs>, not in process")
    parser.add_argument(
        "--compare", nargs=2, metavar=("URL_100K", "URL_1M"), help="only time two databases loaded earlier, in turn"
    )
    args = parser.parse_args()
    if args.compare:
        small_url, large_url = args.compare
        asyncio.run(compare(small_url, large_url, loads={}))
    elif args.concurrent:
        asyncio.run(concurrent(args.url, args.users, args.served))
    else:
        asyncio.run(main())

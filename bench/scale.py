"""Growth: the hot reads and a hot write at 500 stores and at 5,000, for docs/scaling.md; written to bench/RESULTS.md.

    make bench-scale-data      (once: loads bench500 and bench5000, about 5 and 20 minutes)
    make bench-scale

Both sets have the same library (2,000 SKUs), 400 of them listed in every store, 200,000 members and 200,000 orders
over 30 days; only the number of stores differs (so listings and stock levels grow 10x: 200,000 to 2,000,000).
One app server per set (`uvicorn --workers 2`, started once); each scenario runs both interleaved with wrk for
BENCH_ROUNDS rounds, and the ratio 5,000 / 500 is taken per round, the median shown.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select

from bench import wrk
from bench.dashboard import DASHBOARD, RESULTS, _machine, _merge, time_dashboard
from bench.load import (
    CONNECTIONS,
    MENU,
    PLACE,
    REDIS_URL,
    ROUNDS,
    SECONDS,
    STORES,
    WARMUP,
    WORKERS,
    Config,
    Contender,
    Rounds,
    Server,
    _sign_in,
    graphql_load,
    interleaved,
    median,
    prepare,
    ratios,
    trusted,
)
from models import Member, Order, Sku, Store, StoreListing
from services.platform.db import create_engine, create_sessionmaker

PORT = 8110
NEARBY_POINTS = [(31.1, 121.05), (31.2, 121.05), (31.3, 121.05), (31.4, 121.05)]  # inside both sets' grid


@dataclass
class Chain:
    url: str
    config: Config
    counts: dict[str, int]
    server: Server | None = None


async def _counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session:

            async def count(model: type) -> int:
                return int(await session.scalar(select(func.count()).select_from(model)) or 0)

            return {
                "stores": await count(Store),
                "skus": await count(Sku),
                "listings": await count(StoreListing),
                "listing_stores": int(
                    await session.scalar(select(func.count(func.distinct(StoreListing.store_id)))) or 0
                ),
                "members": await count(Member),
                "orders": await count(Order),
            }
    finally:
        await engine.dispose()


def _loads(config: Config) -> dict[str, tuple[wrk.Load, str, int]]:
    """Each scenario's load on one chain: (what wrk sends, its label, connections)."""
    t = config.tokens
    rng = random.Random(7)
    pairs = [(rng.choice(config.stores), rng.choice(config.skus)) for _ in range(200)]
    nearby_id, _ = trusted("NearbyStores")
    return {
        "menu": (
            graphql_load([{"query": MENU, "variables": {"s": s}} for s in config.stores], t["member"]),
            "member: a store's menu by query text (20 items)",
            CONNECTIONS,
        ),
        "stores": (graphql_load([{"query": STORES}], t["hq"]), "HQ: store list with stock", CONNECTIONS),
        "nearby": (
            graphql_load(
                [
                    {"documentId": nearby_id, "variables": {"lat": lat, "lng": lng, "radiusKm": 3}}
                    for lat, lng in NEARBY_POINTS
                ]
            ),
            "member: NearbyStores document (3 km), anonymous",
            CONNECTIONS,
        ),
        # 4 HQ users, not 20: at 20 a request waited most of a 10 s run at 5,000 stores and few finished in it.
        "dashboard": (graphql_load([{"query": DASHBOARD}], t["hq"]), "HQ dashboard, 4 HQ users", 4),
        "place_order": (
            graphql_load(
                [{"query": PLACE, "variables": {"s": s, "k": k, "key": wrk.KEY}} for s, k in pairs], t["member"]
            ),
            "member: placeOrder (pickup, spread over 20 stores and 198 SKUs)",
            CONNECTIONS,
        ),
    }


async def run(urls: list[str]) -> None:
    wrk.which()
    chains = [Chain(url, await prepare(url), await _counts(url)) for url in urls]
    results: dict[str, Rounds] = {}
    labels: dict[str, str] = {}
    started = time.perf_counter()
    try:
        for i, chain in enumerate(chains):
            chain.server = Server("app:app", PORT + i, chain.url, REDIS_URL)
        for chain in chains:
            assert chain.server is not None
            chain.server.wait("/healthz")
            chain.config.tokens = _sign_in(chain.server.base)
        loads = [_loads(chain.config) for chain in chains]
        for name in loads[0]:
            labels[name] = loads[0][name][1]
            print(f"{name}:", flush=True)
            contenders = []
            for chain, load in zip(chains, loads, strict=True):
                assert chain.server is not None
                what, _, connections = load[name]
                contenders.append(Contender(f"{chain.counts['stores']:,} stores", chain.server, what, connections))
            results[name] = await interleaved(contenders)
    finally:
        for chain in chains:
            if chain.server is not None:
                chain.server.stop()
    alone: dict[str, dict[str, float]] = {}
    for chain in chains:  # one request at a time, in one process: the dashboard's own latency at each size
        alone[chain.url] = await time_dashboard(chain.url, runs=15, warmup=3)
        print(f"dashboard alone at {chain.counts['stores']:,} stores: {alone[chain.url]}", flush=True)
    write_results(chains, results, labels, alone, time.perf_counter() - started)


def write_results(
    chains: list[Chain],
    results: dict[str, Rounds],
    labels: dict[str, str],
    alone: dict[str, dict[str, float]],
    took: float,
) -> None:
    small, large = chains[0], chains[-1]
    a, b = f"{small.counts['stores']:,} stores", f"{large.counts['stores']:,} stores"
    rows = []
    for name, rounds in results.items():
        x, y = rounds[a], rounds[b]
        rps = ratios(y, x)
        p50 = ratios(y, x, "p50_ms")
        rows.append(
            f"| {labels[name]} | {median(x, 'rps'):.0f} | {median(x, 'p50_ms'):.1f} | {median(x, 'cpu_ms'):.2f} | "
            f"{median(y, 'rps'):.0f} | {median(y, 'p50_ms'):.1f} | {median(y, 'cpu_ms'):.2f} | "
            f"{statistics.median(rps):.2f} ({', '.join(f'{r:.2f}' for r in rps)}) | {statistics.median(p50):.2f} |"
        )
        for label, runs in rounds.items():
            failed = sum(r.result.failed + r.result.socket_errors for r in runs)
            if failed:
                rows.append(f"| (failed at {label}: {failed}; e.g. {runs[0].result.sample[:120]}) | | | | | | | | |")

    def describe(c: Chain) -> str:
        n = c.counts
        return (
            f"{n['stores']:,} stores, {n['skus']:,} SKUs, {n['listings']:,} listings"
            f" ({n['listings'] // max(n['listing_stores'], 1)} in each of {n['listing_stores']:,} stores),"
            f" {n['members']:,} members, {n['orders']:,} orders"
        )

    one, ten = alone[small.url]["p50_ms"], alone[large.url]["p50_ms"]
    rows.append(
        f"| HQ dashboard, one request at a time in one process (15 after 3 warm-up) | | {one:.1f} | | | {ten:.1f} "
        f"| | | {ten / one:.2f} |"
    )
    table = "\n".join(rows)
    section = f"""## Growth: 500 -> 5,000 stores

- Date: {datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}
- Machine: {_machine()}
- Data: {describe(small)} ({small.url.split("/")[-1]});
  {describe(large)} ({large.url.split("/")[-1]}). The same
  400 SKUs are listed in every store at both sizes (all 2,000 at 5,000 stores would be 10 million listings and as
  many stock levels; the menu reads a store's first page either way), orders over 30 days.
- Setup: one `uvicorn --workers {WORKERS}` app per set, both up throughout; wrk `-t1 -c{CONNECTIONS}` (`-c4` for the
  dashboard), {SECONDS:g} s a run after a {WARMUP:g} s warm-up, the two sizes interleaved for {ROUNDS} rounds; medians;
  ratios per round, the median shown. Server CPU is utime + stime of the uvicorn processes per request. Took
  {took / 60:.1f} min.

| call | 500: req/s | p50 ms | CPU ms/req | 5,000: req/s | p50 ms | CPU ms/req | req/s 5,000 / 500 (rounds) | p50 5,000 / 500 |
|---|---|---|---|---|---|---|---|---|
{table}
"""
    RESULTS.write_text(_merge(RESULTS.read_text() if RESULTS.exists() else "", section))
    print(section)


def main() -> None:
    urls = sys.argv[1:] or [
        "postgresql+asyncpg://postgres@127.0.0.1:5432/bench500",
        "postgresql+asyncpg://postgres@127.0.0.1:5432/bench5000",
    ]
    asyncio.run(run(urls))


if __name__ == "__main__":
    main()

"""Statements and CPU per request for the uncached reads issue #18 names: a member's store menu (as benched, and the
mini-program's trusted StoreMenu) and HQ's store list with stock. In one process, through httpx's ASGI transport
(no server, no load generator), so a change's effect on our own Python is not drowned in the machine's noise.

    .venv/bin/python -m bench.profile_reads --url postgresql+asyncpg://postgres@127.0.0.1:5432/lean_bench

Needs bench data (`python -m bench.generate --url ... --small` is enough). Statements are counted on the engine's
`before_cursor_execute`; CPU is `time.process_time`, the best of `--rounds` rounds of `--n` requests after a warm-up.
With `--show` it prints each document's statements once.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import pstats
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event, select

from app import GC_YOUNG_THRESHOLD
from bench.load import MENU, STORES, _gid
from models import Store

ROOT = Path(__file__).resolve().parent.parent
HQ_LOGIN = 'mutation { login(input: {username: "hq.admin", password: "demo-pass-2026"}) { tokens { accessToken } } }'
MEMBER_SIGN_IN = (
    'mutation { memberSignIn(input: {provider: "local", code: "bench-member"}) { tokens { accessToken } } }'
)


def _count_round_trips(counter: list[int]) -> None:
    """Count what asyncpg sends the server (a prepare, a fetch, BEGIN/COMMIT/ROLLBACK, a ping): the round trips, where
    the statement counter sees only the statements SQLAlchemy runs."""
    import asyncpg
    from asyncpg.prepared_stmt import PreparedStatement
    from asyncpg.transaction import Transaction

    def counted(owner: Any, name: str) -> None:
        original = getattr(owner, name)

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            counter[0] += 1
            return await original(*args, **kwargs)

        setattr(owner, name, wrapper)

    for owner, names in (
        (asyncpg.Connection, ("prepare", "execute", "fetchrow")),
        (PreparedStatement, ("fetch",)),
        (Transaction, ("start", "commit", "rollback")),
    ):
        for name in names:
            counted(owner, name)


def _trusted_id(name: str) -> str:
    manifest = json.loads((ROOT / "trusted-documents.json").read_text())
    found: str = next(op["id"] for op in manifest["operations"] if op["name"] == name)
    return found


async def _token(client: httpx.AsyncClient, document: str, path: tuple[str, ...]) -> str:
    body: Any = (await client.post("/graphql", json={"query": document})).json()
    for step in path:
        body = body[step]
    return str(body)


async def measure(url: str, n: int, rounds: int, show: bool) -> list[tuple[str, float, float, float, float]]:
    os.environ.update(DATABASE_URL=url, RUN_JOBS="0", LOG_LEVEL="WARNING", APP_ENV="development")
    from app import create_app
    from resolvers.state import build_state
    from services.platform.config import Settings

    state = build_state(Settings.from_env())
    app = create_app(state=state)
    gc.collect()
    gc.freeze()  # as app:app does for the server
    gc.set_threshold(GC_YOUNG_THRESHOLD, 50, 100)
    rows: list[tuple[str, float, float, float, float]] = []
    trips = [0]
    _count_round_trips(trips)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client,
    ):
        engine = state.engine
        async with state.read_sessionmaker() as session:
            store_pk = await session.scalar(select(Store.id).where(Store.code.like("G%")).order_by(Store.id).limit(1))
        assert store_pk is not None, "no bench data: run bench.generate first"
        store = _gid("Store", store_pk)
        hq = await _token(client, HQ_LOGIN, ("data", "login", "tokens", "accessToken"))
        member = await _token(client, MEMBER_SIGN_IN, ("data", "memberSignIn", "tokens", "accessToken"))
        cases: list[tuple[str, dict[str, Any], str]] = [
            ("member: store menu (20 items), as benched", {"query": MENU, "variables": {"s": store}}, member),
            (
                "member: the mini-program's StoreMenu (trusted)",
                {"documentId": _trusted_id("StoreMenu"), "variables": {"storeId": store}},
                member,
            ),
            ("HQ: store list with stock (20 x 5), as benched", {"query": STORES}, hq),
        ]
        statements: list[str] = []

        def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            statements.append(statement)

        event.listen(engine.sync_engine, "before_cursor_execute", on_execute)
        try:
            for label, body, token in cases:
                headers = {"authorization": f"Bearer {token}"}

                async def send(b: dict[str, Any] = body, h: dict[str, str] = headers) -> httpx.Response:
                    return await client.post("/graphql", json=b, headers=h)

                rows.append((label, *await _cost(send, statements, trips, n, rounds)))
                if show:
                    await send()
                    statements.clear()
                    await send()
                    print(f"-- {label}")
                    for s in statements:
                        print("   ", " ".join(s.split())[:3000])
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", on_execute)
    await state.engine.dispose()
    rows.extend(await _baseline(store_pk, statements, trips, n, rounds))
    return rows


async def _baseline(
    store_pk: int, statements: list[str], trips: list[int], n: int, rounds: int
) -> list[tuple[str, float, float, float, float]]:
    """The hand-written handlers (bench/baseline.py) measured the same way: the floor the ratios are taken against."""
    from bench import baseline  # its engine is made on import, from DATABASE_URL

    def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    rows: list[tuple[str, float, float, float, float]] = []
    event.listen(baseline.engine.sync_engine, "before_cursor_execute", on_execute)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=baseline.app), base_url="http://bench"
        ) as client:
            for label, path in (
                ("baseline: the menu", f"/menu?store={store_pk}"),
                ("baseline: the store list", "/stores"),
            ):

                async def send(p: str = path) -> httpx.Response:
                    return await client.get(p)

                rows.append((label, *await _cost(send, statements, trips, n, rounds)))
    finally:
        event.remove(baseline.engine.sync_engine, "before_cursor_execute", on_execute)
        await baseline.engine.dispose()
    return rows


async def _cost(
    send: Callable[[], Awaitable[httpx.Response]], statements: list[str], trips: list[int], n: int, rounds: int
) -> tuple[float, float, float, float]:
    """(statements, round trips, best CPU ms, Python function calls) per request. CPU: the best of `rounds` rounds,
    because other processes on the machine only ever add to a round's time; the calls (counted by cProfile) do not
    depend on the machine at all, and show a change too small for the CPU figure to tell from noise."""
    for _ in range(20):
        response = await send()
    assert response.status_code == 200 and "errors" not in response.json(), response.text[:3000]
    statements.clear()
    trips[0] = 0
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(n):
            await send()
        best = min(best, (time.process_time() - start) / n * 1000)
    counts = len(statements) / (rounds * n), trips[0] / (rounds * n)
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(n):
        await send()
    profile.disable()
    calls = pstats.Stats(profile).total_calls  # type: ignore[attr-defined]
    return *counts, best, calls / n


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_reads")
    parser.add_argument(
        "--url", default=os.environ.get("BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/bench")
    )
    parser.add_argument("--n", type=int, default=50, help="requests a round")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--show", action="store_true", help="print each document's statements")
    args = parser.parse_args()
    print("| request | statements | round trips | CPU ms | Python calls |\n|---|---|---|---|---|")
    rows = asyncio.run(measure(args.url, args.n, args.rounds, args.show))
    for label, count, trips, cpu, calls in rows:
        print(f"| {label} | {count:.2f} | {trips:.2f} | {cpu:.2f} | {calls:,.0f} |")
    ms = {label: cpu for label, _, _, cpu, _ in rows}
    menu, stores = ms[rows[0][0]] / ms["baseline: the menu"], ms[rows[2][0]] / ms["baseline: the store list"]
    print(
        f"\nCPU ratio to the baseline, in process (no HTTP server's share in either): menu {menu:.2f}x, stores {stores:.2f}x"
    )


if __name__ == "__main__":
    main()

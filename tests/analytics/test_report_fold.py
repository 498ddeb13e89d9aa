"""The running app keeps its reports current: its own job runner folds sale events into the facts.

The server runs as `make run` serves it (uvicorn with the lifespan, so the runner starts), with a short fold
interval; the test only talks GraphQL to it and waits for the report, bounded.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from app import create_app
from models import utcnow
from services.platform import jobs
from tests.conftest import Api, gid
from tests.marketing_givens import given_menu


@asynccontextmanager
async def serving_with_lifespan(app: Starlette) -> AsyncIterator[str]:
    """uvicorn serving `app` with its lifespan (job runner included) on a free loopback port; yields host:port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(srv.serve())
    for _ in range(200):
        if srv.started:
            break
        await asyncio.sleep(0.05)
    assert srv.started, "server did not start"
    try:
        yield f"127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        await asyncio.wait_for(task, 10)


ROOT = Path(__file__).resolve().parents[2]

SALES = """query($s: ID, $from: Date, $to: Date) { salesReport(storeId: $s, from: $from, to: $to) {
  totals { orders net } freshness { pendingEvents } } }"""


@pytest.mark.postgres_too
async def test_a_pos_sale_reaches_the_sales_report_through_the_running_apps_own_fold(state, chain):
    # The app folds every settings.facts_interval_s (10 s by default): short here, so the wait below is bounded.
    fast = replace(state, settings=replace(state.settings, facts_interval_s=0.2))
    menu = await given_menu(state, chain)
    store = gid("Store", menu.store)
    today = utcnow().date()
    window = {
        "s": store,
        "from": (today - timedelta(days=1)).isoformat(),
        "to": (today + timedelta(days=1)).isoformat(),
    }
    async with (
        serving_with_lifespan(create_app(state=fast)) as server,
        httpx.AsyncClient(base_url=f"http://{server}") as http,
    ):
        api = Api(http)
        before = await api.gql(SALES, window, as_="sh01.manager")
        assert before["data"]["salesReport"]["totals"] == {"orders": 0, "net": 0}
        sale = await api.gql(
            "mutation($in: PosCheckoutInput!) { posCheckout(input: $in) { errors { code } order { id subtotal discountTotal } } }",
            {
                "in": {
                    "clientOrderId": "fold-1",
                    "storeId": store,
                    "lines": [{"skuId": gid("Sku", menu.a), "quantity": 2}],
                    "tenders": [{"method": "CASH", "amount": 20000}],
                }
            },
            as_="sh01.clerk",
        )
        assert sale.get("data") and sale["data"]["posCheckout"]["errors"] == [], sale
        order = sale["data"]["posCheckout"]["order"]
        total = order["subtotal"] - order["discountTotal"]
        report: dict[str, object] = {}
        for _ in range(100):  # at most ~10 s
            report = (await api.gql(SALES, window, as_="sh01.manager"))["data"]["salesReport"]
            if report["totals"] == {"orders": 1, "net": total}:
                break
            await asyncio.sleep(0.1)
    assert report["totals"] == {"orders": 1, "net": total}
    assert report["freshness"] == {"pendingEvents": 0}


@pytest.mark.parametrize("interval", [None, 0.05])
async def test_the_runner_folds_on_its_own_interval(state, chain, monkeypatch, interval):
    """`runner` starts the fold loop beside the job loop; the default interval is the one the fold registered with (10 s)."""
    calls: list[float] = []

    async def fake_fold(*_: object) -> int:
        calls.append(asyncio.get_running_loop().time())
        return 0

    monkeypatch.setitem(jobs.PERIODIC, "facts.fold", jobs.Periodic(fake_fold, every_s=0.05))
    task = asyncio.create_task(jobs.runner(state.sessionmaker, interval_s=60, facts_interval_s=interval))
    await asyncio.sleep(0.4)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(calls) >= 3


async def test_run_jobs_folds_pending_report_events(state, chain, tmp_path):
    """The operator's `python -m services.cli run-jobs` folds what is pending, as the app's runner does."""
    from sqlalchemy import func, select

    from models import FactEvent, PaymentMethod
    from services.orders import pos
    from services.platform.db import write_transaction
    from services.pricing.engine import CartLine
    from tests.factories import HQ

    menu = await given_menu(state, chain)
    async with write_transaction(state.sessionmaker) as session:
        await pos.checkout(
            session,
            HQ,
            pos.Checkout(menu.store, "cli-1", [CartLine(menu.a, 1)], [pos.Tender(PaymentMethod.CASH, 10000)]),
        )
    async with state.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(FactEvent)) == 1
    url = state.engine.url.render_as_string(hide_password=False)
    env = {**os.environ, "DATABASE_URL": url, "DATA_DIR": str(tmp_path), "APP_ENV": "development", "LOG_JSON": "0"}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.cli", "run-jobs"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "folded 1 report events" in done.stdout
    async with state.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(FactEvent)) == 0

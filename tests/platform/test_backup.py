"""Backups that restore (`python -m services.cli backup | restore | check`).

Given a store taking stock in while a backup runs, when the backup is restored into a new database, then `check`
finds every rule holding there: stock = movements, points and stored value = ledgers, closed days unchanged.
And `check` is not a rubber stamp: break a row and it names it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import func, select, update

import models
from resolvers.state import AppState
from services.integrity import check_database, report
from services.platform.backup import backup, restore
from services.platform.db import create_engine, create_sessionmaker
from services.platform.migrate import upgrade
from tests.conftest import IN_CI, Api, Chain, gid
from tests.factories import list_in_store, make_library

RECEIVE = """mutation($idempotencyKey: String!, $store: ID!, $sku: ID!) {
  receiveStock(input: {idempotencyKey: $idempotencyKey, storeId: $store, lines: [{skuId: $sku, quantity: 1}]}) {
    errors { code } } }"""
ROOT = Path(__file__).resolve().parents[2]


async def _movements(url: str) -> int:
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session:
            return int(await session.scalar(select(func.count()).select_from(models.StockMovement)) or 0)
    finally:
        await engine.dispose()


async def _check(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session:
            results = await check_database(session)
    finally:
        await engine.dispose()
    return [f"{c.name}: {f}" for c in results for f in c.findings]


async def test_a_backup_taken_while_the_store_writes_restores_whole(
    api: Api, state: AppState, chain: Chain, tmp_path: Path
) -> None:
    url = state.settings.database_url
    if not url.startswith("sqlite"):
        pytest.skip("the SQLite path; PostgreSQL's is test_pg_dump_and_restore_round_trip")
    library = await make_library(state, products=2, skus_per_product=2)
    store = chain.stores["SH01"]
    await list_in_store(state, store, library.sku_ids, on_hand=5)
    writing = True
    written = 0
    wrote = asyncio.Event()

    async def until_written(count: int) -> None:
        while written < count:
            wrote.clear()
            await wrote.wait()

    async def receive_all_day() -> None:
        nonlocal written
        while writing:
            sku = library.sku_ids[written % len(library.sku_ids)]
            body = await api.gql(RECEIVE, {"store": gid("Store", store), "sku": gid("Sku", sku)}, as_="sh01.manager")
            assert body["data"]["receiveStock"]["errors"] == [], body
            written += 1
            wrote.set()

    writer = asyncio.create_task(receive_all_day())
    await until_written(5)
    before = await _movements(url)
    copy = await asyncio.to_thread(backup, url, tmp_path / "backup.db")  # the app keeps writing meanwhile
    during = written
    await until_written(during + 5)
    writing = False
    await writer
    after = await _movements(url)

    restored = f"sqlite+aiosqlite:///{tmp_path / 'restored.db'}"
    await asyncio.to_thread(restore, restored, copy)
    assert await _check(restored) == []
    assert before <= await _movements(restored) < after  # one moment between the two, not the end state
    assert await _check(url) == []  # and the live database, written on all along


async def test_check_names_the_rows_that_break_a_rule(state: AppState, chain: Chain) -> None:
    library = await make_library(state, products=1, skus_per_product=1)
    await list_in_store(state, chain.stores["SH01"], library.sku_ids, on_hand=3)
    async with state.sessionmaker() as session, session.begin():
        await session.execute(update(models.StockLevel).values(on_hand=models.StockLevel.on_hand + 1))
    async with state.sessionmaker() as session:
        results = await check_database(session)
    text = report(results)
    stock = next(c for c in results if c.name == "stock = sum of movements")
    assert not stock.ok and f"sku {library.sku_ids[0]}: on hand 4 reserved 0, movements say 3 and 0" in text
    assert all(c.ok for c in results if c is not stock)


def _cli(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


async def test_the_operator_commands_back_up_restore_and_check(tmp_path: Path) -> None:
    source = f"sqlite+aiosqlite:///{tmp_path / 'chain.db'}"
    target = f"sqlite+aiosqlite:///{tmp_path / 'restored.db'}"
    assert _cli("migrate", url=source).returncode == 0
    assert _cli("seed-demo", url=source).returncode == 0
    done = _cli("backup", str(tmp_path / "nightly.db"), url=source)
    assert done.returncode == 0, done.stderr
    assert _cli("restore", str(tmp_path / "nightly.db"), url=target).returncode == 0
    checked = _cli("check", url=target)
    assert checked.returncode == 0, checked.stdout
    assert "stock = sum of movements: ok" in checked.stdout
    missing = _cli("restore", str(tmp_path / "nope.db"), url=target)
    assert missing.returncode == 2 and "no backup at" in missing.stderr
    never_migrated = _cli("check", url=f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    assert never_migrated.returncode == 1 and "migrations at head: FAILED" in never_migrated.stdout


@pytest.mark.postgres
async def test_pg_dump_and_restore_round_trip(pg_problem: str | None, tmp_path: Path) -> None:
    if pg_problem:
        if IN_CI:
            pytest.fail(f"CI=true but {pg_problem}")
        pytest.skip(pg_problem)
    base = os.environ.get("PG_TEST_URL", "postgresql://postgres@127.0.0.1:5432/test").rpartition("/")[0]
    names = [f"backup_{uuid.uuid4().hex[:8]}_{side}" for side in ("source", "target")]
    admin = await asyncpg.connect(f"{base}/test")
    try:
        for name in names:
            await admin.execute(f'CREATE DATABASE "{name}"')
        source, target = (f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{n}" for n in names)
        engine = create_engine(source)
        await upgrade(engine)
        await engine.dispose()
        assert _cli("seed-demo", url=source).returncode == 0
        await asyncio.to_thread(backup, source, tmp_path / "chain.dump")
        await asyncio.to_thread(restore, target, tmp_path / "chain.dump")
        assert await _check(target) == []
        assert await _movements(target) == await _movements(source) > 0
    finally:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

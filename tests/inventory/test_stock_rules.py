"""The stock rule, in services/inventory/stock.py: never negative, never promised twice, on hand = sum of movements."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select, text

from models import AdjustmentReason, StockLevel, StockMovement
from services.inventory import stock
from services.platform.db import create_sessionmaker, write_transaction
from services.platform.errors import DomainError
from tests.conftest import fresh_engine
from tests.factories import list_in_store, make_library


async def _ledger_matches(state, store_id, sku_id):
    async with state.sessionmaker() as session:
        level = await session.scalar(
            select(StockLevel).where(StockLevel.store_id == store_id, StockLevel.sku_id == sku_id)
        )
        sums = (
            await session.execute(
                select(
                    func.coalesce(func.sum(StockMovement.quantity), 0),
                    func.coalesce(func.sum(StockMovement.reserved_delta), 0),
                ).where(StockMovement.store_id == store_id, StockMovement.sku_id == sku_id)
            )
        ).one()
    return level, tuple(sums)


@pytest.mark.postgres_too
async def test_fifty_concurrent_reservations_of_ten_units_succeed_exactly_ten_times(state, chain):
    library = await make_library(state, products=1, skus_per_product=1)
    sku = library.sku_ids[0]
    store = chain.stores["SH01"]
    await list_in_store(state, store, [sku])

    async def reserve_one(i: int) -> bool:
        try:
            async with write_transaction(state.sessionmaker) as session:
                await stock.reserve(session, store, [stock.Line(sku, 1)], stock.Ref("order", i))
            return True
        except stock.OutOfStock:
            return False

    for round_ in range(20):
        async with write_transaction(state.sessionmaker) as session:
            await stock.receive(session, store, [stock.Line(sku, 10)], stock.Ref("receipt", round_))
        results = await asyncio.gather(*(reserve_one(i) for i in range(50)))
        assert sum(results) == 10, f"round {round_}"
        level, (on_hand_sum, reserved_sum) = await _ledger_matches(state, store, sku)
        assert level.on_hand - level.reserved == 0
        assert level.reserved >= 0 and level.on_hand >= 0
        assert (level.on_hand, level.reserved) == (on_hand_sum, reserved_sum)
        # Hand the promised units over (a paid order) so the next round starts from zero.
        async with write_transaction(state.sessionmaker) as session:
            await stock.commit(session, store, [stock.Line(sku, 10)], stock.Ref("order", round_))


@pytest.mark.postgres_too
async def test_a_failed_multi_line_change_moves_nothing(state, chain):
    library = await make_library(state, products=1, skus_per_product=2)
    a, b = library.sku_ids
    store = chain.stores["SH01"]
    await list_in_store(state, store, [a, b], on_hand=3)
    with pytest.raises(stock.OutOfStock):
        async with write_transaction(state.sessionmaker) as session:
            await stock.sell(session, store, [stock.Line(a, 2), stock.Line(b, 5)], stock.Ref("order", 1))
    for sku in (a, b):
        level, sums = await _ledger_matches(state, store, sku)
        assert (level.on_hand, level.reserved) == (3, 0) == sums


async def test_stocktake_records_the_differences(state, chain):
    library = await make_library(state, products=1, skus_per_product=2)
    a, b = library.sku_ids
    store = chain.stores["SH02"]
    await list_in_store(state, store, [a, b], on_hand=10)
    async with write_transaction(state.sessionmaker) as session:
        differences = await stock.stocktake(session, store, {a: 7, b: 12}, stock.Ref("stocktake"))
    assert differences == {a: -3, b: 2}
    for sku, expected in ((a, 7), (b, 12)):
        level, sums = await _ledger_matches(state, store, sku)
        assert level.on_hand == expected == sums[0]


@pytest.mark.postgres_too
def test_stock_ledger_state_machine(database_url, sqlite_template, tmp_path):
    """Random receipts, adjustments, reservations, sales and transfers keep every invariant."""
    pg = database_url.startswith("postgresql")

    class StockMachine(RuleBasedStateMachine):
        STORES = (1, 2)

        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            self.engine = self.loop.run_until_complete(fresh_engine(database_url, sqlite_template, tmp_path))
            self.sessionmaker = create_sessionmaker(self.engine)
            skus = self.loop.run_until_complete(self._given())
            self.model = {(s, k): [0, 0] for s in self.STORES for k in skus}

        async def _given(self) -> list[int]:
            async with write_transaction(self.sessionmaker) as session:
                for sid in self.STORES:
                    await session.execute(
                        text(
                            "INSERT INTO stores (id, code, name, city, address, lat, lng, timezone, hours, status, created_at, updated_at) "
                            "VALUES (:id, :code, 'x', 'x', 'x', 0, 0, 'UTC', '[]', 'OPEN', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                        ),
                        {"id": sid, "code": f"S{sid}"},
                    )
                await session.execute(
                    text("INSERT INTO categories (id, name, sort, created_at) VALUES (1, 'c', 0, CURRENT_TIMESTAMP)")
                )
                await session.execute(
                    text(
                        "INSERT INTO products (id, name, category_id, images, status, created_at) VALUES (1, 'p', 1, '[]', 'ACTIVE', CURRENT_TIMESTAMP)"
                    )
                )
                for k in (1, 2):
                    await session.execute(
                        text(
                            "INSERT INTO skus (id, product_id, barcode, spec, base_price, cost_price, status, created_at) "
                            "VALUES (:id, 1, :bc, '{}', 100, 50, 'ACTIVE', CURRENT_TIMESTAMP)"
                        ),
                        {"id": k, "bc": f"BC{k:06d}"},
                    )
                for sid in self.STORES:
                    await stock.ensure_levels(session, sid, [1, 2])
            return [1, 2]

        def _run(self, action, expect_ok: bool) -> None:
            async def go() -> bool:
                try:
                    async with write_transaction(self.sessionmaker) as session:
                        await action(session)
                    return True
                except DomainError:
                    return False

            assert self.loop.run_until_complete(go()) == expect_ok

        any_store = st.sampled_from(STORES)
        any_sku = st.sampled_from([1, 2])
        qty = st.integers(min_value=1, max_value=8)

        @rule(store=any_store, sku=any_sku, q=qty)
        def receive(self, store, sku, q):
            self._run(lambda s: stock.receive(s, store, [stock.Line(sku, q)], stock.Ref()), True)
            self.model[(store, sku)][0] += q

        @rule(store=any_store, sku=any_sku, delta=st.integers(min_value=-8, max_value=8).filter(bool))
        def adjust(self, store, sku, delta):
            on_hand, reserved = self.model[(store, sku)]
            ok = on_hand + delta >= reserved
            self._run(lambda s: stock.adjust(s, store, {sku: delta}, AdjustmentReason.DAMAGE, stock.Ref()), ok)
            if ok:
                self.model[(store, sku)][0] += delta

        @rule(store=any_store, sku=any_sku, q=qty)
        def reserve(self, store, sku, q):
            on_hand, reserved = self.model[(store, sku)]
            ok = on_hand - reserved >= q
            self._run(lambda s: stock.reserve(s, store, [stock.Line(sku, q)], stock.Ref()), ok)
            if ok:
                self.model[(store, sku)][1] += q

        @rule(store=any_store, sku=any_sku, q=qty)
        def release(self, store, sku, q):
            ok = self.model[(store, sku)][1] >= q
            self._run(lambda s: stock.release(s, store, [stock.Line(sku, q)], stock.Ref()), ok)
            if ok:
                self.model[(store, sku)][1] -= q

        @rule(store=any_store, sku=any_sku, q=qty)
        def commit(self, store, sku, q):
            ok = self.model[(store, sku)][1] >= q
            self._run(lambda s: stock.commit(s, store, [stock.Line(sku, q)], stock.Ref()), ok)
            if ok:
                self.model[(store, sku)][0] -= q
                self.model[(store, sku)][1] -= q

        @rule(store=any_store, sku=any_sku, q=qty)
        def sell(self, store, sku, q):
            on_hand, reserved = self.model[(store, sku)]
            ok = on_hand - reserved >= q
            self._run(lambda s: stock.sell(s, store, [stock.Line(sku, q)], stock.Ref()), ok)
            if ok:
                self.model[(store, sku)][0] -= q

        @rule(sku=any_sku, q=qty, forward=st.booleans())
        def transfer(self, sku, q, forward):
            src, dst = (1, 2) if forward else (2, 1)
            on_hand, reserved = self.model[(src, sku)]
            ok = on_hand - reserved >= q

            async def move(s):
                await stock.transfer_out(s, src, [stock.Line(sku, q)], stock.Ref("transfer"))
                await stock.transfer_in(s, dst, [stock.Line(sku, q)], stock.Ref("transfer"))

            self._run(move, ok)
            if ok:
                self.model[(src, sku)][0] -= q
                self.model[(dst, sku)][0] += q

        @invariant()
        def ledger_and_levels_agree(self):
            async def read():
                async with self.sessionmaker() as session:
                    levels = {
                        (lv.store_id, lv.sku_id): (lv.on_hand, lv.reserved)
                        for lv in (await session.scalars(select(StockLevel))).all()
                    }
                    sums = {
                        (r[0], r[1]): (int(r[2]), int(r[3]))
                        for r in (
                            await session.execute(
                                select(
                                    StockMovement.store_id,
                                    StockMovement.sku_id,
                                    func.sum(StockMovement.quantity),
                                    func.sum(StockMovement.reserved_delta),
                                ).group_by(StockMovement.store_id, StockMovement.sku_id)
                            )
                        ).all()
                    }
                return levels, sums

            levels, sums = self.loop.run_until_complete(read())
            for key, (on_hand, reserved) in levels.items():
                assert reserved >= 0 and on_hand - reserved >= 0
                assert (on_hand, reserved) == sums.get(key, (0, 0))
                assert [on_hand, reserved] == self.model[key]

        def teardown(self):
            self.loop.run_until_complete(self.engine.dispose())
            self.loop.close()

    run_state_machine_as_test(
        StockMachine,
        settings=settings(
            max_examples=12 if pg else 20,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )

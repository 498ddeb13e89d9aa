"""Points and stored value keep their ledgers: balance = sum of entries, never negative, spent in the documented order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select

from models import BalanceEntry, BalanceLot, Member, MemberLevel, PointsEntry, PointsKind
from services.members import points, stored_value
from services.members.accounts import record_purchase
from services.members.code import MemberCodes
from services.platform.db import create_sessionmaker, write_transaction
from services.platform.errors import DomainError
from tests.conftest import fresh_engine


async def _member(state, **values) -> int:
    async with write_transaction(state.sessionmaker) as session:
        member = Member(**values)
        session.add(member)
        await session.flush()
        return member.id


@pytest.mark.postgres_too
async def test_one_hundred_concurrent_redemptions_of_one_point_from_fifty_succeed_fifty_times(state):
    member_id = await _member(state)
    async with write_transaction(state.sessionmaker) as session:
        await points.adjust(session, member_id, 50, note="given", staff_id=None)

    async def redeem(i: int) -> bool:
        try:
            async with write_transaction(state.sessionmaker) as session:
                await points.redeem(session, member_id, 1, store_id=None, ref_type="order", ref_id=i)
            return True
        except DomainError:
            return False

    results = await asyncio.gather(*(redeem(i) for i in range(100)))
    assert sum(results) == 50
    async with state.sessionmaker() as session:
        balance = await session.scalar(select(Member.points_balance).where(Member.id == member_id))
        ledger = await session.scalar(select(func.sum(PointsEntry.points)).where(PointsEntry.member_id == member_id))
    assert balance == ledger == 0


async def test_points_earned_follow_level_multiplier_and_birthday(state):
    async with state.sessionmaker() as session:
        gold_id = await session.scalar(
            select(MemberLevel.id).where(MemberLevel.name == "金卡")
        )  # the demo's 1.5x level
    birthday = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)  # noon in Shanghai
    member_id = await _member(state, level_id=gold_id, birthday=birthday.date().replace(year=1990))
    async with write_transaction(state.sessionmaker) as session:
        on_birthday = await points.earn(
            session, member_id, 12_345, store_id=None, ref_type="order", ref_id=1, at=birthday
        )
        other_day = await points.earn(
            session, member_id, 12_345, store_id=None, ref_type="order", ref_id=2, at=birthday + timedelta(days=3)
        )
    assert (on_birthday, other_day) == (123 * 150 // 100 * 2, 123 * 150 // 100)


async def test_points_expire_at_the_end_of_the_following_year_oldest_spent_first(state):
    member_id = await _member(state)
    async with write_transaction(state.sessionmaker) as session:
        await points.earn(
            session, member_id, 10_000, store_id=None, ref_type="order", ref_id=1, at=datetime(2024, 5, 1, tzinfo=UTC)
        )
        await points.earn(
            session, member_id, 5_000, store_id=None, ref_type="order", ref_id=2, at=datetime(2025, 5, 1, tzinfo=UTC)
        )
        await points.redeem(session, member_id, 30, store_id=None, ref_type="order", ref_id=3)
    async with write_transaction(state.sessionmaker) as session:
        assert await points.expire_year(session, 2024) == 70
    async with write_transaction(state.sessionmaker) as session:
        assert await points.expire_year(session, 2024) == 0  # idempotent
        assert await points.expire_year(session, 2025) == 50
    async with state.sessionmaker() as session:
        assert await session.scalar(select(Member.points_balance).where(Member.id == member_id)) == 0
    assert points.expiry_due(2024).isoformat() == "2026-01-01T00:00:00+08:00"


async def test_spend_takes_principal_first_oldest_lot_first_and_records_the_issuing_store(state, chain):
    member_id = await _member(state)
    sh01, hz01, sz01 = chain.stores["SH01"], chain.stores["HZ01"], chain.stores["SZ01"]
    async with write_transaction(state.sessionmaker) as session:
        await stored_value.top_up(
            session, member_id, principal=50_000, bonus=5_000, store_id=sh01, ref_type="topup", ref_id=1
        )
        await stored_value.top_up(
            session, member_id, principal=20_000, bonus=0, store_id=hz01, ref_type="topup", ref_id=2
        )
        moved = await stored_value.spend(session, member_id, 60_000, store_id=sz01, ref_type="order", ref_id=9)
    assert (moved.principal, moved.bonus) == (60_000, 0)
    async with state.sessionmaker() as session:
        spent = (
            await session.execute(
                select(BalanceEntry.issuer_store_id, BalanceEntry.principal, BalanceEntry.store_id)
                .where(BalanceEntry.kind == "SPEND")
                .order_by(BalanceEntry.lot_id)
            )
        ).all()
    assert [tuple(r) for r in spent] == [(sh01, -50_000, sz01), (hz01, -10_000, sz01)]
    async with write_transaction(state.sessionmaker) as session:
        moved = await stored_value.spend(session, member_id, 12_000, store_id=sz01, ref_type="order", ref_id=10)
    assert (moved.principal, moved.bonus) == (10_000, 2_000)
    async with write_transaction(state.sessionmaker) as session:
        back = await stored_value.refund(session, ref_type="order", ref_id=10, amount=3_000, store_id=sz01)
    assert (back.principal, back.bonus) == (1_000, 2_000)  # a refund unwinds the spend: bonus back first


async def test_levels_move_up_automatically_with_spend(state, chain):
    """Given the demo levels (银卡 from 1,000 yuan, 金卡 from 5,000 yuan)."""
    member_id = await _member(state)
    async with write_transaction(state.sessionmaker) as session:
        await record_purchase(session, member_id=member_id, store_id=chain.stores["SH01"], amount=60_000)
        await record_purchase(session, member_id=member_id, store_id=chain.stores["SH02"], amount=50_000)
    async with state.sessionmaker() as session:
        level = await session.scalar(
            select(MemberLevel.name).join(Member, Member.level_id == MemberLevel.id).where(Member.id == member_id)
        )
    assert level == "银卡"


def test_member_codes_expire_and_must_be_signed_with_our_key():
    codes = MemberCodes(b"k" * 32)
    now = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
    code, _ = codes.issue(42, now)
    assert codes.verify(code, now + timedelta(seconds=59)) == 42
    for bad, when, reason in (
        (code, now + timedelta(seconds=61), "MEMBER_CODE_EXPIRED"),
        (MemberCodes(b"x" * 32).issue(42, now)[0], now, "MEMBER_CODE_INVALID"),
        (code[:-2] + ("A" if code[-2] != "A" else "B") + code[-1], now, "MEMBER_CODE_INVALID"),
        ("MC1!!!", now, "MEMBER_CODE_INVALID"),
        ("hello", now, "MEMBER_CODE_INVALID"),
    ):
        try:
            codes.verify(bad, when)
        except DomainError as exc:
            assert exc.code == reason, bad
        else:
            raise AssertionError(f"{bad} was accepted")


@pytest.mark.postgres_too
def test_loyalty_ledger_state_machine(database_url, sqlite_template, tmp_path):
    """Random earn, redeem, expire, top-up, spend and refund keep balances equal to their ledgers, never negative."""
    pg = database_url.startswith("postgresql")

    class LoyaltyMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            self.engine = self.loop.run_until_complete(fresh_engine(database_url, sqlite_template, tmp_path))
            self.sessionmaker = create_sessionmaker(self.engine)
            self.member_id = self.loop.run_until_complete(self._given())
            self.points = 0
            self.principal = 0
            self.bonus = 0
            self.spends: list[int] = []
            self.ref = 0

        async def _given(self) -> int:
            async with write_transaction(self.sessionmaker) as session:
                member = Member()
                session.add(member)
                await session.flush()
                return member.id

        def _run(self, action) -> object:
            async def go():
                async with write_transaction(self.sessionmaker) as session:
                    return await action(session)

            try:
                return self.loop.run_until_complete(go())
            except DomainError:
                return DomainError

        def _next_ref(self) -> int:
            self.ref += 1
            return self.ref

        @rule(amount=st.integers(min_value=0, max_value=50_000), year=st.sampled_from([2024, 2025, 2026]))
        def earn(self, amount, year):
            at = datetime(year, 6, 1, tzinfo=UTC)
            got = self._run(
                lambda s: points.earn(
                    s, self.member_id, amount, store_id=None, ref_type="order", ref_id=self._next_ref(), at=at
                )
            )
            assert got == amount // 100
            self.points += amount // 100

        @rule(n=st.integers(min_value=1, max_value=300))
        def redeem(self, n):
            got = self._run(
                lambda s: points.redeem(s, self.member_id, n, store_id=None, ref_type="order", ref_id=self._next_ref())
            )
            assert (got is DomainError) == (n > self.points)
            if got is not DomainError:
                self.points -= n

        @rule(year=st.sampled_from([2024, 2025]))
        def expire(self, year):
            expired = self._run(lambda s: points.expire_year(s, year))
            assert isinstance(expired, int) and 0 <= expired <= self.points
            self.points -= expired

        @rule(principal=st.integers(min_value=1, max_value=100_000), bonus_pct=st.sampled_from([0, 5, 10]))
        def top_up(self, principal, bonus_pct):
            bonus = principal * bonus_pct // 100
            self._run(
                lambda s: stored_value.top_up(
                    s,
                    self.member_id,
                    principal=principal,
                    bonus=bonus,
                    store_id=None,
                    ref_type="topup",
                    ref_id=self._next_ref(),
                )
            )
            self.principal += principal
            self.bonus += bonus

        @rule(amount=st.integers(min_value=1, max_value=150_000))
        def spend(self, amount):
            ref = self._next_ref()
            moved = self._run(
                lambda s: stored_value.spend(s, self.member_id, amount, store_id=None, ref_type="order", ref_id=ref)
            )
            if amount > self.principal + self.bonus:
                assert moved is DomainError
                return
            # Principal first, then bonus.
            assert moved == stored_value.Movement(min(amount, self.principal), amount - min(amount, self.principal))
            self.principal -= moved.principal
            self.bonus -= moved.bonus
            self.spends.append(ref)

        @rule(data=st.data())
        def refund(self, data):
            if not self.spends:
                return
            ref = data.draw(st.sampled_from(self.spends))
            back = self._run(lambda s: stored_value.refund(s, ref_type="order", ref_id=ref, store_id=None))
            if not isinstance(back, stored_value.Movement):  # already refunded in full
                return
            self.principal += back.principal
            self.bonus += back.bonus

        @invariant()
        def balances_equal_ledgers(self):
            async def read():
                async with self.sessionmaker() as session:
                    member = await session.get(Member, self.member_id)
                    pts = await session.scalar(
                        select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
                            PointsEntry.member_id == self.member_id
                        )
                    )
                    p, b = (
                        await session.execute(
                            select(
                                func.coalesce(func.sum(BalanceEntry.principal), 0),
                                func.coalesce(func.sum(BalanceEntry.bonus), 0),
                            ).where(BalanceEntry.member_id == self.member_id)
                        )
                    ).one()
                    lots = (
                        await session.execute(
                            select(
                                func.coalesce(func.sum(BalanceLot.principal_left), 0),
                                func.coalesce(func.sum(BalanceLot.bonus_left), 0),
                            ).where(BalanceLot.member_id == self.member_id)
                        )
                    ).one()
                    negative = await session.scalar(
                        select(func.count())
                        .select_from(PointsEntry)
                        .where(PointsEntry.kind == PointsKind.EARN, PointsEntry.points < 0)
                    )
                return member, pts, (p, b), tuple(lots), negative

            member, pts, ledger, lots, negative = self.loop.run_until_complete(read())
            assert member.points_balance == pts == self.points >= 0
            assert (member.balance_principal, member.balance_bonus) == ledger == lots == (self.principal, self.bonus)
            assert member.balance_principal >= 0 and member.balance_bonus >= 0 and negative == 0

        def teardown(self):
            self.loop.run_until_complete(self.engine.dispose())
            self.loop.close()

    run_state_machine_as_test(
        LoyaltyMachine,
        settings=settings(
            max_examples=12 if pg else 25,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )

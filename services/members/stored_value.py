"""Stored value (储值): top-ups with bonus, spending and refunds in any store, cleared between stores.

Every top-up is a lot that remembers the store that took the money in. Spending takes principal
before bonus, each from the oldest lot first; a refund puts back exactly what its spend took, to
the same lots. Each movement is a ledger row naming the store where it happened and the issuing
store, so settlement can clear between stores. A member's balances equal the sums of their ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from models import BalanceEntry, BalanceKind, BalanceLot, Member, TopUpPlan, utcnow
from services.access.permissions import Perm
from services.access.scope import Viewer
from services.platform.errors import DomainError, ErrorCode
from services.platform.validation import text

MAX_TOP_UP = 10_000_000  # 100,000 yuan


@dataclass(frozen=True)
class Movement:
    principal: int
    bonus: int


async def _change_member(session: AsyncSession, member_id: int, principal: int, bonus: int) -> None:
    """The guard: a member's balances change only if neither goes below zero."""
    result: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
        update(Member)
        .where(
            Member.id == member_id,
            Member.deleted_at.is_(None),
            Member.balance_principal + principal >= 0,
            Member.balance_bonus + bonus >= 0,
        )
        .values(balance_principal=Member.balance_principal + principal, balance_bonus=Member.balance_bonus + bonus)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise DomainError(ErrorCode.INSUFFICIENT_BALANCE, "Not enough stored value.", "amount")


async def top_up(
    session: AsyncSession,
    member_id: int,
    *,
    principal: int,
    bonus: int,
    store_id: int | None,
    ref_type: str,
    ref_id: int | None,
) -> BalanceLot:
    """Credit a paid top-up (principal) and its bonus as a new lot issued by `store_id`."""
    if not 0 < principal <= MAX_TOP_UP or not 0 <= bonus <= principal:
        raise DomainError(ErrorCode.INVALID_INPUT, "The top-up amount is not valid.", "amount")
    await _change_member(session, member_id, principal, bonus)
    lot = BalanceLot(member_id=member_id, issuer_store_id=store_id, principal_left=principal, bonus_left=bonus)
    session.add(lot)
    await session.flush()
    await session.execute(
        insert(BalanceEntry).values(
            member_id=member_id,
            lot_id=lot.id,
            kind=BalanceKind.TOP_UP,
            principal=principal,
            bonus=bonus,
            store_id=store_id,
            issuer_store_id=store_id,
            ref_type=ref_type,
            ref_id=ref_id,
            created_at=utcnow(),
        )
    )
    return lot


async def _open_lots(session: AsyncSession, member_id: int) -> list[BalanceLot]:
    """The member's lots with anything left, oldest first."""
    return list(
        (
            await session.scalars(
                select(BalanceLot)
                .where(BalanceLot.member_id == member_id, (BalanceLot.principal_left > 0) | (BalanceLot.bonus_left > 0))
                .order_by(BalanceLot.id)
            )
        ).all()
    )


def _take_from_lots(member_id: int, lots: list[BalanceLot], principal: int, bonus: int) -> dict[int, list[int]]:
    """Take the principal, then the bonus, from the lots in order; returns [principal, bonus] taken per lot id."""
    takes: dict[int, list[int]] = {lot.id: [0, 0] for lot in lots}
    for index, need in ((0, principal), (1, bonus)):
        for lot in lots:
            if need == 0:
                break
            available = lot.principal_left if index == 0 else lot.bonus_left
            take = min(available, need)
            takes[lot.id][index] += take
            need -= take
            if index == 0:
                lot.principal_left -= take
            else:
                lot.bonus_left -= take
        if need:
            raise RuntimeError(f"member {member_id}: lots do not cover the balance")
    return takes


async def spend(
    session: AsyncSession,
    member_id: int,
    amount: int,
    *,
    store_id: int | None,
    ref_type: str,
    ref_id: int | None,
    at: datetime | None = None,
) -> Movement:
    """Pay `amount` fen from stored value: principal first, then bonus, oldest lot first."""
    if amount <= 0:
        raise DomainError(ErrorCode.INVALID_INPUT, "Spend a positive amount.", "amount")
    balances = (
        await session.execute(select(Member.balance_principal, Member.balance_bonus).where(Member.id == member_id))
    ).first()
    if balances is None or balances.balance_principal + balances.balance_bonus < amount:
        raise DomainError(ErrorCode.INSUFFICIENT_BALANCE, "Not enough stored value.", "amount")
    principal = min(amount, balances.balance_principal)
    bonus = amount - principal
    # The member row is the lock: concurrent spends of one member queue here, and the guard re-checks.
    await _change_member(session, member_id, -principal, -bonus)
    lots = await _open_lots(session, member_id)
    takes = _take_from_lots(member_id, lots, principal, bonus)
    now = at or utcnow()
    by_id = {lot.id: lot for lot in lots}
    rows = [
        {
            "member_id": member_id,
            "lot_id": lot_id,
            "kind": BalanceKind.SPEND,
            "principal": -p,
            "bonus": -b,
            "store_id": store_id,
            "issuer_store_id": by_id[lot_id].issuer_store_id,
            "ref_type": ref_type,
            "ref_id": ref_id,
            "created_at": now,
        }
        for lot_id, (p, b) in takes.items()
        if p or b
    ]
    await session.execute(insert(BalanceEntry), rows)
    await session.flush()
    return Movement(principal, bonus)


async def _outstanding(session: AsyncSession, ref_type: str, ref_id: int) -> list[tuple[int, int, int, int, int]]:
    """What spends for this ref still owe back, per lot (newest first): member, lot, issuer, principal, bonus."""
    entries = (
        await session.execute(
            select(
                BalanceEntry.member_id,
                BalanceEntry.lot_id,
                BalanceEntry.issuer_store_id,
                func.sum(BalanceEntry.principal).label("p"),
                func.sum(BalanceEntry.bonus).label("b"),
            )
            .where(BalanceEntry.ref_type == ref_type, BalanceEntry.ref_id == ref_id)
            .group_by(BalanceEntry.member_id, BalanceEntry.lot_id, BalanceEntry.issuer_store_id)
            .order_by(BalanceEntry.lot_id.desc())
        )
    ).all()
    return [(r.member_id, r.lot_id, r.issuer_store_id, -int(r.p), -int(r.b)) for r in entries if r.p < 0 or r.b < 0]


def _split_refund(outstanding: list[tuple[int, int, int, int, int]], want: int) -> dict[int, list[int]]:
    """Spread `want` fen over the outstanding lots: bonus first, then principal; [principal, bonus] per lot id."""
    give: dict[int, list[int]] = {lot_id: [0, 0] for _, lot_id, *_ in outstanding}
    for index in (1, 0):  # bonus first, then principal
        for _member, lot_id, _issuer, p, b in outstanding:
            take = min((p, b)[index], want)
            give[lot_id][index] += take
            want -= take
    return give


async def refund(
    session: AsyncSession, *, ref_type: str, ref_id: int, amount: int | None = None, store_id: int | None
) -> Movement:
    """Give back what a spend took (all, or `amount` fen of it): bonus first, then principal, newest lot first.

    Refunds are the spend unwound in reverse, so a partial refund returns bonus before the member's own money
    is counted back. What was already refunded for this ref is never refunded twice.
    """
    outstanding = await _outstanding(session, ref_type, ref_id)
    total = sum(p + b for *_, p, b in outstanding)
    want = total if amount is None else amount
    if want <= 0 or want > total:
        raise DomainError(ErrorCode.INVALID_INPUT, f"At most {total} fen can be refunded.", "amount")
    give = _split_refund(outstanding, want)
    back_p = back_b = 0
    rows = []
    for member_id, lot_id, issuer, _p, _b in outstanding:
        give_p, give_b = give[lot_id]
        if give_p or give_b:
            await session.execute(
                update(BalanceLot)
                .where(BalanceLot.id == lot_id)
                .values(principal_left=BalanceLot.principal_left + give_p, bonus_left=BalanceLot.bonus_left + give_b)
            )
            await _change_member(session, member_id, give_p, give_b)
            rows.append(
                {
                    "member_id": member_id,
                    "lot_id": lot_id,
                    "kind": BalanceKind.REFUND,
                    "principal": give_p,
                    "bonus": give_b,
                    "store_id": store_id,
                    "issuer_store_id": issuer,
                    "ref_type": ref_type,
                    "ref_id": ref_id,
                    "created_at": utcnow(),
                }
            )
            back_p, back_b = back_p + give_p, back_b + give_b
    await session.execute(insert(BalanceEntry), rows)
    return Movement(back_p, back_b)


async def create_plan(session: AsyncSession, *, name: str, pay_amount: int, bonus_amount: int) -> TopUpPlan:
    if not 0 < pay_amount <= MAX_TOP_UP or not 0 <= bonus_amount <= pay_amount:
        raise DomainError(ErrorCode.INVALID_INPUT, "Bonus may be at most the amount paid.", "bonusAmount")
    plan = TopUpPlan(name=text(name, "name", max_len=64), pay_amount=pay_amount, bonus_amount=bonus_amount, active=True)
    session.add(plan)
    await session.flush()
    return plan


async def list_plans(session: AsyncSession, viewer: Viewer) -> list[TopUpPlan]:
    """The top-up plans, cheapest first: the active ones, and for those who manage member rules every one."""
    stmt = select(TopUpPlan).order_by(TopUpPlan.pay_amount)
    if not viewer.can(Perm.MEMBER_MANAGE):
        stmt = stmt.where(TopUpPlan.active.is_(True))
    return list((await session.scalars(stmt)).all())

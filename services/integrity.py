"""Does a database hold together? What `python -m services.cli check` runs after a restore (and any time).

Each check reads the database as it is and names every row that breaks its rule:
- migrations: the database is at the code's alembic head;
- stock: every level's on hand and reserved equal the sums of its movements;
- points: every member's balance equals the sum of their points ledger;
- stored value: every member's principal and bonus equal their ledger's sums and what their lots have left;
- cards: every card's uses and value left equal the sums of its ledger, and never go below zero;
- settlements: every closed day's frozen figures equal a recomputation from the orders, payments and top-ups.
A late provider notification for a day already closed shows up in the last check: the money is real, the
frozen day did not see it (the late payment is reconciled on the day it arrived, see services/orders/late_payments.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from alembic.script import ScriptDirectory
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    BalanceEntry,
    BalanceLot,
    CardEntry,
    Member,
    MemberCard,
    PointsEntry,
    Settlement,
    StockLevel,
    StockMovement,
    Store,
)
from services.orders.settlement import compute
from services.platform.migrate import alembic_config

SHOWN = 20  # findings printed per check; the count is always whole


@dataclass
class Check:
    name: str
    rows: int = 0  # rows the check looked at
    findings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


async def _migrations(session: AsyncSession) -> Check:
    check = Check("migrations at head")
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    try:
        current = await session.scalar(text("SELECT version_num FROM alembic_version"))
    except DBAPIError as error:  # no alembic_version table: the database was never migrated
        check.findings.append(f"no alembic version table ({type(error).__name__})")
        return check
    check.rows = 1
    if current != head:
        check.findings.append(f"database at {current}, code at {head}")
    return check


async def _stock(session: AsyncSession) -> Check:
    check = Check("stock = sum of movements")
    moved = (
        select(
            StockMovement.store_id,
            StockMovement.sku_id,
            func.sum(StockMovement.quantity).label("on_hand"),
            func.sum(StockMovement.reserved_delta).label("reserved"),
        )
        .group_by(StockMovement.store_id, StockMovement.sku_id)
        .subquery()
    )
    rows = (
        await session.execute(
            select(
                StockLevel.store_id,
                StockLevel.sku_id,
                StockLevel.on_hand,
                StockLevel.reserved,
                func.coalesce(moved.c.on_hand, 0),
                func.coalesce(moved.c.reserved, 0),
            ).outerjoin(moved, (moved.c.store_id == StockLevel.store_id) & (moved.c.sku_id == StockLevel.sku_id))
        )
    ).all()
    check.rows = len(rows)
    for store_id, sku_id, on_hand, reserved, m_on_hand, m_reserved in rows:
        if (on_hand, reserved) != (m_on_hand, m_reserved):
            check.findings.append(
                f"store {store_id} sku {sku_id}: on hand {on_hand} reserved {reserved}, "
                f"movements say {m_on_hand} and {m_reserved}"
            )
    return check


async def _points(session: AsyncSession) -> Check:
    check = Check("points = ledger")
    ledger = (
        select(PointsEntry.member_id, func.sum(PointsEntry.points).label("points"))
        .group_by(PointsEntry.member_id)
        .subquery()
    )
    rows = (
        await session.execute(
            select(Member.id, Member.points_balance, func.coalesce(ledger.c.points, 0)).outerjoin(
                ledger, ledger.c.member_id == Member.id
            )
        )
    ).all()
    check.rows = len(rows)
    check.findings = [f"member {m}: balance {b}, ledger {s}" for m, b, s in rows if b != s]
    return check


async def _stored_value(session: AsyncSession) -> Check:
    check = Check("stored value = ledger = lots")
    entries = (
        select(
            BalanceEntry.member_id,
            func.sum(BalanceEntry.principal).label("principal"),
            func.sum(BalanceEntry.bonus).label("bonus"),
        )
        .group_by(BalanceEntry.member_id)
        .subquery()
    )
    lots = (
        select(
            BalanceLot.member_id,
            func.sum(BalanceLot.principal_left).label("principal"),
            func.sum(BalanceLot.bonus_left).label("bonus"),
        )
        .group_by(BalanceLot.member_id)
        .subquery()
    )
    rows = (
        await session.execute(
            select(
                Member.id,
                Member.balance_principal,
                Member.balance_bonus,
                func.coalesce(entries.c.principal, 0),
                func.coalesce(entries.c.bonus, 0),
                func.coalesce(lots.c.principal, 0),
                func.coalesce(lots.c.bonus, 0),
            )
            .outerjoin(entries, entries.c.member_id == Member.id)
            .outerjoin(lots, lots.c.member_id == Member.id)
        )
    ).all()
    check.rows = len(rows)
    for member_id, principal, bonus, e_principal, e_bonus, l_principal, l_bonus in rows:
        if not (principal == e_principal == l_principal and bonus == e_bonus == l_bonus):
            check.findings.append(
                f"member {member_id}: balance {principal}+{bonus}, ledger {e_principal}+{e_bonus}, "
                f"lots {l_principal}+{l_bonus}"
            )
    return check


async def _cards(session: AsyncSession) -> Check:
    check = Check("cards = ledger")
    ledger = (
        select(CardEntry.card_id, func.sum(CardEntry.units).label("units"), func.sum(CardEntry.value).label("value"))
        .group_by(CardEntry.card_id)
        .subquery()
    )
    rows = (
        await session.execute(
            select(
                MemberCard.id,
                MemberCard.units_left,
                MemberCard.value_left,
                func.coalesce(ledger.c.units, 0),
                func.coalesce(ledger.c.value, 0),
            ).outerjoin(ledger, ledger.c.card_id == MemberCard.id)
        )
    ).all()
    check.rows = len(rows)
    check.findings = [
        f"card {c}: left {u} uses, {v} fen; ledger {lu}, {lv}"
        for c, u, v, lu, lv in rows
        if (u, v) != (lu, lv) or u < 0 or v < 0
    ]
    return check


async def _settlements(session: AsyncSession) -> Check:
    check = Check("closed settlements unchanged")
    rows = (await session.execute(select(Settlement, Store).join(Store, Store.id == Settlement.store_id))).all()
    check.rows = len(rows)
    for settlement, store in rows:
        if await compute(session, store, settlement.business_day) != settlement.figures:
            check.findings.append(
                f"store {store.code} {settlement.business_day}: frozen figures differ from the ledger"
            )
    return check


CHECKS = (_migrations, _stock, _points, _stored_value, _cards, _settlements)


async def check_database(session: AsyncSession) -> list[Check]:
    """Every check, in order; a failed migration check stops there (the other tables may not be there)."""
    results = [await _migrations(session)]
    if results[0].ok:
        results += [await run(session) for run in CHECKS[1:]]
    return results


def report(results: list[Check]) -> str:
    lines = []
    for check in results:
        status = "ok" if check.ok else f"FAILED ({len(check.findings)})"
        lines.append(f"{check.name}: {status}, {check.rows} rows looked at")
        lines += [f"  {finding}" for finding in check.findings[:SHOWN]]
        if len(check.findings) > SHOWN:
            lines.append(f"  ... and {len(check.findings) - SHOWN} more")
    return "\n".join(lines)

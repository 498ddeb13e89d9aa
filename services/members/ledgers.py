"""Reading the points and stored-value ledgers (积分明细 / 余额明细): newest first, each row with the balance after it.

The ledgers are append-only and a member's balance is the sum of their rows, so the balance after a row is the
running sum up to it. One statement reads a page for many members at once (a window per member), so the
number of statements does not grow with the page size or the number of members shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import BalanceEntry, Member, PointsEntry
from services.access.permissions import Perm
from services.access.scope import Viewer, require
from services.platform.pagination import Page, encode_cursor


@dataclass(frozen=True)
class PointsRow:
    entry: PointsEntry
    balance_after: int


@dataclass(frozen=True)
class BalanceRow:
    entry: BalanceEntry
    principal_after: int
    bonus_after: int


def _page_query(
    entity: type[PointsEntry] | type[BalanceEntry],
    running: Sequence[Any],
    member_ids: Sequence[int],
    visible: ColumnElement[bool],
    *,
    first: int,
    after_id: int | None,
) -> Select[Any]:
    """Rows of `entity` for `member_ids`, newest first, at most first + 1 per member, with running sums.

    The running sums are taken over the member's whole ledger before the page is cut, so a later page's
    balances are still right; `visible` (a condition on Member) keeps out members the viewer may not see.
    """
    member_col, id_col = entity.member_id, entity.id
    sums = [
        func.sum(col).over(partition_by=member_col, order_by=id_col).label(f"after_{i}")
        for i, col in enumerate(running)
    ]
    whole = (
        select(id_col.label("id"), member_col.label("member_id"), *sums)
        .where(member_col.in_(member_ids), member_col.in_(select(Member.id).where(visible)))
        .subquery()
    )
    ranked = select(
        whole.c.id,
        *(whole.c[f"after_{i}"] for i in range(len(running))),
        func.row_number().over(partition_by=whole.c.member_id, order_by=whole.c.id.desc()).label("rn"),
    )
    if after_id is not None:
        ranked = ranked.where(whole.c.id < after_id)
    cut = ranked.subquery()
    return (
        select(entity, *(cut.c[f"after_{i}"] for i in range(len(running))))
        .join(cut, cut.c.id == id_col)
        .where(cut.c.rn <= first + 1)
        .order_by(member_col, id_col.desc())
    )


def _pages(rows: Sequence[Any], member_ids: Sequence[int], first: int) -> dict[int, Page[Any]]:
    by_member: dict[int, list[Any]] = {m: [] for m in member_ids}
    for row in rows:
        by_member[row.entry.member_id].append(row)
    return {
        m: Page(
            rows=found[:first], has_next=len(found) > first, cursors=[encode_cursor(r.entry.id) for r in found[:first]]
        )
        for m, found in by_member.items()
    }


def require_reader(viewer: Viewer) -> None:
    """A member reads their own ledgers (the loader keeps them to their own rows); staff need member.read."""
    if not viewer.is_member:
        require(viewer, Perm.MEMBER_READ)


async def points_pages(
    session: AsyncSession, member_ids: Sequence[int], visible: ColumnElement[bool], *, first: int, after_id: int | None
) -> dict[int, Page[PointsRow]]:
    """A page of each member's points ledger: one statement."""
    stmt = _page_query(PointsEntry, [PointsEntry.points], member_ids, visible, first=first, after_id=after_id)
    rows = [PointsRow(entry, int(after)) for entry, after in (await session.execute(stmt)).all()]
    return _pages(rows, member_ids, first)


async def balance_pages(
    session: AsyncSession, member_ids: Sequence[int], visible: ColumnElement[bool], *, first: int, after_id: int | None
) -> dict[int, Page[BalanceRow]]:
    """A page of each member's stored-value ledger: one statement."""
    running = [BalanceEntry.principal, BalanceEntry.bonus]
    stmt = _page_query(BalanceEntry, running, member_ids, visible, first=first, after_id=after_id)
    rows = [BalanceRow(e, int(p), int(b)) for e, p, b in (await session.execute(stmt)).all()]
    return _pages(rows, member_ids, first)

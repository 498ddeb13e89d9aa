"""Reading cards: a member's own cards and history, the cards a clerk may use for an identified member, a store's
card uses at its own counter, HQ's report of cards sold, used and outstanding by store, and the day's clearing
figures settlement adds. Staff see only entries at their stores' counters; members only their own."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, false, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import CardEntry, CardMove, CardProduct, CardSale, CardStatus, Member, MemberCard, Store
from services.access.permissions import Perm
from services.access.scope import Viewer, require, require_store, restrict
from services.members.accounts import may_see, visible_members
from services.platform.errors import AccessDenied, DomainError, ErrorCode
from services.platform.pagination import AnySelect, Page, keyset_page

# Uses, and uses given back when the goods they paid for are refunded: both count where they happen.
USES = (CardMove.USE, CardMove.RETURN)


async def my_cards(
    session: AsyncSession, viewer: Viewer, *, with_left: bool, first: int | None, after: str | None
) -> Page[MemberCard]:
    """The member's own cards, newest first; with_left: only those with uses (or value) left."""
    if not viewer.is_member:
        raise AccessDenied("Only members have cards here.")
    stmt = select(MemberCard).where(MemberCard.member_id == viewer.member_id)
    if with_left:
        stmt = stmt.where(MemberCard.status == CardStatus.ACTIVE, MemberCard.units_left > 0)
    return await keyset_page(session, stmt, MemberCard.id, first=first, after=after, descending=True)


async def member_cards(session: AsyncSession, viewer: Viewer, member_id: int) -> list[MemberCard]:
    """The active cards of a member identified at the counter, soonest to expire first."""
    require(viewer, Perm.MEMBER_LOOKUP)
    if not await may_see(session, viewer, member_id, Perm.MEMBER_LOOKUP):
        raise DomainError(ErrorCode.NOT_FOUND, "No such member.", "memberId")
    stmt = (
        select(MemberCard)
        .where(MemberCard.member_id == member_id, MemberCard.status == CardStatus.ACTIVE, MemberCard.units_left > 0)
        .order_by(MemberCard.expires_at, MemberCard.id)
        .limit(100)
    )
    return list((await session.scalars(stmt)).all())


def visible_entries(stmt: AnySelect, viewer: Viewer) -> AnySelect:
    """Card entries the viewer may see: a member their own, staff those at their stores' counters, HQ all."""
    if viewer.is_member:
        return stmt.where(CardEntry.member_id == viewer.member_id)
    if viewer.is_staff:
        return restrict(stmt, viewer, CardEntry.store_id, Perm.ORDER_READ)
    return stmt.where(false())


async def entries_of(session: AsyncSession, viewer: Viewer, card_ids: Sequence[int]) -> list[CardEntry]:
    """The visible history of these cards, newest first."""
    stmt = select(CardEntry).where(CardEntry.card_id.in_(list(card_ids))).order_by(CardEntry.id.desc())
    return list((await session.scalars(visible_entries(stmt, viewer))).all())


async def card_uses(
    session: AsyncSession, viewer: Viewer, *, store_id: int, first: int | None, after: str | None
) -> Page[CardEntry]:
    """Card uses at this store's counter, newest first."""
    require_store(viewer, store_id, Perm.ORDER_READ)
    stmt = select(CardEntry).where(CardEntry.store_id == store_id, CardEntry.kind.in_(USES))
    return await keyset_page(
        session, visible_entries(stmt, viewer), CardEntry.id, first=first, after=after, descending=True
    )


async def products_by_id(session: AsyncSession, ids: Sequence[int]) -> list[CardProduct]:
    return list((await session.scalars(select(CardProduct).where(CardProduct.id.in_(list(ids))))).all())


@dataclass
class StoreCards:
    """One store's cards: sold (issued by it), used at its counter, and what it still owes (its liability)."""

    store_id: int
    sold_count: int = 0
    sold_value: int = 0
    uses: int = 0
    used_value: int = 0
    refunded_value: int = 0
    expired_value: int = 0
    outstanding_value: int = 0
    receivable: int = 0  # value used here of cards other stores issued
    payable: int = 0  # value used elsewhere of cards this store issued

    @property
    def clearing(self) -> int:
        """What the chain owes this store for card uses (negative: what it owes the chain); sums to zero."""
        return self.receivable - self.payable


def _sum(kind: CardMove, column: Any = CardEntry.value) -> Any:
    return func.coalesce(func.sum(case((CardEntry.kind == kind, column), else_=0)), 0)


def _used(column: Any) -> Any:
    """Uses net of those given back by order refunds (negative: taken off the cards)."""
    return func.coalesce(func.sum(case((CardEntry.kind.in_(USES), column), else_=0)), 0)


def _elsewhere() -> Any:
    """Value of uses made in a store other than the card's issuer (positive fen)."""
    away = CardEntry.kind.in_(USES) & (CardEntry.store_id != CardEntry.issuer_store_id)
    return -func.coalesce(func.sum(case((away, CardEntry.value), else_=0)), 0)


async def report(
    session: AsyncSession, viewer: Viewer, *, since: datetime | None = None, until: datetime | None = None
) -> list[StoreCards]:
    """Cards sold, used, refunded and expired by store over the period (all time without one), with each store's
    outstanding liability now and its clearing with the rest of the chain."""
    require(viewer, Perm.REPORT_VIEW)
    stores = restrict(select(Store.id).order_by(Store.id), viewer, Store.id, Perm.REPORT_VIEW)
    out = {sid: StoreCards(sid) for sid in (await session.scalars(stores)).all()}
    period = [CardEntry.created_at >= since] if since else []
    period += [CardEntry.created_at < until] if until else []
    await _by_issuer(session, viewer, out, period)
    used = (
        select(CardEntry.store_id, -_used(CardEntry.units), -_used(CardEntry.value), _elsewhere())
        .where(*period)
        .group_by(CardEntry.store_id)
    )
    for sid, uses, value, receivable in (await session.execute(_scoped(used, viewer, CardEntry.store_id))).all():
        out[sid].uses, out[sid].used_value, out[sid].receivable = int(uses), int(value), int(receivable)
    owed = select(MemberCard.issuer_store_id, func.sum(MemberCard.value_left)).group_by(MemberCard.issuer_store_id)
    for sid, left in (await session.execute(_scoped(owed, viewer, MemberCard.issuer_store_id))).all():
        out[sid].outstanding_value = int(left)
    return list(out.values())


def _scoped(stmt: Any, viewer: Viewer, column: Any) -> Any:
    """A sum over the viewer's stores only, in the database: a store's manager never makes it add up the chain's
    cards. The joined stores keep rows for stores closed or deleted since out of HQ's report."""
    return restrict(stmt, viewer, column, Perm.REPORT_VIEW).join(Store, Store.id == column)


async def _by_issuer(session: AsyncSession, viewer: Viewer, out: dict[int, StoreCards], period: list[Any]) -> None:
    """What each store issued: cards sold, value sold, refunded and expired, and its cards' value used elsewhere."""
    issued = (
        select(
            CardEntry.issuer_store_id,
            _sum(CardMove.ISSUE, 1),
            _sum(CardMove.ISSUE),
            -_sum(CardMove.REFUND),
            -_sum(CardMove.EXPIRE),
            _elsewhere(),
        )
        .where(*period)
        .group_by(CardEntry.issuer_store_id)
    )
    for sid, count, sold, refunded, expired, payable in (
        await session.execute(_scoped(issued, viewer, CardEntry.issuer_store_id))
    ).all():
        row = out[sid]
        row.sold_count, row.sold_value = int(count), int(sold)
        row.refunded_value, row.expired_value, row.payable = int(refunded), int(expired), int(payable)


async def day_figures(session: AsyncSession, store_id: int, start: datetime, end: datetime) -> dict[str, Any]:
    """Settlement's card figures for a store's day: counter card sales' tenders (in the takings), card refunds paid
    by method (in the refunds), value sold, value used here by issuing store (what each issuer owes this store), and
    the day's clearing: value used here of other stores' cards less value of this store's cards used elsewhere."""
    takings: dict[str, int] = defaultdict(int)
    for by_method in (
        await session.scalars(
            select(CardSale.by_method).where(
                CardSale.store_id == store_id,
                CardSale.online.is_(False),
                CardSale.paid_at >= start,
                CardSale.paid_at < end,
            )
        )
    ).all():
        for method, amount in by_method.items():
            takings[method] += int(amount)
    in_day = (CardEntry.created_at >= start, CardEntry.created_at < end)
    refunds: dict[str, int] = defaultdict(int)
    for method, value in (
        await session.execute(
            select(CardEntry.ref_type, func.sum(CardEntry.value))
            .where(CardEntry.store_id == store_id, CardEntry.kind == CardMove.REFUND, *in_day)
            .group_by(CardEntry.ref_type)
        )
    ).all():
        refunds[str(method)] += -int(value)
    sold = await session.scalar(
        select(func.coalesce(func.sum(CardEntry.value), 0)).where(
            CardEntry.issuer_store_id == store_id, CardEntry.kind == CardMove.ISSUE, *in_day
        )
    )
    by_issuer: dict[str, int] = {}
    for issuer, value in (
        await session.execute(
            select(CardEntry.issuer_store_id, func.sum(CardEntry.value))
            .where(CardEntry.store_id == store_id, CardEntry.kind.in_(USES), *in_day)
            .group_by(CardEntry.issuer_store_id)
        )
    ).all():
        by_issuer[str(issuer)] = -int(value)
    used_elsewhere = await session.scalar(
        select(func.coalesce(func.sum(CardEntry.value), 0)).where(
            CardEntry.issuer_store_id == store_id,
            CardEntry.store_id != store_id,
            CardEntry.kind.in_(USES),
            *in_day,
        )
    )
    receivable = sum(v for k, v in by_issuer.items() if k != str(store_id))
    return {
        "saleTakings": dict(takings),
        "refunds": dict(refunds),
        "sold": int(sold or 0),
        "usedByIssuer": by_issuer,
        "clearing": receivable + int(used_elsewhere or 0),
    }


async def cards_by_id(session: AsyncSession, viewer: Viewer, ids: Sequence[int]) -> list[MemberCard]:
    """The cards among `ids` the viewer may see: a member their own; staff those of members they may look up."""
    stmt = select(MemberCard).where(
        MemberCard.id.in_(list(ids)),
        MemberCard.member_id.in_(select(Member.id).where(visible_members(viewer, Perm.MEMBER_LOOKUP))),
    )
    return list((await session.scalars(stmt)).all())


async def exported(session: AsyncSession, member_id: int) -> dict[str, Any]:
    """The member's cards and their own card moves, for their data export."""
    cards = (await session.scalars(select(MemberCard).where(MemberCard.member_id == member_id))).all()
    moves = (
        await session.scalars(select(CardEntry).where(CardEntry.member_id == member_id).order_by(CardEntry.id))
    ).all()
    return {
        "cards": [
            {
                "id": c.id,
                "productId": c.product_id,
                "kind": c.kind.value,
                "status": c.status.value,
                "unitsLeft": c.units_left,
                "valueLeft": c.value_left,
                "expiresAt": c.expires_at.isoformat(),
                "moves": [
                    {
                        "kind": e.kind.value,
                        "units": e.units,
                        "value": e.value,
                        "storeId": e.store_id,
                        "at": e.created_at.isoformat(),
                    }
                    for e in moves
                    if e.card_id == c.id
                ],
            }
            for c in cards
        ]
    }

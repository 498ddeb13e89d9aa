"""Points (积分): earned on spend, redeemed against orders, expired by a yearly job. Append-only ledger.

A member's points_balance always equals the sum of their entries; a redemption is one conditional
UPDATE checked by its row count, so concurrent redemptions never overdraw.

Expiry: points earned in year Y expire at the end of year Y+1. Redemptions use the oldest points first.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from models import Member, MemberLevel, PointsEntry, PointsKind, utcnow
from services.access.permissions import Perm
from services.access.scope import Viewer, idempotency_scope, require
from services.org.settings import ChainSettings, get_settings
from services.platform import idempotency, jobs
from services.platform.config import CHAIN_TZ
from services.platform.errors import AccessDenied, DomainError, ErrorCode


async def _apply(
    session: AsyncSession,
    member_id: int,
    points: int,
    kind: PointsKind,
    *,
    store_id: int | None = None,
    ref_type: str | None = None,
    ref_id: int | None = None,
    earned_year: int | None = None,
    note: str | None = None,
    staff_id: int | None = None,
) -> None:
    """Add a signed amount to the balance and its ledger; a debit beyond the balance is refused."""
    result: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
        update(Member)
        .where(Member.id == member_id, Member.deleted_at.is_(None), Member.points_balance + points >= 0)
        .values(points_balance=Member.points_balance + points)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise DomainError(ErrorCode.INSUFFICIENT_POINTS, "Not enough points.", "points")
    await session.execute(
        insert(PointsEntry).values(
            member_id=member_id,
            kind=kind,
            points=points,
            earned_year=earned_year,
            store_id=store_id,
            ref_type=ref_type,
            ref_id=ref_id,
            note=note,
            staff_id=staff_id,
            created_at=utcnow(),
        )
    )


def points_for(amount_fen: int, settings: ChainSettings, *, multiplier_pct: int, birthday: bool) -> int:
    """Whole yuan x points per yuan x level multiplier (x birthday multiplier), rounded down."""
    points = (amount_fen // 100) * settings.points_per_yuan * multiplier_pct // 100
    return points * settings.birthday_multiplier_pct // 100 if birthday else points


async def earn(
    session: AsyncSession,
    member_id: int,
    amount_fen: int,
    *,
    store_id: int | None,
    ref_type: str,
    ref_id: int | None,
    at: datetime | None = None,
) -> int:
    """Credit the points a purchase earns; returns them."""
    at = at or utcnow()
    row = (
        await session.execute(
            select(Member.birthday, MemberLevel.points_multiplier_pct)
            .outerjoin(MemberLevel, MemberLevel.id == Member.level_id)
            .where(Member.id == member_id)
        )
    ).first()
    if row is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such member.", "memberId")
    local = at.astimezone(CHAIN_TZ).date()
    birthday = row.birthday is not None and (row.birthday.month, row.birthday.day) == (local.month, local.day)
    points = points_for(
        amount_fen, await get_settings(session), multiplier_pct=row.points_multiplier_pct or 100, birthday=birthday
    )
    if points > 0:
        await _apply(
            session,
            member_id,
            points,
            PointsKind.EARN,
            store_id=store_id,
            ref_type=ref_type,
            ref_id=ref_id,
            earned_year=local.year,
        )
    return points


async def redeem(
    session: AsyncSession, member_id: int, points: int, *, store_id: int | None, ref_type: str, ref_id: int | None
) -> None:
    if points <= 0:
        raise DomainError(ErrorCode.INVALID_INPUT, "Redeem a positive number of points.", "points")
    await _apply(session, member_id, -points, PointsKind.REDEEM, store_id=store_id, ref_type=ref_type, ref_id=ref_id)


async def adjust(session: AsyncSession, member_id: int, points: int, *, note: str, staff_id: int | None) -> None:
    """A manual correction by HQ; it may not take the balance below zero."""
    if points == 0:
        raise DomainError(ErrorCode.INVALID_INPUT, "Adjust by a non-zero number of points.", "points")
    year = utcnow().astimezone(CHAIN_TZ).year if points > 0 else None
    await _apply(session, member_id, points, PointsKind.ADJUST, note=note, staff_id=staff_id, earned_year=year)


async def adjust_once(
    session: AsyncSession, viewer: Viewer, member_id: int, points: int, *, note: str, key: str
) -> None:
    """`adjust` once per idempotency key: a retried correction corrects once."""

    async def nothing(_: dict[str, Any]) -> None:
        return None

    await idempotency.once(
        session,
        scope=idempotency_scope(viewer, "adjustPoints"),
        key=key,
        request={"member": member_id, "points": points, "note": note},
        save=lambda _: {},
        load=nothing,
        run=lambda: adjust(session, member_id, points, note=note, staff_id=viewer.staff_id),
    )


async def adjust_by_hq(
    session: AsyncSession, viewer: Viewer, member_id: int, points: int, *, note: str, key: str
) -> Member:
    """HQ corrects a member's points, once per key; the member as corrected."""
    require(viewer, Perm.MEMBER_MANAGE)
    if not viewer.is_hq:
        raise AccessDenied("Points are adjusted by HQ.")
    await adjust_once(session, viewer, member_id, points, note=note, key=key)
    member = await session.get(Member, member_id, populate_existing=True)
    assert member is not None
    return member


async def reverse(session: AsyncSession, *, ref_type: str, ref_id: int) -> int:
    """Undo what one order did to points (a refund): redeemed points come back, earned points go.

    Earned points already spent cannot be taken back; the reversal takes what is left. Running it
    twice changes nothing the second time. Returns the net change.
    """
    done = await session.scalar(
        select(func.count())
        .select_from(PointsEntry)
        .where(PointsEntry.ref_type == ref_type, PointsEntry.ref_id == ref_id, PointsEntry.kind == PointsKind.REVERSAL)
    )
    if done:
        return 0
    rows = (
        await session.execute(
            select(PointsEntry.member_id, func.sum(PointsEntry.points))
            .where(PointsEntry.ref_type == ref_type, PointsEntry.ref_id == ref_id)
            .group_by(PointsEntry.member_id)
        )
    ).all()
    total = 0
    for member_id, net in rows:
        change = -int(net)
        if change < 0:
            balance = int(await session.scalar(select(Member.points_balance).where(Member.id == member_id)) or 0)
            change = max(change, -balance)
        if change:
            await _apply(
                session,
                member_id,
                change,
                PointsKind.REVERSAL,
                ref_type=ref_type,
                ref_id=ref_id,
                earned_year=utcnow().astimezone(CHAIN_TZ).year if change > 0 else None,
            )
            total += change
    return total


async def give_back(session: AsyncSession, member_id: int, amount: int, *, ref_type: str, ref_id: int) -> None:
    """Return redeemed points (a refund paid in points); they count as earned now."""
    year = utcnow().astimezone(CHAIN_TZ).year
    await _apply(session, member_id, amount, PointsKind.REVERSAL, ref_type=ref_type, ref_id=ref_id, earned_year=year)


async def take_back(session: AsyncSession, member_id: int, amount: int, *, ref_type: str, ref_id: int) -> int:
    """Take back up to `amount` earned points (a refund); what was already spent stays spent. Returns what was taken."""
    balance = int(await session.scalar(select(Member.points_balance).where(Member.id == member_id)) or 0)
    take = min(amount, balance)
    if take > 0:
        await _apply(session, member_id, -take, PointsKind.REVERSAL, ref_type=ref_type, ref_id=ref_id)
    return take


def _remaining_by_year(entries: list[tuple[PointsKind, int, int | None]]) -> dict[int, int]:
    """Points left per earning year: credits by year, expiries against their year, other debits oldest first."""
    left: dict[int, int] = defaultdict(int)
    debits = 0
    for kind, points, year in entries:
        if (points > 0 and year is not None) or (kind is PointsKind.EXPIRE and year is not None):
            left[year] += points
        else:
            debits -= points
    for year in sorted(left):
        take = min(left[year], debits)
        left[year] -= take
        debits -= take
    return dict(left)


async def remaining_of_year(session: AsyncSession, year: int) -> dict[int, int]:
    """Points earned in `year` that each member still holds (those with none left are not listed)."""
    members = (
        await session.scalars(
            select(PointsEntry.member_id).where(PointsEntry.earned_year == year, PointsEntry.points > 0).distinct()
        )
    ).all()
    left: dict[int, int] = {}
    for member_id in members:
        entries = (
            await session.execute(
                select(PointsEntry.kind, PointsEntry.points, PointsEntry.earned_year)
                .where(PointsEntry.member_id == member_id)
                .order_by(PointsEntry.id)
            )
        ).all()
        remaining = _remaining_by_year([(k, p, y) for k, p, y in entries]).get(year, 0)
        if remaining > 0:
            left[member_id] = remaining
    return left


async def expire_year(session: AsyncSession, year: int) -> int:
    """Expire what is left of points earned in `year` (run after the end of year+1). Idempotent."""
    expired = 0
    for member_id, remaining in (await remaining_of_year(session, year)).items():
        await _apply(session, member_id, -remaining, PointsKind.EXPIRE, earned_year=year, note=f"earned in {year}")
        expired += remaining
    return expired


def expiry_due(year: int) -> datetime:
    """When points earned in `year` expire: the first moment of year+2, chain time."""
    return datetime.combine(date(year + 2, 1, 1), datetime.min.time(), tzinfo=CHAIN_TZ)


async def schedule_expiry(session: AsyncSession, year: int) -> None:
    """Expire what is left of `year`'s points when it is due (once per year)."""
    await jobs.enqueue(
        session,
        kind="points.expire",
        dedupe_key=f"points.expire:{year}",
        due_at=expiry_due(year),
        payload={"year": year},
    )


async def _schedule_standing_expiries(session: AsyncSession, now: datetime) -> None:
    """The standing schedule: the expiry of last year's and this year's points."""
    year = now.astimezone(CHAIN_TZ).year
    for y in (year - 1, year):
        await schedule_expiry(session, y)


@jobs.job("points.expire", seed=_schedule_standing_expiries)
async def _expire_job(session: AsyncSession, payload: dict[str, Any], env: jobs.JobEnv) -> None:
    """The expiry job: this year's points go, and next year's expiry is scheduled."""
    year = int(payload["year"])
    await expire_year(session, year)
    await schedule_expiry(session, year + 1)

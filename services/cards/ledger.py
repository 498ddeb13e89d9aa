"""The card ledger: every move of a card (issue, use, refund, expire, gift) is one guarded change of the card and
one or more entries naming the store where it happened and the store that issued the card.

Value follows units pro rata: a move of k of a card's L units left takes value_left * k // L fen (all of it when
k == L), so the fen a card still owes always belong to its units left, and nothing is lost to rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from models import CardEntry, CardKind, CardMove, CardProduct, CardStatus, MemberCard, utcnow
from services.platform.errors import DomainError, ErrorCode

MAX_DAYS = 3660


@dataclass(frozen=True)
class Moved:
    units: int
    value: int


def share(card: MemberCard, units: int) -> int:
    """The fen that `units` of what is left on the card are worth."""
    return card.value_left if units == card.units_left else card.value_left * units // card.units_left


def expiry(product: CardProduct, at: datetime) -> datetime:
    """N days from purchase, or the product's fixed end; the earlier one when both are set."""
    ends = [d for d in (product.valid_until,) if d is not None]
    if product.validity_days is not None:
        ends.append(at + timedelta(days=product.validity_days))
    if not ends:
        raise DomainError(ErrorCode.INVALID_INPUT, "A card needs a validity.", "validityDays")
    return min(ends)


def units_of(product: CardProduct, at: datetime, expires_at: datetime) -> int:
    """What a new card holds: its uses (count), a day's uses times the days (period), or its face value (gift)."""
    match product.kind:
        case CardKind.COUNT:
            return int(product.uses or 0)
        case CardKind.PERIOD:
            days = max(1, -(-int((expires_at - at).total_seconds()) // 86400))
            return int(product.per_day_limit or 0) * days
        case CardKind.GIFT:
            return int(product.face_value or 0)
    return 0  # pragma: no cover


async def issue(
    session: AsyncSession,
    product: CardProduct,
    *,
    member_id: int,
    store_id: int,
    ref_type: str,
    ref_id: int,
    at: datetime | None = None,
) -> MemberCard:
    """A new card for the member, issued by `store_id`, worth what the product costs."""
    at = at or utcnow()
    expires_at = expiry(product, at)
    if expires_at <= at:
        raise DomainError(ErrorCode.CARD_NOT_USABLE, "This card product is no longer valid.", "productId")
    units = units_of(product, at, expires_at)
    card = MemberCard(
        product_id=product.id,
        member_id=member_id,
        issuer_store_id=store_id,
        kind=product.kind,
        units_total=units,
        units_left=units,
        value_total=product.price,
        value_left=product.price,
        per_day_limit=product.per_day_limit,
        expires_at=expires_at,
        status=CardStatus.ACTIVE,
        created_at=at,
    )
    session.add(card)
    await session.flush()
    await _entries(
        session,
        card,
        [(CardMove.ISSUE, card.member_id, units, product.price, None)],
        store_id,
        at,
        ref_type=ref_type,
        ref_id=ref_id,
    )
    return card


async def take(
    session: AsyncSession,
    card: MemberCard,
    kind: CardMove,
    units: int,
    *,
    store_id: int,
    ref_type: str | None = None,
    ref_id: int | None = None,
    sku_id: int | None = None,
    key: str | None = None,
    at: datetime | None = None,
    goods: int = 0,
) -> Moved:
    """Take `units` (and their value) off the card: a use, a refund or an expiry. Never below zero."""
    if units <= 0:
        raise DomainError(ErrorCode.INVALID_INPUT, "Move a positive number of units.", "units")
    value = share(card, units)
    result: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
        update(MemberCard)
        .where(MemberCard.id == card.id, MemberCard.units_left >= units, MemberCard.value_left >= value)
        .values(units_left=MemberCard.units_left - units, value_left=MemberCard.value_left - value)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise DomainError(ErrorCode.CARD_LIMIT_REACHED, "Not enough left on this card.", "units")
    card.units_left, card.value_left = card.units_left - units, card.value_left - value
    if card.units_left == 0 and card.status is CardStatus.ACTIVE:
        card.status = {CardMove.REFUND: CardStatus.REFUNDED, CardMove.EXPIRE: CardStatus.EXPIRED}.get(
            kind, CardStatus.USED_UP
        )
    at = at or utcnow()
    rows = [(kind, card.member_id, -units, -value, sku_id)]
    await _entries(session, card, rows, store_id, at, ref_type=ref_type, ref_id=ref_id, key=key, goods=-goods)
    return Moved(units, value)


async def give_back(
    session: AsyncSession, card: MemberCard, moved: Moved, *, goods: int, sku_id: int, store_id: int, order_id: int
) -> None:
    """Uses (and their value) come back to a card when goods it paid for are refunded; a used-up card is usable
    again. Never above what the card held."""
    result: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
        update(MemberCard)
        .where(
            MemberCard.id == card.id,
            MemberCard.units_left + moved.units <= MemberCard.units_total,
            MemberCard.value_left + moved.value <= MemberCard.value_total,
        )
        .values(units_left=MemberCard.units_left + moved.units, value_left=MemberCard.value_left + moved.value)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise DomainError(ErrorCode.CARD_NOT_USABLE, "The card cannot take these uses back.", "lines")
    card.units_left, card.value_left = card.units_left + moved.units, card.value_left + moved.value
    if card.status is CardStatus.USED_UP and card.units_left > 0:
        card.status = CardStatus.ACTIVE
    rows = [(CardMove.RETURN, card.member_id, moved.units, moved.value, sku_id)]
    await _entries(session, card, rows, store_id, utcnow(), ref_type="order", ref_id=order_id, goods=goods)


async def hand_over(session: AsyncSession, card: MemberCard, to_member: int, *, key: str, at: datetime) -> None:
    """A gift: everything left moves from the giver to the receiver, in one pair of entries."""
    rows = [
        (CardMove.GIFT_OUT, card.member_id, -card.units_left, -card.value_left, None),
        (CardMove.GIFT_IN, to_member, card.units_left, card.value_left, None),
    ]
    await _entries(session, card, rows, card.issuer_store_id, at, ref_type="gift", ref_id=card.id, key=key)
    card.member_id, card.share_code, card.gifted = to_member, None, True
    await session.flush()


async def _entries(
    session: AsyncSession,
    card: MemberCard,
    rows: Sequence[tuple[CardMove, int, int, int, int | None]],
    store_id: int,
    at: datetime,
    *,
    ref_type: str | None,
    ref_id: int | None,
    key: str | None = None,
    goods: int = 0,
) -> None:
    await session.execute(
        insert(CardEntry),
        [
            {
                "card_id": card.id,
                "member_id": member_id,
                "kind": kind,
                "units": units,
                "value": value,
                "store_id": store_id,
                "issuer_store_id": card.issuer_store_id,
                "sku_id": sku_id,
                "goods": goods,
                "ref_type": ref_type,
                "ref_id": ref_id,
                "idempotency_key": key,
                "created_at": at,
            }
            for kind, member_id, units, value, sku_id in rows
        ],
    )
    await session.flush()

"""A member's cards in use: paying at the counter of any valid store, refunded pro rata, expired by a daily job,
and a gift card given once to another member by a share code. Every move goes through the ledger."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import CardEntry, CardKind, CardMove, CardProduct, CardStatus, MemberCard, PaymentMethod, Store, utcnow
from services.access.permissions import Perm
from services.access.scope import Viewer, counter_store, require_store
from services.cards import ledger
from services.members import points
from services.platform import idempotency, jobs
from services.platform.errors import AccessDenied, DomainError, ErrorCode
from services.pricing.engine import CardUse, used_today

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
log = logging.getLogger(__name__)
REFUND_METHODS = frozenset({PaymentMethod.CASH, PaymentMethod.CARD, PaymentMethod.WECHAT_PAY, PaymentMethod.ALIPAY})


async def use_for_order(
    session: AsyncSession, uses: Sequence[CardUse], *, store_id: int, order_id: int, at: datetime
) -> None:
    """Take the uses the price engine allotted for an order, each line one ledger entry at this store. A card whose
    product says so earns points for the goods it paid; by default a use earns none (the sale did)."""
    cards: dict[int, MemberCard] = {}
    for use in uses:
        card = cards.get(use.card_id) or await _locked(session, use.card_id, uses, store_id, at)
        cards[card.id] = card
        await ledger.take(
            session,
            card,
            CardMove.USE,
            use.units,
            store_id=store_id,
            ref_type="order",
            ref_id=order_id,
            sku_id=use.sku_id,
            at=at,
            goods=use.amount,
        )
    for card in cards.values():
        product = await session.get(CardProduct, card.product_id)
        paid = sum(u.amount for u in uses if u.card_id == card.id)
        if product is not None and product.earns_points_on_use and paid:
            await points.earn(session, card.member_id, paid, store_id=store_id, ref_type="card", ref_id=order_id, at=at)


async def _locked(
    session: AsyncSession, card_id: int, uses: Sequence[CardUse], store_id: int, at: datetime
) -> MemberCard:
    """The card, locked: concurrent sales with one card queue here, and its per-day limit is checked again."""
    card = await session.get(MemberCard, card_id, with_for_update=True, populate_existing=True)
    assert card is not None
    if card.per_day_limit is not None and card.kind is not CardKind.GIFT:
        store = await session.get(Store, store_id)
        used = (await used_today(session, [card_id], store.timezone if store else "Asia/Shanghai", at)).get(card_id, 0)
        if used + sum(u.units for u in uses if u.card_id == card_id) > card.per_day_limit:
            raise DomainError(ErrorCode.CARD_LIMIT_REACHED, "This card's uses for today are spent.", "cardIds")
    return card


async def paid_for_order(session: AsyncSession, order_id: int) -> dict[int, int]:
    """Fen of each SKU's goods that cards paid on this order and have not had back; a card that can no longer take
    uses back (refunded or expired since) makes the order's card part unreturnable."""
    rows = (
        await session.execute(
            select(CardEntry.sku_id, func.sum(CardEntry.goods))
            .where(CardEntry.ref_type == "order", CardEntry.ref_id == order_id)
            .where(CardEntry.kind.in_([CardMove.USE, CardMove.RETURN]))
            .group_by(CardEntry.sku_id)
        )
    ).all()
    if rows and await session.scalar(
        select(func.count())
        .select_from(CardEntry)
        .join(MemberCard, MemberCard.id == CardEntry.card_id)
        .where(CardEntry.ref_type == "order", CardEntry.ref_id == order_id)
        .where(MemberCard.status.in_([CardStatus.REFUNDED, CardStatus.EXPIRED]))
    ):
        raise DomainError(ErrorCode.CARD_NOT_USABLE, "A card that paid for this order has ended.", "id")
    return {int(sku): -int(goods) for sku, goods in rows if sku is not None and goods}


async def return_to_cards(session: AsyncSession, order_id: int, goods_by_sku: dict[int, int], store_id: int) -> None:
    """Give back to the cards what they paid for refunded goods: per SKU, newest use first, each card the uses and
    value its fen of goods stand for, pro rata."""
    for sku_id, want in goods_by_sku.items():
        rows = (
            await session.execute(
                select(
                    CardEntry.card_id, func.sum(CardEntry.units), func.sum(CardEntry.value), func.sum(CardEntry.goods)
                )
                .where(CardEntry.ref_type == "order", CardEntry.ref_id == order_id, CardEntry.sku_id == sku_id)
                .where(CardEntry.kind.in_([CardMove.USE, CardMove.RETURN]))
                .group_by(CardEntry.card_id)
                .order_by(CardEntry.card_id.desc())
            )
        ).all()
        for card_id, units, value, goods in rows:
            open_units, open_value, open_goods = -int(units), -int(value), -int(goods)
            back = min(want, open_goods)
            if back <= 0:
                continue
            whole = back == open_goods
            moved = ledger.Moved(
                open_units if whole else open_units * back // open_goods,
                open_value if whole else open_value * back // open_goods,
            )
            card = await session.get(MemberCard, card_id, with_for_update=True, populate_existing=True)
            assert card is not None
            await ledger.give_back(
                session, card, moved, goods=back, sku_id=sku_id, store_id=store_id, order_id=order_id
            )
            want -= back


@dataclass(frozen=True)
class Refunded:
    card: MemberCard
    amount: int
    method: PaymentMethod


async def refund(
    session: AsyncSession, viewer: Viewer, *, card_id: int, store_id: int | None, method: PaymentMethod, key: str
) -> Refunded:
    """Buy back what is left on a card, pro rata to what was paid, by a money method at the issuing store's counter
    (or by HQ). The same key again returns the same refund; a card is refunded once."""
    store_id = counter_store(viewer, store_id)
    require_store(viewer, store_id, Perm.ORDER_REFUND)
    if method not in REFUND_METHODS:
        raise DomainError(ErrorCode.INVALID_INPUT, "Refunds go back in cash, card, WeChat or Alipay.", "method")

    async def run() -> Refunded:
        card = await session.get(MemberCard, card_id, with_for_update=True)
        if card is None or card.issuer_store_id != store_id:
            raise DomainError(ErrorCode.NOT_FOUND, "No such card issued here.", "cardId")
        if card.status is not CardStatus.ACTIVE:
            raise DomainError(ErrorCode.CARD_NOT_USABLE, "Only an active card can be refunded.", "cardId")
        moved = await ledger.take(
            session,
            card,
            CardMove.REFUND,
            card.units_left,
            store_id=store_id,
            ref_type=method.value,
            ref_id=viewer.staff_id,
            key=key,
        )
        card.status = CardStatus.REFUNDED
        return Refunded(card, moved.value, method)

    async def load(stored: dict[str, Any]) -> Refunded:
        card = await session.get(MemberCard, int(stored["card_id"]))
        assert card is not None
        return Refunded(card, int(stored["amount"]), PaymentMethod(stored["method"]))

    return await idempotency.once(
        session,
        scope=f"cardRefund:{store_id}",
        key=key,
        request={"card": card_id, "method": method.value},
        run=run,
        save=lambda r: {"card_id": r.card.id, "amount": r.amount, "method": r.method.value},
        load=load,
    )


async def share_gift(session: AsyncSession, viewer: Viewer, card_id: int) -> MemberCard:
    """The member's gift card gets a share code to send to a friend (the same code again while unclaimed)."""
    card = await _own_card(session, viewer, card_id)
    if card.kind is not CardKind.GIFT or card.gifted or card.status is not CardStatus.ACTIVE:
        raise DomainError(ErrorCode.CARD_NOT_USABLE, "Only an unused, active gift card can be given.", "cardId")
    if card.units_left != card.units_total:
        raise DomainError(ErrorCode.CARD_NOT_USABLE, "A gift card is given whole, before it is used.", "cardId")
    if card.share_code is None:
        card.share_code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))
        await session.flush()
    return card


async def redeem_gift(session: AsyncSession, viewer: Viewer, *, code: str, key: str) -> MemberCard:
    """Another member claims a shared gift card, once: the card and its value move to them."""
    if not viewer.is_member or viewer.member_id is None:
        raise AccessDenied("Only members claim gift cards.")
    member_id = viewer.member_id

    async def run() -> MemberCard:
        card = await session.scalar(
            select(MemberCard).where(MemberCard.share_code == code.strip().upper()).with_for_update()
        )
        if card is None or card.status is not CardStatus.ACTIVE or card.member_id == member_id:
            raise DomainError(ErrorCode.GIFT_CODE_INVALID, "This gift code is not valid.", "code")
        await ledger.hand_over(session, card, member_id, key=key, at=utcnow())
        return card

    async def load(stored: dict[str, Any]) -> MemberCard:
        card = await session.get(MemberCard, int(stored["card_id"]))
        assert card is not None
        return card

    return await idempotency.once(
        session,
        scope=f"giftRedeem:member:{member_id}",
        key=key,
        request={"code": code.strip().upper()},
        run=run,
        save=lambda c: {"card_id": c.id},
        load=load,
    )


async def _own_card(session: AsyncSession, viewer: Viewer, card_id: int) -> MemberCard:
    if not viewer.is_member:
        raise AccessDenied("Only the member holding the card.")
    card = await session.get(MemberCard, card_id)
    if card is None or card.member_id != viewer.member_id:
        raise DomainError(ErrorCode.NOT_FOUND, "No such card.", "cardId")
    return card


async def expire(session: AsyncSession, now: datetime) -> int:
    """Expire what is left on every active card past its end (the issuing store's breakage); idempotent."""
    due = (
        await session.scalars(
            select(MemberCard)
            .where(MemberCard.status == CardStatus.ACTIVE, MemberCard.expires_at <= now)
            .order_by(MemberCard.id)
            .with_for_update()
        )
    ).all()
    for card in due:
        if card.units_left > 0:
            await ledger.take(
                session,
                card,
                CardMove.EXPIRE,
                card.units_left,
                store_id=card.issuer_store_id,
                ref_type="expiry",
                at=now,
            )
        card.status = CardStatus.EXPIRED
    await session.flush()
    log.info("cards expired", extra={"expired": len(due)})
    return len(due)


async def expiring_cards(
    session: AsyncSession, within_days: int, *, now: datetime | None = None
) -> list[tuple[int, int, str, datetime]]:
    """(member id, card id, card name, expires at) of active cards with something left that end within
    `within_days`: for the "card expiring in 30 days" message."""
    now = now or utcnow()
    rows = await session.execute(
        select(MemberCard.member_id, MemberCard.id, CardProduct.name, MemberCard.expires_at)
        .join(CardProduct, CardProduct.id == MemberCard.product_id)
        .where(
            MemberCard.status == CardStatus.ACTIVE,
            MemberCard.units_left > 0,
            MemberCard.expires_at > now,
            MemberCard.expires_at <= now + timedelta(days=within_days),
        )
        .order_by(MemberCard.expires_at, MemberCard.id)
    )
    return [(int(m), int(c), str(n), e) for m, c, n, e in rows.all()]


# The daily job runs it (registered here, in its own domain; services/registry.py imports this module).
jobs.daily("cards.expire", hour=1)(expire)

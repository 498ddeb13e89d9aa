"""Selling cards, the way stored value is sold: at the counter paid by tenders (in the day's takings), or in the
mini-program through the payment provider (issued once, when the signed notification arrives). The store that
sells a card issues it: the unused value is that store's liability until the card is used, refunded or expires.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession

from models import CardSale, CardSaleStatus, MemberCard, Store, StoreStatus, utcnow
from services.access.permissions import Perm
from services.access.scope import Viewer, counter_store, require_store
from services.cards import ledger, products
from services.members.accounts import may_see
from services.orders.pos import COUNTER_METHODS, Tender
from services.platform import idempotency
from services.platform.errors import AccessDenied, DomainError, ErrorCode
from services.platform.payments import Notification, PaymentProvider, Prepay, paid_once

REF_PREFIX = "CRD"


@dataclass(frozen=True)
class Started:
    sale: CardSale
    prepay: Prepay | None


async def _store(session: AsyncSession, store_id: int) -> Store:
    store = await session.get(Store, store_id)
    if store is None or store.status is StoreStatus.CLOSED:
        raise DomainError(ErrorCode.NOT_FOUND, "No such store.", "storeId")
    return store


def _tendered(tenders: Sequence[Tender], amount: int) -> dict[str, int]:
    """Fen taken per money method, adding up to the price."""
    by_method: dict[str, int] = {}
    for tender in tenders:
        if tender.method not in COUNTER_METHODS or tender.amount <= 0:
            raise DomainError(ErrorCode.INVALID_INPUT, "Cards are paid in cash, card, WeChat or Alipay.", "tenders")
        by_method[tender.method.value] = by_method.get(tender.method.value, 0) + tender.amount
    if sum(by_method.values()) != amount:
        raise DomainError(ErrorCode.INVALID_INPUT, f"The tenders must add up to {amount} fen.", "tenders")
    return by_method


async def sell_at_counter(
    session: AsyncSession,
    viewer: Viewer,
    *,
    member_id: int,
    product_id: int,
    store_id: int | None,
    tenders: Sequence[Tender],
    key: str,
) -> MemberCard:
    """A card sold at the counter; the same key again returns the same card and takes nothing twice."""
    store_id = counter_store(viewer, store_id)
    require_store(viewer, store_id, Perm.ORDER_CHECKOUT)
    if not await may_see(session, viewer, member_id, Perm.MEMBER_LOOKUP):
        raise DomainError(ErrorCode.NOT_FOUND, "Identify the member at this store first.", "memberId")
    fingerprint = {
        "member": member_id,
        "product": product_id,
        "tenders": sorted((t.method.value, t.amount) for t in tenders),
    }

    async def run() -> MemberCard:
        product = await products.for_sale(session, product_id, await _store(session, store_id), at_counter=True)
        by_method = _tendered(tenders, product.price)
        now = utcnow()
        sale = CardSale(
            member_id=member_id,
            product_id=product.id,
            store_id=store_id,
            online=False,
            amount=product.price,
            by_method=by_method,
            status=CardSaleStatus.PAID,
            staff_id=viewer.staff_id,
            paid_at=now,
        )
        session.add(sale)
        await session.flush()
        card = await ledger.issue(
            session, product, member_id=member_id, store_id=store_id, ref_type="card_sale", ref_id=sale.id, at=now
        )
        sale.card_id = card.id
        return card

    return await idempotency.once(
        session,
        scope=f"cardSale:{store_id}",
        key=key,
        request=fingerprint,
        run=run,
        save=lambda card: {"card_id": card.id},
        load=lambda stored: _card(session, stored),
    )


async def _card(session: AsyncSession, stored: dict[str, Any]) -> MemberCard:
    card = await session.get(MemberCard, int(stored["card_id"]))
    assert card is not None
    return card


async def start_online(
    session: AsyncSession, viewer: Viewer, provider: PaymentProvider, *, product_id: int, store_id: int, key: str
) -> Started:
    """A member buys a card in the mini-program from a store; the same key returns the same sale (and its prepay
    while unpaid). The card is issued when the provider's notification arrives."""
    if not viewer.is_member or viewer.member_id is None:
        raise AccessDenied("Only members buy cards here.")
    member_id = viewer.member_id

    async def run() -> CardSale:
        product = await products.for_sale(session, product_id, await _store(session, store_id), at_counter=False)
        sale = CardSale(
            member_id=member_id,
            product_id=product.id,
            store_id=store_id,
            online=True,
            amount=product.price,
            status=CardSaleStatus.PENDING,
            provider=provider.name,
        )
        session.add(sale)
        await session.flush()
        sale.provider_ref = f"{REF_PREFIX}{sale.id:012d}"
        await session.flush()
        return sale

    async def load(stored: dict[str, Any]) -> CardSale:
        sale = await session.get(CardSale, int(stored["sale_id"]))
        assert sale is not None
        return sale

    sale = await idempotency.once(
        session,
        scope=f"cardBuy:member:{member_id}",
        key=key,
        request={"product": product_id, "store": store_id},
        run=run,
        save=lambda s: {"sale_id": s.id},
        load=load,
    )
    prepay = None
    if sale.status is CardSaleStatus.PENDING and sale.provider_ref:
        prepay = provider.create_prepay(provider_ref=sale.provider_ref, amount=sale.amount, description="卡项")
    return Started(sale, prepay)


async def apply_notification(
    session: AsyncSession, provider: str, note: Notification, at: datetime | None = None
) -> CardSale:
    """Issue the card of a paid sale once; a repeat changes nothing; a wrong amount changes nothing."""
    row, newly = await paid_once(session, CardSale, CardSaleStatus.PAID, provider, note, at, "card")
    sale = cast(CardSale, row)
    if not newly:
        return sale
    product = await products.for_sale_paid(session, sale.product_id)
    card = await ledger.issue(
        session, product, member_id=sale.member_id, store_id=sale.store_id, ref_type="card_sale", ref_id=sale.id
    )
    sale.card_id = card.id
    await session.flush()
    return sale

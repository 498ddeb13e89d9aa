"""Card products (卡项): what HQ sells, and which of them a member or a store may buy or sell now."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import CardKind, CardProduct, Store, utcnow
from services.access.permissions import Perm
from services.access.scope import Viewer, require
from services.cards.ledger import MAX_DAYS
from services.platform.errors import DomainError, ErrorCode
from services.platform.validation import optional_text, text
from services.pricing.engine import valid_in

MAX_PRICE = 10_000_000  # 100,000 yuan


@dataclass(frozen=True)
class ProductSpec:
    name: str
    kind: CardKind
    price: int
    uses: int | None = None
    face_value: int | None = None
    per_day_limit: int | None = None
    sku_ids: list[int] | None = None
    validity_days: int | None = None
    valid_until: datetime | None = None
    store_ids: list[int] | None = None
    city: str | None = None
    stores_may_sell: bool = True
    earns_points_on_use: bool = False


def _check(spec: ProductSpec) -> None:
    def bad(message: str, field: str) -> DomainError:
        return DomainError(ErrorCode.INVALID_INPUT, message, field)

    if not 0 < spec.price <= MAX_PRICE:
        raise bad("The price is 1 fen to 100,000 yuan.", "price")
    if spec.kind is CardKind.COUNT and not (spec.uses and 0 < spec.uses <= 1000 and spec.sku_ids):
        raise bad("A count card has 1 to 1000 uses of the SKUs listed.", "uses")
    if spec.kind is CardKind.PERIOD and not (spec.per_day_limit and spec.sku_ids and spec.validity_days):
        raise bad("A period card has uses a day, the SKUs listed and a validity in days.", "perDayLimit")
    if spec.kind is CardKind.GIFT and not (spec.face_value and spec.price <= spec.face_value <= MAX_PRICE):
        raise bad("A gift card's face value is at least its price.", "faceValue")
    if spec.validity_days is None and spec.valid_until is None:
        raise bad("Give the validity: days from purchase or an end date.", "validityDays")
    if spec.validity_days is not None and not 0 < spec.validity_days <= MAX_DAYS:
        raise bad(f"Validity is 1 to {MAX_DAYS} days.", "validityDays")
    if spec.per_day_limit is not None and not 0 < spec.per_day_limit <= 100:
        raise bad("The per-day limit is 1 to 100.", "perDayLimit")


async def create(session: AsyncSession, viewer: Viewer, spec: ProductSpec) -> CardProduct:
    """HQ defines a card product."""
    require(viewer, Perm.CARD_MANAGE)
    spec = replace(spec, kind=CardKind(spec.kind))
    _check(spec)
    if spec.store_ids:
        found = set((await session.scalars(select(Store.id).where(Store.id.in_(spec.store_ids)))).all())
        if missing := [s for s in spec.store_ids if s not in found]:
            raise DomainError(ErrorCode.NOT_FOUND, f"No such store: {missing[0]}.", "storeIds")
    product = CardProduct(
        name=text(spec.name, "name", max_len=64),
        kind=spec.kind,
        price=spec.price,
        uses=spec.uses if spec.kind is CardKind.COUNT else None,
        face_value=spec.face_value if spec.kind is CardKind.GIFT else None,
        per_day_limit=spec.per_day_limit,
        sku_ids=sorted(set(spec.sku_ids)) if spec.sku_ids else None,
        validity_days=spec.validity_days,
        valid_until=spec.valid_until,
        store_ids=sorted(set(spec.store_ids)) if spec.store_ids else None,
        city=optional_text(spec.city, "city", max_len=64),
        stores_may_sell=spec.stores_may_sell,
        earns_points_on_use=spec.earns_points_on_use,
        active=True,
    )
    session.add(product)
    await session.flush()
    return product


async def listed(session: AsyncSession, viewer: Viewer) -> list[CardProduct]:
    """The card products on sale now (every one for those who manage them), cheapest first."""
    stmt = select(CardProduct).order_by(CardProduct.price, CardProduct.id)
    if not viewer.can(Perm.CARD_MANAGE):
        now = utcnow()
        stmt = stmt.where(
            CardProduct.active.is_(True), (CardProduct.valid_until.is_(None)) | (CardProduct.valid_until > now)
        )
    return list((await session.scalars(stmt)).all())


async def for_sale(session: AsyncSession, product_id: int, store: Store, *, at_counter: bool) -> CardProduct:
    """The product, if it can be bought in this store now (at the counter only if HQ lets stores sell it)."""
    product = await session.get(CardProduct, product_id)
    if product is None or not product.active:
        raise DomainError(ErrorCode.NOT_FOUND, "No such card product.", "productId")
    if at_counter and not product.stores_may_sell:
        raise DomainError(ErrorCode.NOT_ALLOWED_BY_POLICY, "Stores may not sell this card.", "productId")
    if not valid_in(product, store):
        raise DomainError(ErrorCode.CARD_NOT_USABLE, "This card is not valid in this store.", "storeId")
    return product


async def for_sale_paid(session: AsyncSession, product_id: int) -> CardProduct:
    """The product a paid sale bought: issued even if HQ stopped selling it since (the money was taken)."""
    product = await session.get(CardProduct, product_id)
    assert product is not None
    return product

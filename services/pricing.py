"""The price engine: the only place a price is computed. POS, mini-program and order placement all call `quote`.

Precedence, in this order (each rule sees the result of the ones before it, and every line says which applied):
1. The store's price for the SKU (its listing, inside HQ's band) is the list price.
2. A member level price for the SKU (会员价) replaces it when lower.
3. Otherwise the level's discount (e.g. 95%) applies, rounded down in the member's favour.
4. Order rules (the marketing issue adds full reduction, then one coupon) come after line rules.
5. A delivery order adds the delivery fee (waived over `free_delivery_over_fen` of goods); no discount touches it.
6. Points pay at most `max_points_share_pct` of the goods; stored value may pay the rest, fee included.
Nothing goes below zero.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    CatalogStatus,
    Fulfilment,
    LevelPrice,
    Member,
    MemberLevel,
    Product,
    Sku,
    StockLevel,
    StoreListing,
    utcnow,
)
from services.errors import DomainError, ErrorCode
from services.settings import ChainSettings, get_settings


@dataclass(frozen=True)
class CartLine:
    sku_id: int
    quantity: int


@dataclass(frozen=True)
class Adjustment:
    rule: str
    amount: int  # fen per unit; negative is a discount
    reason: str


@dataclass
class QuoteLine:
    sku_id: int
    quantity: int
    list_price: int
    unit_price: int
    available: bool
    adjustments: list[Adjustment] = field(default_factory=list)

    @property
    def line_total(self) -> int:
        return self.unit_price * self.quantity


@dataclass
class Quote:
    store_id: int
    member_id: int | None
    lines: list[QuoteLine]
    order_adjustments: list[Adjustment] = field(default_factory=list)
    delivery_fee: int = 0
    points_usable: int = 0
    points_value_usable: int = 0
    stored_value_usable: int = 0

    @property
    def subtotal(self) -> int:
        return sum(line.list_price * line.quantity for line in self.lines)

    @property
    def goods_total(self) -> int:
        """The goods after line and order rules."""
        return max(sum(line.line_total for line in self.lines) + sum(a.amount for a in self.order_adjustments), 0)

    @property
    def total(self) -> int:
        """What the order costs: goods plus any delivery fee, before points and stored value."""
        return self.goods_total + self.delivery_fee

    @property
    def discount_total(self) -> int:
        return self.subtotal - self.goods_total

    @property
    def unavailable(self) -> list[int]:
        return [line.sku_id for line in self.lines if not line.available]


@dataclass(frozen=True)
class PricingContext:
    store_id: int
    member: Member | None
    level: MemberLevel | None
    level_prices: dict[int, int]
    settings: ChainSettings
    at: datetime


LineRule = Callable[[PricingContext, QuoteLine], None]
OrderRule = Callable[[PricingContext, Quote], Awaitable[None]]


def level_price_rule(ctx: PricingContext, line: QuoteLine) -> None:
    price = ctx.level_prices.get(line.sku_id)
    if ctx.level is not None and price is not None and price < line.unit_price:
        line.adjustments.append(Adjustment("LEVEL_PRICE", price - line.unit_price, f"{ctx.level.name}会员价"))
        line.unit_price = price


def level_discount_rule(ctx: PricingContext, line: QuoteLine) -> None:
    if ctx.level is None or ctx.level.discount_percent >= 100 or any(a.rule == "LEVEL_PRICE" for a in line.adjustments):
        return
    discounted = line.unit_price * ctx.level.discount_percent // 100
    if discounted < line.unit_price:
        line.adjustments.append(
            Adjustment(
                "LEVEL_DISCOUNT", discounted - line.unit_price, f"{ctx.level.name} {ctx.level.discount_percent}%"
            )
        )
        line.unit_price = discounted


LINE_RULES: list[LineRule] = [level_price_rule, level_discount_rule]
ORDER_RULES: list[OrderRule] = []


def _merge(lines: Sequence[CartLine]) -> list[CartLine]:
    totals: dict[int, int] = {}
    for i, line in enumerate(lines):
        if not 0 < line.quantity <= 999:
            raise DomainError(ErrorCode.INVALID_INPUT, "Quantities are 1 to 999.", f"lines[{i}].quantity")
        totals[line.sku_id] = totals.get(line.sku_id, 0) + line.quantity
    if not totals or len(totals) > 100:
        raise DomainError(ErrorCode.INVALID_INPUT, "A cart has 1 to 100 SKUs.", "lines")
    return [CartLine(sku, qty) for sku, qty in totals.items()]


async def quote(
    session: AsyncSession,
    *,
    store_id: int,
    lines: Sequence[CartLine],
    member_id: int | None,
    at: datetime | None = None,
    fulfilment: Fulfilment = Fulfilment.PICKUP,
) -> Quote:
    """Price a cart in a store for a member (or a walk-in) at a moment, explaining every adjustment."""
    cart = _merge(lines)
    sku_ids = [line.sku_id for line in cart]
    rows = (
        await session.execute(
            select(StoreListing.sku_id, StoreListing.price, StockLevel.on_hand, StockLevel.reserved)
            .join(Sku, Sku.id == StoreListing.sku_id)
            .join(Product, Product.id == Sku.product_id)
            .outerjoin(
                StockLevel, (StockLevel.store_id == StoreListing.store_id) & (StockLevel.sku_id == StoreListing.sku_id)
            )
            .where(
                StoreListing.store_id == store_id, StoreListing.sku_id.in_(sku_ids), StoreListing.on_shelf.is_(True),
                Sku.status == CatalogStatus.ACTIVE, Product.status == CatalogStatus.ACTIVE,
            )
        )
    ).all()  # fmt: skip
    listed = {r.sku_id: r for r in rows}
    for i, line in enumerate(cart):
        if line.sku_id not in listed:
            raise DomainError(ErrorCode.NOT_FOUND, "This item is not on sale in this store.", f"lines[{i}].skuId")
    member = await session.get(Member, member_id) if member_id is not None else None
    if member_id is not None and (member is None or member.deleted_at is not None):
        raise DomainError(ErrorCode.NOT_FOUND, "No such member.", "memberId")
    level = await session.get(MemberLevel, member.level_id) if member and member.level_id else None
    level_prices = (
        dict((await session.execute(select(LevelPrice.sku_id, LevelPrice.price).where(
            LevelPrice.level_id == level.id, LevelPrice.sku_id.in_(sku_ids)))).all())
        if level else {}
    )  # fmt: skip
    settings = await get_settings(session)
    ctx = PricingContext(
        store_id, member, level, {int(k): int(v) for k, v in level_prices.items()}, settings, at or utcnow()
    )
    quote_lines = []
    for line in cart:
        row = listed[line.sku_id]
        available = (row.on_hand or 0) - (row.reserved or 0) >= line.quantity
        q = QuoteLine(line.sku_id, line.quantity, row.price, row.price, available)
        for rule in LINE_RULES:
            rule(ctx, q)
        quote_lines.append(q)
    result = Quote(store_id, member_id, quote_lines)
    for order_rule in ORDER_RULES:
        await order_rule(ctx, result)
    if fulfilment is Fulfilment.DELIVERY:
        waived = 0 < settings.free_delivery_over_fen <= result.goods_total
        result.delivery_fee = 0 if waived else settings.delivery_fee_fen
    if member is not None:
        share = result.goods_total * settings.max_points_share_pct // 100
        result.points_usable = min(member.points_balance, share // settings.point_value_fen)
        result.points_value_usable = result.points_usable * settings.point_value_fen
        result.stored_value_usable = min(member.balance_principal + member.balance_bonus, result.total)
    return result

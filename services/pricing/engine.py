"""The price engine: the only place a price is computed. POS, mini-program and order placement all call `quote`.

Precedence, in this order (each rule sees the result of the ones before it, and every line says which applied):

1. The store's price for the SKU (its listing, inside HQ's band) is the list price.
2. A group-buy price (拼团, when the order is part of a group) or a flash-sale price (秒杀, for a member, while
   the quota and the member's limit last) replaces it. Such a line is *locked*: no other discount touches it.
3. Otherwise the member's best one of: level price (会员价), level discount (e.g. 95%), limited-time discount
   (限时折扣, a price or a percentage). They do not stack; the lowest price wins.
4. Full reduction (满减): the best tier of the best campaign over its eligible, unlocked lines.
5. One coupon (优惠券), on its eligible, unlocked lines; a coupon that is not stackable skips lines a promotion
   (limited-time discount or full reduction) already discounted. Thresholds count what is left after 1-4.
6. Cards (卡项) the member hands over pay for eligible lines at what is left of them after 1-5: a count or period
   card one unit per use (within its uses left and its per-day limit), a gift card in fen. A card is a tender, not a
   discount: the lines keep their price, the quote says what each card covers (`card_uses`, `card_paid`).
7. A delivery order adds the delivery fee (waived over `free_delivery_over_fen` of goods); no discount touches it.
8. Points pay at most `max_points_share_pct` of the goods the cards left; stored value may pay the rest, fee included.

Points are earned on money and stored value paid, so a card's *use* earns none (its *sale* was the purchase),
unless HQ's card product says `earns_points_on_use`.

Order-level discounts (4, 5) are allocated to their lines in proportion to the lines' totals (largest remainder),
so every line carries its share: the sum of line discounts is the order's discount, and no line goes below zero.
Adjustment amounts are fen for the whole line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Campaign,
    CampaignBuyer,
    CampaignItem,
    CampaignKind,
    CampaignStatus,
    CardEntry,
    CardKind,
    CardMove,
    CardProduct,
    CardStatus,
    CatalogStatus,
    CouponKind,
    CouponTemplate,
    Fulfilment,
    LevelPrice,
    Member,
    MemberCard,
    MemberCoupon,
    MemberCouponStatus,
    MemberLevel,
    Product,
    Sku,
    StockLevel,
    Store,
    StoreListing,
    utcnow,
)
from services.org.settings import ChainSettings, get_settings
from services.platform.errors import DomainError, ErrorCode

PROMOTION_RULES = frozenset({"LIMITED_DISCOUNT", "FULL_REDUCTION"})
LOCKING_RULES = frozenset({"FLASH_SALE", "GROUP_BUY"})
CAMPAIGN_RULES = PROMOTION_RULES | LOCKING_RULES


@dataclass(frozen=True)
class CartLine:
    sku_id: int
    quantity: int


@dataclass(frozen=True)
class Adjustment:
    rule: str
    amount: int  # fen for the whole line; negative is a discount
    reason: str
    source_id: int | None = None  # the campaign or coupon template behind it


def stored(adjustments: list[Adjustment]) -> list[dict[str, object]]:
    """Adjustments as an order line keeps them."""
    return [{"rule": a.rule, "amount": a.amount, "reason": a.reason, "source_id": a.source_id} for a in adjustments]


@dataclass
class QuoteLine:
    sku_id: int
    quantity: int
    list_price: int
    unit_price: int  # after the line rules (1-3)
    available: bool
    category_id: int = 0
    adjustments: list[Adjustment] = field(default_factory=list)
    flash_item_id: int | None = None

    @property
    def line_total(self) -> int:
        return self.list_price * self.quantity + sum(a.amount for a in self.adjustments)

    @property
    def locked(self) -> bool:
        return any(a.rule in LOCKING_RULES for a in self.adjustments)

    @property
    def promoted(self) -> bool:
        return any(a.rule in PROMOTION_RULES for a in self.adjustments)


@dataclass(frozen=True)
class AppliedCoupon:
    member_coupon_id: int
    template_id: int
    name: str
    discount: int


@dataclass(frozen=True)
class CardUse:
    """What one card pays on one line: units (uses, or fen for a gift card) and the fen of goods covered."""

    card_id: int
    sku_id: int
    units: int
    amount: int


@dataclass
class CardHold:
    """A card handed over at the counter, as far as it can pay now."""

    card_id: int
    kind: CardKind
    sku_ids: list[int] | None
    units: int  # uses (or fen) it may pay today: left, within the per-day limit


@dataclass
class Quote:
    store_id: int
    member_id: int | None
    lines: list[QuoteLine]
    coupon: AppliedCoupon | None = None
    suggested_coupon: AppliedCoupon | None = None
    delivery_fee: int = 0
    points_usable: int = 0
    points_value_usable: int = 0
    stored_value_usable: int = 0
    card_uses: list[CardUse] = field(default_factory=list)

    @property
    def card_paid(self) -> int:
        """Fen of goods the cards pay."""
        return sum(u.amount for u in self.card_uses)

    @property
    def subtotal(self) -> int:
        return sum(line.list_price * line.quantity for line in self.lines)

    @property
    def goods_total(self) -> int:
        return sum(line.line_total for line in self.lines)

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

    def discounts_by_source(self) -> dict[tuple[str, int], int]:
        """Discount (positive fen) per (rule, campaign or template id), for campaign effect."""
        totals: dict[tuple[str, int], int] = {}
        for line in self.lines:
            for a in line.adjustments:
                if a.source_id is not None and a.rule in CAMPAIGN_RULES | {"COUPON"}:
                    key = (a.rule, a.source_id)
                    totals[key] = totals.get(key, 0) - a.amount
        return totals


@dataclass(frozen=True)
class PricingContext:
    store_id: int
    member: Member | None
    level: MemberLevel | None
    level_prices: dict[int, int]
    campaigns: list[Campaign]
    items: dict[tuple[int, int], CampaignItem]  # (campaign id, sku id) -> item
    bought: dict[int, int]  # flash item id -> units this member already took
    group_campaign_id: int | None
    at: datetime
    preferred_flash: int | None = None  # the flash sale whose page the member ordered from, tried first

    def of_kind(self, kind: CampaignKind) -> list[Campaign]:
        return [c for c in self.campaigns if c.kind is kind]


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` over `weights` in proportion, largest remainder first; no share exceeds its weight."""
    base = sum(weights)
    if total <= 0 or base <= 0:
        return [0] * len(weights)
    total = min(total, base)
    shares = [total * w // base for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % base), i))
    for i in order[: total - sum(shares)]:
        shares[i] += 1
    return shares


def _spread(lines: list[QuoteLine], discount: int, rule: str, reason: str, source_id: int) -> None:
    for line, share in zip(lines, allocate(discount, [x.line_total for x in lines]), strict=True):
        if share:
            line.adjustments.append(Adjustment(rule, -share, reason, source_id))


def _set_price(line: QuoteLine, price: int, rule: str, reason: str, source_id: int | None = None) -> None:
    line.adjustments.append(Adjustment(rule, (price - line.unit_price) * line.quantity, reason, source_id))
    line.unit_price = price


def _locking_rule(ctx: PricingContext, line: QuoteLine) -> bool:
    """Group-buy or flash-sale price: replaces every other price for the line."""
    if ctx.group_campaign_id is not None:
        item = ctx.items.get((ctx.group_campaign_id, line.sku_id))
        if item is not None and item.price is not None:
            _set_price(line, min(item.price, line.unit_price), "GROUP_BUY", "拼团价", ctx.group_campaign_id)
            return True
    if ctx.member is None:
        return False
    for campaign in sorted(ctx.of_kind(CampaignKind.FLASH_SALE), key=lambda c: (c.id != ctx.preferred_flash, c.id)):
        item = ctx.items.get((campaign.id, line.sku_id))
        if item is None or item.price is None or item.quota is None:
            continue
        mine_left = (item.per_member_limit or line.quantity) - ctx.bought.get(item.id, 0)
        if item.quota - item.sold >= line.quantity and mine_left >= line.quantity:
            _set_price(line, min(item.price, line.unit_price), "FLASH_SALE", f"秒杀 {campaign.name}", campaign.id)
            line.flash_item_id = item.id
            return True
    return False


def _member_price_rule(ctx: PricingContext, line: QuoteLine) -> None:
    """The lowest of level price, level discount and limited-time discount; they do not stack."""
    options: list[tuple[int, str, str, int | None]] = []
    if ctx.level is not None:
        price = ctx.level_prices.get(line.sku_id)
        if price is not None and price < line.unit_price:
            options.append((price, "LEVEL_PRICE", f"{ctx.level.name}会员价", None))
        elif ctx.level.discount_percent < 100:
            discounted = line.unit_price * ctx.level.discount_percent // 100
            options.append((discounted, "LEVEL_DISCOUNT", f"{ctx.level.name} {ctx.level.discount_percent}%", None))
    for campaign in ctx.of_kind(CampaignKind.LIMITED_DISCOUNT):
        item = ctx.items.get((campaign.id, line.sku_id))
        if item is None:
            continue
        price = item.price if item.price is not None else line.unit_price * (item.percent or 100) // 100
        options.append((price, "LIMITED_DISCOUNT", f"限时折扣 {campaign.name}", campaign.id))
    best = min(options, key=lambda o: o[0], default=None)
    if best is not None and best[0] < line.unit_price:
        _set_price(line, best[0], best[1], best[2], best[3])


def _in_scope(line: QuoteLine, sku_ids: list[int] | None, category_ids: list[int] | None) -> bool:
    return (not sku_ids or line.sku_id in sku_ids) and (not category_ids or line.category_id in category_ids)


def _full_reduction_rule(ctx: PricingContext, quote: Quote) -> None:
    best: tuple[int, Campaign, list[QuoteLine]] | None = None
    for campaign in ctx.of_kind(CampaignKind.FULL_REDUCTION):
        rules = campaign.rules
        eligible = [
            x for x in quote.lines if not x.locked and _in_scope(x, rules.get("sku_ids"), rules.get("category_ids"))
        ]
        base = sum(x.line_total for x in eligible)
        off = max((int(t["off"]) for t in rules.get("tiers", []) if base >= int(t["threshold"])), default=0)
        if off > 0 and (best is None or off > best[0]):
            best = (off, campaign, eligible)
    if best is not None:
        off, campaign, eligible = best
        _spread(eligible, off, "FULL_REDUCTION", f"满减 {campaign.name}", campaign.id)


def coupon_discount(template: CouponTemplate, lines: list[QuoteLine], store_id: int) -> tuple[int, list[QuoteLine]]:
    """What a coupon would take off these lines, and which lines carry it (0 when it does not apply)."""
    if template.store_ids and store_id not in template.store_ids:
        return 0, []
    eligible = [
        x
        for x in lines
        if not x.locked
        and _in_scope(x, template.sku_ids, template.category_ids)
        and (template.stackable or not x.promoted)
    ]
    base = sum(x.line_total for x in eligible)
    if base <= 0 or base < template.threshold:
        return 0, []
    match template.kind:
        case CouponKind.THRESHOLD_OFF | CouponKind.AMOUNT_OFF:
            return min(template.amount_off, base), eligible
        case CouponKind.PERCENT_OFF:
            off = base - base * template.percent // 100
            return (min(off, template.cap) if template.cap is not None else off), eligible
        case CouponKind.FREE_ITEM:
            free = [x for x in eligible if x.sku_id == template.free_sku_id]
            return (min(free[0].unit_price, free[0].line_total), free[:1]) if free else (0, [])
    return 0, []  # pragma: no cover


async def _member_coupons(
    session: AsyncSession, member_id: int, at: datetime, only: int | None
) -> list[tuple[MemberCoupon, CouponTemplate]]:
    stmt = (
        select(MemberCoupon, CouponTemplate)
        .join(CouponTemplate, CouponTemplate.id == MemberCoupon.template_id)
        .where(MemberCoupon.member_id == member_id)
    )
    if only is not None:
        stmt = stmt.where(MemberCoupon.id == only)
    else:
        stmt = stmt.where(
            MemberCoupon.status == MemberCouponStatus.AVAILABLE,
            MemberCoupon.valid_from <= at,
            MemberCoupon.valid_until > at,
            CouponTemplate.status == CampaignStatus.ACTIVE,
        )
    return [(row[0], row[1]) for row in (await session.execute(stmt)).all()]


def _check_usable(coupon: MemberCoupon, template: CouponTemplate, at: datetime) -> None:
    if coupon.status is MemberCouponStatus.USED:
        raise DomainError(ErrorCode.COUPON_USED, "This coupon has been used.", "couponId")
    if not coupon.valid_from <= at < coupon.valid_until or template.status is not CampaignStatus.ACTIVE:
        raise DomainError(ErrorCode.COUPON_EXPIRED, "This coupon is not valid now.", "couponId")


def apply_coupon(ctx: PricingContext, quote: Quote, coupon: MemberCoupon, template: CouponTemplate) -> None:
    """Use this coupon on the quote, or say with a code why it cannot be used."""
    _check_usable(coupon, template, ctx.at)
    off, lines = coupon_discount(template, quote.lines, ctx.store_id)
    if off <= 0:
        raise DomainError(ErrorCode.COUPON_NOT_APPLICABLE, "This coupon does not apply to this cart here.", "couponId")
    _spread(lines, off, "COUPON", template.name, template.id)
    quote.coupon = AppliedCoupon(coupon.id, template.id, template.name, off)


def best_coupon(
    ctx: PricingContext, quote: Quote, wallet: Sequence[tuple[MemberCoupon, CouponTemplate]]
) -> AppliedCoupon | None:
    """The coupon that takes most off this cart (the soonest to expire among equals), or None."""
    ranked = sorted(
        ((coupon_discount(t, quote.lines, ctx.store_id)[0], c, t) for c, t in wallet),
        key=lambda r: (-r[0], r[1].valid_until, r[1].id),
    )
    if not ranked or ranked[0][0] <= 0:
        return None
    off, coupon, template = ranked[0]
    return AppliedCoupon(coupon.id, template.id, template.name, off)


async def _coupon_rule(
    session: AsyncSession, ctx: PricingContext, quote: Quote, coupon_id: int | None, suggest: bool
) -> None:
    if ctx.member is None:
        if coupon_id is not None:
            raise DomainError(ErrorCode.COUPON_NOT_APPLICABLE, "Coupons need a member.", "couponId")
        return
    if coupon_id is None and not suggest:
        return
    wallet = await _member_coupons(session, ctx.member.id, ctx.at, coupon_id)
    if coupon_id is None:
        quote.suggested_coupon = best_coupon(ctx, quote, wallet)
    elif not wallet:
        raise DomainError(ErrorCode.NOT_FOUND, "No such coupon.", "couponId")
    else:
        apply_coupon(ctx, quote, *wallet[0])


def price_lines(ctx: PricingContext, lines: list[QuoteLine]) -> Quote:
    """Rules 2-4 on lines at their list prices: the part of the engine that needs no database."""
    for line in lines:
        if not _locking_rule(ctx, line):
            _member_price_rule(ctx, line)
    result = Quote(ctx.store_id, ctx.member.id if ctx.member else None, lines)
    _full_reduction_rule(ctx, result)
    return result


async def _level_prices(session: AsyncSession, level: MemberLevel, sku_ids: list[int]) -> dict[Any, Any]:
    """The member level's own prices for these SKUs."""
    return dict(
        (
            await session.execute(
                select(LevelPrice.sku_id, LevelPrice.price).where(
                    LevelPrice.level_id == level.id, LevelPrice.sku_id.in_(sku_ids)
                )
            )
        ).all()
    )


async def _running_campaigns(
    session: AsyncSession, store_id: int, at: datetime, group_campaign_id: int | None
) -> list[Campaign]:
    """Active price campaigns running at `at` in this store (plus the group-buy campaign asked for)."""
    running = (
        await session.scalars(
            select(Campaign).where(
                Campaign.status == CampaignStatus.ACTIVE,
                Campaign.starts_at <= at,
                Campaign.ends_at > at,
                Campaign.kind.in_([CampaignKind.LIMITED_DISCOUNT, CampaignKind.FULL_REDUCTION, CampaignKind.FLASH_SALE])
                | (Campaign.id == (group_campaign_id or 0)),
            )
        )
    ).all()
    return [c for c in running if c.store_ids is None or store_id in c.store_ids]


async def _campaign_items(session: AsyncSession, ids: list[int], sku_ids: list[int]) -> Sequence[CampaignItem]:
    """The campaigns' items for these SKUs."""
    return (
        await session.scalars(
            select(CampaignItem).where(CampaignItem.campaign_id.in_(ids), CampaignItem.sku_id.in_(sku_ids))
        )
    ).all()


async def _flash_bought(session: AsyncSession, flash: list[int], member: Member) -> dict[Any, Any]:
    """How much the member already bought of each quota (flash sale) item."""
    return dict(
        (
            await session.execute(
                select(CampaignBuyer.item_id, CampaignBuyer.bought).where(
                    CampaignBuyer.item_id.in_(flash), CampaignBuyer.member_id == member.id
                )
            )
        ).all()
    )


async def _context(
    session: AsyncSession,
    store_id: int,
    member: Member | None,
    sku_ids: list[int],
    at: datetime,
    group_campaign_id: int | None,
) -> PricingContext:
    level = await session.get(MemberLevel, member.level_id) if member and member.level_id else None
    level_prices = await _level_prices(session, level, sku_ids) if level else {}
    campaigns = await _running_campaigns(session, store_id, at, group_campaign_id)
    ids = [c.id for c in campaigns]
    items = await _campaign_items(session, ids, sku_ids) if ids else []
    flash = [i.id for i in items if i.quota is not None]
    bought = await _flash_bought(session, flash, member) if member and flash else {}
    return PricingContext(
        store_id=store_id,
        member=member,
        level=level,
        level_prices={int(k): int(v) for k, v in level_prices.items()},
        campaigns=[c for c in campaigns if c.kind is not CampaignKind.GROUP_BUY],
        items={(i.campaign_id, i.sku_id): i for i in items},
        bought={int(k): int(v) for k, v in bought.items()},
        group_campaign_id=group_campaign_id if group_campaign_id in ids else None,
        at=at,
    )


@dataclass(frozen=True)
class ShelfPrice:
    """What one unit costs this member (or a visitor) now, before cart-level rules, and the rule that set it."""

    price: int
    rule: str | None
    reason: str | None


async def shelf_prices(
    session: AsyncSession,
    *,
    store_id: int,
    member_id: int | None,
    listed: dict[int, tuple[int, int]],
    at: datetime | None = None,
) -> dict[int, ShelfPrice]:
    """One unit of each listed SKU (sku id -> (store price, category id)) priced by the line rules a quote runs
    (2 and 3: flash sale, level price or discount, limited-time discount), for a page that shows the member's price.
    Cart-level rules (full reduction, coupons) need a cart and are left to `quote`. A fixed number of statements
    whatever the number of SKUs."""
    if not listed:
        return {}
    member = await session.get(Member, member_id) if member_id is not None else None
    if member is not None and member.deleted_at is not None:
        member = None
    ctx = await _context(session, store_id, member, list(listed), at or utcnow(), None)
    prices = {}
    for sku_id, (price, category_id) in listed.items():
        line = QuoteLine(sku_id, 1, price, price, True, category_id=category_id)
        if not _locking_rule(ctx, line):
            _member_price_rule(ctx, line)
        last = line.adjustments[-1] if line.adjustments else None
        prices[sku_id] = ShelfPrice(line.unit_price, last.rule if last else None, last.reason if last else None)
    return prices


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
    coupon_id: int | None = None,
    suggest_coupon: bool = True,
    group_campaign_id: int | None = None,
    flash_campaign_id: int | None = None,
    card_ids: Sequence[int] = (),
) -> Quote:
    """Price a cart in a store for a member (or a walk-in) at a moment, explaining every adjustment."""
    at = at or utcnow()
    cart = _merge(lines)
    sku_ids = [line.sku_id for line in cart]
    listed = await _listed(session, store_id, cart)
    member = await session.get(Member, member_id) if member_id is not None else None
    if member_id is not None and (member is None or member.deleted_at is not None):
        raise DomainError(ErrorCode.NOT_FOUND, "No such member.", "memberId")
    ctx = await _context(session, store_id, member, sku_ids, at, group_campaign_id)
    if flash_campaign_id is not None:
        ctx = replace(ctx, preferred_flash=flash_campaign_id)
    if group_campaign_id is not None and ctx.group_campaign_id is None:
        raise DomainError(ErrorCode.CAMPAIGN_NOT_ACTIVE, "This group buy is not running here now.", "campaignId")
    quote_lines = []
    for line in cart:
        row = listed[line.sku_id]
        available = (row.on_hand or 0) - (row.reserved or 0) >= line.quantity
        quote_lines.append(
            QuoteLine(line.sku_id, line.quantity, row.price, row.price, available, category_id=row.category_id)
        )
    result = price_lines(ctx, quote_lines)
    await _coupon_rule(session, ctx, result, coupon_id, suggest_coupon)
    if card_ids:
        if member is None:
            raise DomainError(ErrorCode.CARD_NOT_USABLE, "Cards need a member.", "cardIds")
        result.card_uses = cover_with_cards(result.lines, await card_holds(session, store_id, member.id, card_ids, at))
    _delivery_and_balances(result, await get_settings(session), fulfilment, member)
    return result


async def _listed(
    session: AsyncSession, store_id: int, cart: Sequence[CartLine]
) -> dict[int, Row[int, int, int, int, int]]:
    """The cart's SKUs as this store lists them (price, category, stock); every one must be on sale here."""
    sku_ids = [line.sku_id for line in cart]
    rows = (
        await session.execute(
            select(
                StoreListing.sku_id, StoreListing.price, Product.category_id, StockLevel.on_hand, StockLevel.reserved
            )
            .join(Sku, Sku.id == StoreListing.sku_id)
            .join(Product, Product.id == Sku.product_id)
            .outerjoin(
                StockLevel, (StockLevel.store_id == StoreListing.store_id) & (StockLevel.sku_id == StoreListing.sku_id)
            )
            .where(
                StoreListing.store_id == store_id,
                StoreListing.sku_id.in_(sku_ids),
                StoreListing.on_shelf.is_(True),
                Sku.status == CatalogStatus.ACTIVE,
                Product.status == CatalogStatus.ACTIVE,
            )
        )
    ).all()
    listed = {r.sku_id: r for r in rows}
    for i, line in enumerate(cart):
        if line.sku_id not in listed:
            raise DomainError(ErrorCode.NOT_FOUND, "This item is not on sale in this store.", f"lines[{i}].skuId")
    return listed


def _delivery_and_balances(
    result: Quote, settings: ChainSettings, fulfilment: Fulfilment, member: Member | None
) -> None:
    """The delivery fee (waived over the threshold), and how much of the member's points and stored value may pay."""
    if fulfilment is Fulfilment.DELIVERY:
        waived = 0 < settings.free_delivery_over_fen <= result.goods_total
        result.delivery_fee = 0 if waived else settings.delivery_fee_fen
    if member is not None:
        share = (result.goods_total - result.card_paid) * settings.max_points_share_pct // 100
        result.points_usable = min(member.points_balance, share // settings.point_value_fen)
        result.points_value_usable = result.points_usable * settings.point_value_fen
        due = result.total - result.card_paid
        result.stored_value_usable = min(member.balance_principal + member.balance_bonus, due)


def cover_with_cards(lines: list[QuoteLine], holds: list[CardHold]) -> list[CardUse]:
    """Rule 6: each card, in the order handed over, pays what it can of the eligible lines' remaining value."""
    left = {line.sku_id: [line.quantity, line.line_total] for line in lines}  # units and fen not yet covered
    uses: list[CardUse] = []
    for hold in holds:
        budget = hold.units
        for line in lines:
            if budget <= 0:
                break
            units_open, fen_open = left[line.sku_id]
            if fen_open <= 0 or (hold.sku_ids and line.sku_id not in hold.sku_ids):
                continue
            if hold.kind is CardKind.GIFT:
                units = amount = min(budget, fen_open)
            else:
                units = min(budget, units_open)
                amount = fen_open if units == units_open else fen_open * units // units_open
            left[line.sku_id] = [units_open - (0 if hold.kind is CardKind.GIFT else units), fen_open - amount]
            budget -= units
            uses.append(CardUse(hold.card_id, line.sku_id, units, amount))
    return uses


async def card_holds(
    session: AsyncSession, store_id: int, member_id: int, card_ids: Sequence[int], at: datetime
) -> list[CardHold]:
    """The member's cards named, each checked usable here and now, with what it may still pay today."""
    rows = {
        card.id: (card, product)
        for card, product in (
            await session.execute(
                select(MemberCard, CardProduct)
                .join(CardProduct, CardProduct.id == MemberCard.product_id)
                .where(MemberCard.id.in_(list(card_ids)), MemberCard.member_id == member_id)
            )
        ).all()
    }
    store = await session.get(Store, store_id)
    used = await used_today(session, list(rows), store.timezone if store else "Asia/Shanghai", at)
    holds = []
    for i, card_id in enumerate(dict.fromkeys(card_ids)):
        if card_id not in rows:
            raise DomainError(ErrorCode.NOT_FOUND, "No such card.", f"cardIds[{i}]")
        card, product = rows[card_id]
        if card.status is not CardStatus.ACTIVE or card.expires_at <= at or card.units_left <= 0:
            raise DomainError(ErrorCode.CARD_NOT_USABLE, "This card cannot be used now.", f"cardIds[{i}]")
        if not valid_in(product, store):
            raise DomainError(ErrorCode.CARD_NOT_USABLE, "This card is not valid in this store.", f"cardIds[{i}]")
        units = card.units_left
        if card.per_day_limit is not None and card.kind is not CardKind.GIFT:
            units = min(units, card.per_day_limit - used.get(card_id, 0))
        if units <= 0:
            raise DomainError(ErrorCode.CARD_LIMIT_REACHED, "This card's uses for today are spent.", f"cardIds[{i}]")
        holds.append(CardHold(card_id, card.kind, product.sku_ids, units))
    return holds


def valid_in(product: CardProduct, store: Store | None) -> bool:
    """Whether a card product is valid in a store: every store, the stores listed, or the stores of a city."""
    if store is None:
        return False
    if product.store_ids is not None and store.id not in product.store_ids:
        return False
    return product.city is None or product.city == store.city


async def used_today(session: AsyncSession, card_ids: list[int], timezone: str, at: datetime) -> dict[int, int]:
    """Uses each card made today (the store's day), net of uses given back."""
    if not card_ids:
        return {}
    tz = ZoneInfo(timezone)
    start = datetime.combine(at.astimezone(tz).date(), time.min, tzinfo=tz)
    rows = await session.execute(
        select(CardEntry.card_id, func.sum(CardEntry.units))
        .where(CardEntry.card_id.in_(card_ids), CardEntry.kind == CardMove.USE, CardEntry.created_at >= start)
        .group_by(CardEntry.card_id)
    )
    return {int(card_id): -int(units) for card_id, units in rows.all()}

"""Order types: quotes, orders and their lines, payments, refunds, top-ups, settlements."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Self

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from models import Channel, Fulfilment, OrderStatus, PaymentMethod, PaymentStatus, TopUpStatus
from models import OnlineTopUp as OnlineTopUpModel
from models import Order as OrderModel
from models import OrderLine as OrderLineModel
from models import Payment as PaymentModel
from models import Refund as RefundModel
from resolvers import Perm
from resolvers import orders as order_resolvers
from resolvers.context import Context
from resolvers.orders import (
    TENDERS,
    AppliedCoupon,
    Quote,
    QuoteLine,
    RefundPlan,
    TimelineEntry,
)
from schema.catalog.types import Sku
from schema.core.common import UserError, global_id
from schema.core.node import Loaded
from schema.core.permissions import requires
from schema.core.personal import Sensitivity, not_personal, personal
from schema.members.types import Member, StoredValue
from schema.org.types import Staff, Store

if TYPE_CHECKING:
    pass


# The Python enums as GraphQL enums (registered once, here); annotations name the Python enums themselves.
strawberry.enum(OrderStatus, name="OrderStatus")


strawberry.enum(Channel, name="Channel")


strawberry.enum(Fulfilment, name="Fulfilment")


strawberry.enum(PaymentMethod, name="PaymentMethod")


@strawberry.enum(name="PaymentState", description="Where a payment's money is.")
class PaymentState(enum.Enum):
    PENDING = strawberry.enum_value("PENDING", description="Waiting for the payer")
    PAID = strawberry.enum_value("PAID", description="Taken; it paid the order")
    CANCELLED = strawberry.enum_value("CANCELLED", description="The order ended unpaid; nothing was taken")
    LATE = strawberry.enum_value(
        "LATE", description="Taken after the order could no longer be paid (or twice): being given back"
    )
    REFUNDED_LATE = strawberry.enum_value("REFUNDED_LATE", description="A late or duplicate payment, given back")

    @classmethod
    def of(cls, status: PaymentStatus) -> PaymentState:
        return cls.PAID if status is PaymentStatus.SUCCEEDED else cls[status.value]


@strawberry.type(description="One rule that changed a price, and why.")
class PriceAdjustment:
    rule: str
    amount: int = strawberry.field(description="fen for the whole line; negative is a discount")
    reason: str

    @classmethod
    def of(cls, stored: dict[str, Any]) -> Self:
        return cls(rule=str(stored["rule"]), amount=int(stored["amount"]), reason=str(stored["reason"]))


@strawberry.type
class QuoteLineType:
    quantity: int
    list_price: int
    unit_price: int
    line_total: int
    available: bool
    adjustments: list[PriceAdjustment]
    sku_id: strawberry.Private[int]

    @classmethod
    def of(cls, q: QuoteLine) -> Self:
        return cls(
            quantity=q.quantity,
            list_price=q.list_price,
            unit_price=q.unit_price,
            line_total=q.line_total,
            available=q.available,
            adjustments=[PriceAdjustment(rule=a.rule, amount=a.amount, reason=a.reason) for a in q.adjustments],
            sku_id=q.sku_id,
        )

    @strawberry.field
    async def sku(self, info: strawberry.Info[Context, None]) -> Sku | None:
        return await Sku.load(info.context, self.sku_id)


@strawberry.type(description="A coupon from the member's wallet and what it takes off this cart.")
class QuoteCoupon:
    member_coupon_id: strawberry.ID
    name: str
    discount: int

    @classmethod
    def of(cls, c: AppliedCoupon | None) -> Self | None:
        if c is None:
            return None
        return cls(
            member_coupon_id=strawberry.ID(str(global_id("MemberCoupon", c.member_coupon_id))),
            name=c.name,
            discount=c.discount,
        )


@strawberry.type(description="What one of the member's cards pays on one line (cardIds)")
class QuoteCardUse:
    card_id: strawberry.ID = strawberry.field(description="The MemberCard")
    sku_id: strawberry.ID
    units: int = strawberry.field(description="Uses taken (a gift card: fen)")
    amount: int = strawberry.field(description="Fen of the line the card pays")


@strawberry.type(name="Quote")
class QuoteType:
    lines: list[QuoteLineType]
    subtotal: int
    discount_total: int
    delivery_fee: int = strawberry.field(description="For delivery: the fee (waived over the chain's threshold), fen")
    total: int = strawberry.field(description="After discounts, with any delivery fee, before points and stored value")
    points_usable: int
    points_value_usable: int
    stored_value_usable: int
    coupon: QuoteCoupon | None = strawberry.field(description="The coupon applied (couponId)")
    suggested_coupon: QuoteCoupon | None = strawberry.field(description="The best coupon in the wallet for this cart")
    card_uses: list[QuoteCardUse] = strawberry.field(
        default_factory=list, description="What the cards handed over pay, line by line (after promotions and coupons)"
    )
    card_paid: int = strawberry.field(default=0, description="Fen the cards pay; the tenders pay total - cardPaid")
    alternative_stores: list[Store] = strawberry.field(
        default_factory=list, description="When lines are short here: stores that have them all, nearest first"
    )
    open_now: bool = strawberry.field(default=False, description="Whether the store takes orders for now")
    next_opening: datetime | None = strawberry.field(
        default=None,
        description="When the store next opens (now while it is open), in UTC: a closed store's order names a "
        "pickupAt from then on. Null when it has no opening hours ahead",
    )

    @classmethod
    def of(cls, q: Quote) -> Self:
        return cls(
            lines=[QuoteLineType.of(x) for x in q.lines],
            subtotal=q.subtotal,
            discount_total=q.discount_total,
            delivery_fee=q.delivery_fee,
            total=q.total,
            points_usable=q.points_usable,
            points_value_usable=q.points_value_usable,
            stored_value_usable=q.stored_value_usable,
            coupon=QuoteCoupon.of(q.coupon),
            suggested_coupon=QuoteCoupon.of(q.suggested_coupon),
            card_uses=[
                QuoteCardUse(
                    card_id=strawberry.ID(str(global_id("MemberCard", u.card_id))),
                    sku_id=strawberry.ID(str(global_id("Sku", u.sku_id))),
                    units=u.units,
                    amount=u.amount,
                )
                for u in q.card_uses
            ],
            card_paid=q.card_paid,
        )


@strawberry.type
class OrderLine:
    line_id: int = strawberry.field(description="The line's number in its order (what an exchange names)")
    quantity: int
    list_price: int
    unit_price: int
    line_total: int
    picked_up: int
    adjustments: list[PriceAdjustment]
    refunded_quantity: int = strawberry.field(description="Units refunded so far")
    refundable_quantity: int = strawberry.field(description="Units that can still be refunded (0 unless paid)")
    sku_id: strawberry.Private[int]
    cost: strawberry.Private[int] = 0

    @strawberry.field(
        extensions=requires(Perm.CATALOG_VIEW_COST),
        description="The SKU's cost price per unit when this line was sold, fen (catalog.view_cost).",
    )
    def unit_cost(self) -> int | None:
        return self.cost

    @classmethod
    def from_model(cls, m: OrderLineModel, order_status: OrderStatus) -> Self:
        return cls(
            line_id=m.id,
            quantity=m.quantity,
            list_price=m.list_price,
            unit_price=m.unit_price,
            line_total=m.line_total,
            picked_up=m.picked_up,
            sku_id=m.sku_id,
            refunded_quantity=m.refunded,
            refundable_quantity=order_resolvers.refundable_quantity(m, order_status),
            adjustments=[PriceAdjustment.of(a) for a in m.adjustments],
            cost=m.unit_cost,
        )

    @strawberry.field
    async def sku(self, info: strawberry.Info[Context, None]) -> Sku | None:
        return await Sku.load(info.context, self.sku_id)


@strawberry.type(description="Where a delivery goes. The phone is in full only for the member and the store's staff.")
class DeliveryInfo:
    contact_name: str
    phone: str
    address: str
    lat: float
    lng: float


@strawberry.type(description="Money taken (or asked for) for an order, by one method.")
class Payment(Loaded, relay.Node):
    id: relay.NodeID[int]
    method: PaymentMethod
    amount: int = strawberry.field(description="fen")
    state: PaymentState
    provider: str | None = strawberry.field(description="The payment provider, for provider payments")
    provider_reference: str | None = strawberry.field(description="Our out-trade-no at the provider")
    provider_transaction_id: str | None = strawberry.field(description="The provider's transaction id, once paid")
    paid_at: datetime | None
    refunded_at: datetime | None = strawberry.field(description="When a late payment was given back")
    created_at: datetime
    order_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, m: PaymentModel) -> Self:
        return cls(
            id=m.id,
            method=m.method,
            amount=m.amount,
            state=PaymentState.of(m.status),
            provider=m.provider,
            provider_reference=m.provider_ref,
            provider_transaction_id=m.provider_txn,
            paid_at=m.paid_at,
            refunded_at=m.refunded_at,
            created_at=m.created_at,
            order_id=m.order_id,
        )

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        m = await ctx.loaders.payment_by_id.load(pk)
        return cls.from_model(m) if m else None

    @strawberry.field
    async def order(self, info: strawberry.Info[Context, None]) -> Order | None:
        return await Order.load(info.context, self.order_id)


@strawberry.type
class Order(Loaded, relay.Node):
    id: relay.NodeID[int]
    status: OrderStatus
    channel: Channel
    fulfilment: Fulfilment
    subtotal: int
    discount_total: int
    points_used: int
    points_value: int
    stored_value_used: int
    payable: int = strawberry.field(description="What the provider (or the counter) takes, fen")
    delivery_fee: int = strawberry.field(description="In payable, fen")
    total: int = strawberry.field(
        description="fen: goods and delivery after discounts, however paid (points, stored value, money)"
    )
    pickup_code: str | None = strawberry.field(description="Shown to the member; the store verifies it")
    pickup_at: datetime | None
    expires_at: datetime | None
    paid_at: datetime | None
    dispatched_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    store_id: strawberry.Private[int]
    member_id: strawberry.Private[int | None]
    delivery_enc: strawberry.Private[bytes | None]

    @classmethod
    def from_model(cls, m: OrderModel) -> Self:
        return cls(
            id=m.id,
            status=m.status,
            channel=m.channel,
            fulfilment=m.fulfilment,
            subtotal=m.subtotal,
            discount_total=m.discount_total,
            points_used=m.points_used,
            points_value=m.points_value,
            stored_value_used=m.stored_value_used,
            payable=m.payable,
            delivery_fee=m.delivery_fee,
            total=order_resolvers.total_of(m),
            pickup_code=m.pickup_code,
            pickup_at=m.pickup_at,
            expires_at=m.expires_at,
            paid_at=m.paid_at,
            dispatched_at=m.dispatched_at,
            completed_at=m.completed_at,
            created_at=m.created_at,
            store_id=m.store_id,
            member_id=m.member_id,
            delivery_enc=m.delivery_enc,
        )

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        m = await ctx.loaders.order_by_id.load(pk)
        return cls.from_model(m) if m else None

    @strawberry.field(description="The order number on receipts and in the provider's records")
    def number(self) -> str:
        return order_resolvers.order_no(self.id)

    @strawberry.field(description="QR payload for the pickup code")
    def pickup_qr(self) -> str | None:
        return f"chain://pickup/{self.pickup_code}" if self.pickup_code else None

    @strawberry.field
    def delivery(self, info: strawberry.Info[Context, None]) -> DeliveryInfo | None:
        if self.delivery_enc is None:
            return None
        where = order_resolvers.delivery_address(info.context, self.delivery_enc, self.store_id, self.member_id)
        return DeliveryInfo(
            contact_name=where.contact_name, phone=where.phone, address=where.address, lat=where.lat, lng=where.lng
        )

    @strawberry.field
    async def lines(self, info: strawberry.Info[Context, None]) -> list[OrderLine]:
        lines = await info.context.loaders.order_lines_by_order.load(self.id)
        return [OrderLine.from_model(x, self.status) for x in lines]

    @strawberry.field(description="Refunds made on this order, oldest first")
    async def refunds(self, info: strawberry.Info[Context, None]) -> list[Refund]:
        return [Refund.from_model(r) for r in await info.context.loaders.refunds_by_order.load(self.id)]

    @strawberry.field
    async def store(self, info: strawberry.Info[Context, None]) -> Store | None:
        return await Store.load(info.context, self.store_id)

    @strawberry.field
    async def member(self, info: strawberry.Info[Context, None]) -> Member | None:
        return await Member.load(info.context, self.member_id) if self.member_id is not None else None

    @strawberry.field(
        description="What was paid with what (points, stored value, the provider), oldest first; a late or "
        "duplicate provider payment shows as LATE until it is given back (REFUNDED_LATE)."
    )
    async def payments(self, info: strawberry.Info[Context, None]) -> list[Payment]:
        return [Payment.from_model(p) for p in await info.context.loaders.payments_by_order.load(self.id)]

    @strawberry.field(
        description="Every step, oldest first: placed, each payment, each status change, each hand-over at the "
        "counter, each refund, each exchange; with who (staff, the member, or the chain itself) and when."
    )
    async def timeline(self, info: strawberry.Info[Context, None]) -> list[OrderTimelineEvent]:
        entries = await info.context.loaders.timeline_by_order.load(self.id)
        return [OrderTimelineEvent.of(e) for e in entries]


@strawberry.enum(name="OrderTimelineKind", description="What happened to an order.")
class OrderTimelineKind(enum.Enum):
    PLACED = strawberry.enum_value("PLACED", description="The order was made (online or at the counter)")
    PAYMENT = strawberry.enum_value("PAYMENT", description="Money (or points, stored value) was taken")
    STATUS = strawberry.enum_value("STATUS", description="The order moved to another status")
    PICKUP = strawberry.enum_value("PICKUP", description="Goods were handed over at the counter (核销)")
    REFUND = strawberry.enum_value("REFUND", description="Money was given back")
    EXCHANGE = strawberry.enum_value(
        "EXCHANGE", description="Lines were exchanged at the counter (amount: the difference, negative when given back)"
    )


@strawberry.enum(name="OrderActor", description="Who made a step of an order's timeline.")
class OrderActor(enum.Enum):
    STAFF = "STAFF"
    MEMBER = "MEMBER"
    SYSTEM = strawberry.enum_value("SYSTEM", description="The chain itself: a job, or the payment provider's word")


@strawberry.type(description="One step of an order's life.")
class OrderTimelineEvent:
    kind: OrderTimelineKind
    at: datetime
    actor: OrderActor
    status: OrderStatus | None = strawberry.field(description="The status after a PLACED, STATUS or PICKUP step")
    from_status: OrderStatus | None = strawberry.field(description="The status before a STATUS step")
    amount: int | None = strawberry.field(description="fen, of a PAYMENT or REFUND")
    method: PaymentMethod | None = strawberry.field(description="Of a PAYMENT")
    staff_id: strawberry.Private[int | None]

    @classmethod
    def of(cls, e: TimelineEntry) -> Self:
        if e.staff_id is not None:
            actor = OrderActor.STAFF
        elif e.member_id is not None:
            actor = OrderActor.MEMBER
        else:
            actor = OrderActor.SYSTEM
        return cls(
            kind=OrderTimelineKind(e.kind),
            at=e.at,
            actor=actor,
            status=e.status,
            from_status=e.from_status,
            amount=e.amount,
            method=PaymentMethod(e.method) if e.method else None,
            staff_id=e.staff_id,
        )

    @strawberry.field(description="The staff account that made it (null for the member or the chain, or out of scope)")
    async def staff(self, info: strawberry.Info[Context, None]) -> Staff | None:
        if self.staff_id is None or not info.context.viewer.is_staff:
            return None
        return await Staff.load(info.context, self.staff_id)


@strawberry.input(description="Narrow the order list; every part is optional and all apply together.")
class OrderFilterInput:
    store_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Any of these stores (another store's id, for a store's staff, matches nothing)"
    )
    city: str | None = not_personal(default=None, description="Stores in this city")
    from_: date | None = strawberry.field(
        default=None, name="from", description="First day, in the chain's time zone (created)"
    )
    to: date | None = strawberry.field(default=None, description="Last day, included, in the chain's time zone")
    statuses: list[OrderStatus] | None = None
    channel: Channel | None = None
    fulfilment: Fulfilment | None = None
    member_id: strawberry.ID | None = None
    min_total: int | None = strawberry.field(default=None, description="fen, included")
    max_total: int | None = strawberry.field(default=None, description="fen, included")
    has_refund: bool | None = strawberry.field(default=None, description="Only orders with (or without) a refund")


@strawberry.input
class CartLineInput:
    sku_id: strawberry.ID
    quantity: int


@strawberry.input
class QuoteInput:
    store_id: strawberry.ID
    lines: list[CartLineInput]
    member_id: strawberry.ID | None = strawberry.field(default=None, description="POS: a member the store knows")
    fulfilment: Fulfilment = Fulfilment.PICKUP
    coupon_id: strawberry.ID | None = strawberry.field(default=None, description="A MemberCoupon to apply")
    card_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="POS: the member's cards (MemberCard) to pay eligible lines, in this order"
    )


@strawberry.input
class DeliveryAddressInput:
    contact_name: str = personal()
    phone: str = personal(Sensitivity.PHONE)
    address: str = personal()
    lat: float = personal()
    lng: float = personal()


@strawberry.input
class PlaceOrderInput:
    store_id: strawberry.ID
    lines: list[CartLineInput]
    idempotency_key: str = strawberry.field(description="The same key again returns the first order")
    fulfilment: Fulfilment = strawberry.field(
        default=Fulfilment.PICKUP, description="PICKUP in the store, or DELIVERY to `delivery`"
    )
    pickup_at: datetime | None = None
    delivery: DeliveryAddressInput | None = strawberry.field(default=None, description="Where to, for DELIVERY")
    use_points: int = 0
    use_stored_value: int = 0
    coupon_id: strawberry.ID | None = strawberry.field(default=None, description="A MemberCoupon to apply")
    flash_sale_id: strawberry.ID | None = strawberry.field(
        default=None, description="Ordering from a flash-sale page: the flash price, or FLASH_SALE_SOLD_OUT"
    )


@strawberry.input
class OrderIdInput:
    id: strawberry.ID


@strawberry.input
class VerifyPickupInput:
    code: str = personal(Sensitivity.SECRET)
    idempotency_key: str = strawberry.field(
        description="The same key again returns the first answer; a retried partial hand-over hands over nothing more"
    )
    store_id: strawberry.ID | None = None
    lines: list[CartLineInput] | None = strawberry.field(default=None, description="Only these quantities now")


@strawberry.input
class TenderInput:
    method: PaymentMethod
    amount: int = strawberry.field(description="fen")
    reference: str | None = strawberry.field(default=None, description="Card slip or scanned-code transaction id")


@strawberry.input
class PosCheckoutInput:
    client_order_id: str = strawberry.field(
        description="The tablet's own id for this sale; a retry creates nothing twice"
    )
    lines: list[CartLineInput]
    tenders: list[TenderInput]
    store_id: strawberry.ID | None = None
    member_id: strawberry.ID | None = strawberry.field(default=None, description="From identifyMember")
    use_points: int = 0
    coupon_id: strawberry.ID | None = strawberry.field(default=None, description="The member's coupon to apply")
    card_ids: list[strawberry.ID] | None = strawberry.field(
        default=None,
        description="The member's cards (MemberCard) to pay eligible lines, in this order; the tenders pay the rest",
    )


@strawberry.input(description="A tender the cashier chose to give the refund back to, and how much.")
class RefundTenderInput:
    method: PaymentMethod
    amount: int = strawberry.field(description="fen")


@strawberry.input(description="What to refund; refundPreview takes the same as refundOrder, without the key.")
class RefundPreviewInput:
    id: strawberry.ID
    lines: list[CartLineInput] | None = strawberry.field(
        default=None, description="Leave out to refund everything left"
    )
    restock: bool = strawberry.field(default=True, description="The goods came back to the shelf")
    reason: str | None = not_personal(default=None)
    tenders: list[RefundTenderInput] | None = strawberry.field(
        default=None,
        description="Leave out for the rule: each tender gets back its share in proportion to what it paid",
    )


@strawberry.input
class RefundOrderInput(RefundPreviewInput):
    idempotency_key: str = strawberry.field(
        description="The same key again returns the first refund and gives nothing back twice"
    )


@strawberry.type(description="Money given back to one tender.")
class RefundTender:
    method: PaymentMethod
    amount: int = strawberry.field(description="fen")


def tenders_of(by_method: dict[str, int]) -> list[RefundTender]:
    order = [m.value for m in TENDERS]
    return [
        RefundTender(method=PaymentMethod(m), amount=a)
        for m, a in sorted(by_method.items(), key=lambda x: order.index(x[0]))
        if a
    ]


@strawberry.type(description="Units of one line given back, and what they cost the member.")
class RefundLine:
    quantity: int
    amount: int = strawberry.field(description="fen")
    sku_id: strawberry.Private[int]

    @strawberry.field
    async def sku(self, info: strawberry.Info[Context, None]) -> Sku | None:
        return await Sku.load(info.context, self.sku_id)


def _refund_lines(stored: list[dict[str, int]]) -> list[RefundLine]:
    return [RefundLine(quantity=x["quantity"], amount=x["amount"], sku_id=x["skuId"]) for x in stored]


@strawberry.type(description="A refund made on an order: what came back, to which tender, by whom, when and why.")
class Refund(Loaded, relay.Node):
    id: relay.NodeID[int]
    amount: int = strawberry.field(description="fen, all tenders")
    tenders: list[RefundTender] = strawberry.field(description="What went back to each tender")
    by_method: JSON = strawberry.field(deprecation_reason="Use tenders")
    lines: list[RefundLine]
    stored_value: int = strawberry.field(description="fen back to the member's stored value (in tenders too)")
    points_given_back: int = strawberry.field(description="Redeemed points returned to the member")
    points_taken_back: int = strawberry.field(description="Points the sale earned, taken back")
    coupon_returned: bool = strawberry.field(description="The order's coupon went back to the wallet")
    restocked: bool
    reason: str | None
    created_at: datetime
    order_id: strawberry.Private[int]
    staff_id: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, m: RefundModel) -> Self:
        return cls(
            id=m.id,
            amount=m.amount,
            tenders=tenders_of(m.by_method),
            by_method=m.by_method,  # type: ignore[arg-type]
            lines=_refund_lines(m.lines),
            stored_value=m.by_method.get(PaymentMethod.STORED_VALUE.value, 0),
            points_given_back=m.points_given_back,
            points_taken_back=m.points_taken_back,
            coupon_returned=m.coupon_returned,
            restocked=m.restocked,
            reason=m.reason,
            created_at=m.created_at,
            order_id=m.order_id,
            staff_id=m.staff_id,
        )

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        m = await ctx.loaders.refund_by_id.load(pk)
        return cls.from_model(m) if m else None

    @strawberry.field
    async def order(self, info: strawberry.Info[Context, None]) -> Order | None:
        return await Order.load(info.context, self.order_id)

    @strawberry.field(description="Who made it (null for a member, or staff out of your scope)")
    async def staff(self, info: strawberry.Info[Context, None]) -> Staff | None:
        if self.staff_id is None or not info.context.viewer.is_staff:
            return None
        return await Staff.load(info.context, self.staff_id)


@strawberry.type(description="What refundOrder would give back now, computed by the same rule; nothing is moved.")
class RefundPreview:
    amount: int = strawberry.field(description="fen, all tenders (the delivery fee with the last of the goods)")
    tenders: list[RefundTender]
    lines: list[RefundLine]
    stored_value: int
    points_given_back: int
    points_taken_back: int
    coupon_returned: bool
    completes_order: bool = strawberry.field(description="Nothing will be left to refund after this")

    @classmethod
    def of(cls, p: RefundPlan) -> Self:
        return cls(
            amount=p.amount,
            tenders=tenders_of(p.by_method),
            lines=_refund_lines(p.refunded_lines),
            stored_value=p.by_method.get(PaymentMethod.STORED_VALUE.value, 0),
            points_given_back=p.points_given_back,
            points_taken_back=p.points_taken_back,
            coupon_returned=p.coupon_returned,
            completes_order=p.completes,
        )


@strawberry.type
class RefundPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    refund: Refund | None = None
    order: Order | None = None


@strawberry.type
class PaymentRequest:
    provider: str
    params: JSON = strawberry.field(description="What the front end passes to the provider's pay call")


@strawberry.type
class OrderPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    order: Order | None = None
    payment: PaymentRequest | None = None
    unavailable_sku_ids: list[strawberry.ID] = strawberry.field(default_factory=list)


strawberry.enum(TopUpStatus, name="TopUpStatus")


@strawberry.type(description="A stored-value top-up paid through the provider; credited when the payment arrives.")
class OnlineTopUp:
    id: strawberry.ID
    amount: int = strawberry.field(description="Paid, fen")
    bonus: int = strawberry.field(description="Credited on top, fen")
    status: TopUpStatus
    paid_at: datetime | None

    @classmethod
    def from_model(cls, m: OnlineTopUpModel) -> Self:
        gid = strawberry.ID(str(global_id("OnlineTopUp", m.id)))
        return cls(id=gid, amount=m.amount, bonus=m.bonus, status=m.status, paid_at=m.paid_at)


@strawberry.input
class TopUpOnlineInput:
    idempotency_key: str = strawberry.field(description="The same key again returns the first top-up")
    plan_id: strawberry.ID | None = None
    amount: int | None = strawberry.field(default=None, description="fen, when no plan is used")
    store_id: strawberry.ID | None = strawberry.field(default=None, description="The store it is bought in the name of")


@strawberry.type
class TopUpOnlinePayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    top_up: OnlineTopUp | None = None
    payment: PaymentRequest | None = None


@strawberry.type(description="An amount of money (fen) by payment method.")
class MethodAmount:
    method: PaymentMethod
    amount: int = strawberry.field(description="fen")

    @staticmethod
    def listed(by_method: Mapping[str, int], *, all_methods: bool = False) -> list[MethodAmount]:
        """In the enum's order; with `all_methods`, every method (0 when unused), so a screen's rows stay put."""
        methods = list(PaymentMethod) if all_methods else [m for m in PaymentMethod if m.value in by_method]
        return [MethodAmount(method=m, amount=int(by_method.get(m.value, 0))) for m in methods]


@strawberry.type(description="Stored value spent here that another store (the issuer) took the money for.")
class IssuerAmount:
    principal: int = strawberry.field(description="fen the issuer owes this store (negative: this store owes it)")
    bonus: int = strawberry.field(description="bonus fen, the same way")
    issuer_id: strawberry.Private[int | None]

    @strawberry.field
    def total(self) -> int:
        return self.principal + self.bonus

    @strawberry.field(description="The store that sold the stored value; null for value no store issued")
    async def issuer(self, info: strawberry.Info[Context, None]) -> Store | None:
        return await Store.load(info.context, self.issuer_id) if self.issuer_id is not None else None


def _issuer_id(key: str) -> int | None:
    return int(key) if key.isdigit() else None


@strawberry.type(description="Late and duplicate payments of the day (fen): in takings, and refunded by a job.")
class LatePaymentFigures:
    received: int
    refunded: int


@strawberry.type(name="Settlement", description="A store's business day (日结), in fen.")
class SettlementType:
    business_day: date
    closed: bool
    takings: list[MethodAmount] = strawberry.field(description="Money taken, by method (every method)")
    refunds: list[MethodAmount] = strawberry.field(description="Money given back, by method (every method)")
    discounts: int
    delivery_fees: int
    stored_value_sold: StoredValue = strawberry.field(description="Stored value this store sold (money in)")
    points_value_used: int
    stored_value_by_issuer: list[IssuerAmount] = strawberry.field(
        description="Stored value spent here by the store that issued it, net of the day's refunds"
    )
    net: int = strawberry.field(
        description="Money taken less money given back, counter top-ups left out (they are stored value sold, a "
        "liability, not sales); points are not money"
    )
    top_up_takings: list[MethodAmount] = strawberry.field(
        description="The part of the takings that paid for counter top-ups, by method (in takings, so a drawer counts)"
    )
    late_payments: LatePaymentFigures = strawberry.field(
        description="Money that arrived for orders that could no longer take it, and what of it went back"
    )
    exchanges: ExchangeFigures = strawberry.field(
        description="The day's exchanges at the counter (a paid difference is in takings, a refunded one in refunds)"
    )
    figures: JSON = strawberry.field(
        description="The same figures as one JSON object with raw store ids",
        deprecation_reason="Use the typed fields: store, takings, refunds, storedValueByIssuer { issuer } ...",
    )
    store_id: strawberry.Private[int]

    @classmethod
    def of(cls, store_id: int, day: date, closed: bool, figures: Mapping[str, Any]) -> Self:
        sold = figures.get("storedValueSold", {})
        issuers = figures.get("storedValueByIssuer", {})
        return cls(
            business_day=day,
            closed=closed,
            takings=MethodAmount.listed(figures.get("takings", {}), all_methods=True),
            refunds=MethodAmount.listed(figures.get("refunds", {}), all_methods=True),
            discounts=int(figures.get("discounts", 0)),
            delivery_fees=int(figures.get("deliveryFees", 0)),
            stored_value_sold=StoredValue(principal=int(sold.get("principal", 0)), bonus=int(sold.get("bonus", 0))),
            points_value_used=int(figures.get("pointsValueUsed", 0)),
            stored_value_by_issuer=[
                IssuerAmount(principal=int(v["principal"]), bonus=int(v["bonus"]), issuer_id=_issuer_id(k))
                for k, v in sorted(issuers.items())
            ],
            net=int(figures.get("net", 0)),
            top_up_takings=MethodAmount.listed(figures.get("topUpTakings", {})),
            late_payments=LatePaymentFigures(
                received=int(figures.get("latePayments", {}).get("received", 0)),
                refunded=int(figures.get("latePayments", {}).get("refunded", 0)),
            ),
            exchanges=ExchangeFigures(**{k: int(v) for k, v in figures.get("exchanges", {}).items()}),
            figures=dict(figures),  # type: ignore[arg-type]
            store_id=store_id,
        )

    @strawberry.field
    async def store(self, info: strawberry.Info[Context, None]) -> Store | None:
        return await Store.load(info.context, self.store_id)


@strawberry.type(description="A day's exchanges at the counter, fen.")
class ExchangeFigures:
    count: int = 0
    returned: int = strawberry.field(default=0, description="What the returned units had cost the members")
    sold: int = strawberry.field(default=0, description="What the new lines cost")
    paid: int = strawberry.field(default=0, description="Differences the members paid (in takings)")
    refunded: int = strawberry.field(default=0, description="Differences given back (in refunds)")


@strawberry.input
class CloseSettlementInput:
    store_id: strawberry.ID
    date: date


@strawberry.type
class SettlementPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    settlement: SettlementType | None = None


@strawberry.input(description="Units of one line of the order coming back.")
class ReturnLineInput:
    line_id: int = strawberry.field(description="The order line's number (OrderLine.lineId)")
    quantity: int


@strawberry.input(description="换货: lines of an order come back and new ones go out, the difference settled at once.")
class ExchangeAtCounterInput:
    order_id: strawberry.ID
    idempotency_key: str = strawberry.field(
        description="The same key again returns the first exchange and moves nothing twice"
    )
    return_lines: list[ReturnLineInput]
    new_lines: list[CartLineInput]
    tenders: list[TenderInput] = strawberry.field(
        default_factory=list, description="When the member pays a difference: adding up to it exactly"
    )
    member_code: str | None = personal(
        Sensitivity.SECRET,
        default=None,
        description="The member's rotating code: needed to pay a difference with their stored value",
    )


@strawberry.type(description="Units that came back in an exchange and what they had cost the member.")
class ExchangedLine:
    line_id: int
    quantity: int
    amount: int = strawberry.field(description="fen")
    sku_id: strawberry.Private[int]

    @strawberry.field
    async def sku(self, info: strawberry.Info[Context, None]) -> Sku | None:
        return await Sku.load(info.context, self.sku_id)


@strawberry.type(
    description="An exchange at the counter: what came back, what went out, and how the difference was settled."
)
class Exchange:
    number: str = strawberry.field(description="The receipt's number")
    returned: list[ExchangedLine]
    sold: list[OrderLine] = strawberry.field(description="The new lines, now on the order")
    returned_value: int = strawberry.field(description="fen")
    sold_value: int = strawberry.field(description="fen")
    difference: int = strawberry.field(description="sold less returned, fen: above 0 paid, below 0 given back")
    paid: list[MethodAmount] = strawberry.field(description="What the member paid the difference with")
    refunded: list[RefundTender] = strawberry.field(description="Where the difference went back, by the refund rule")
    points_earned: int
    points_taken_back: int
    created_at: datetime


@strawberry.type(description="One line of an exchange's receipt: negative quantity and amount for what came back.")
class ReceiptLine:
    name: str
    quantity: int
    amount: int = strawberry.field(description="fen")


@strawberry.type(description="The one receipt of an exchange.")
class ExchangeReceipt:
    number: str
    at: datetime
    lines: list[ReceiptLine]
    difference: int = strawberry.field(description="fen")
    settled: list[MethodAmount] = strawberry.field(description="By method; negative: given back")
    text: str = strawberry.field(description="The receipt as printed")


@strawberry.type
class ExchangePayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    exchange: Exchange | None = None
    receipt: ExchangeReceipt | None = None
    order: Order | None = None

    @staticmethod
    def of(done: order_resolvers.Exchanged, receipt: order_resolvers.Receipt) -> ExchangePayload:
        ex = done.exchange
        return ExchangePayload(
            exchange=Exchange(
                number=receipt.number,
                returned=[
                    ExchangedLine(
                        line_id=int(x["lineId"]),
                        quantity=int(x["quantity"]),
                        amount=int(x["amount"]),
                        sku_id=int(x["skuId"]),
                    )
                    for x in ex.returned
                ],
                sold=[OrderLine.from_model(x, done.order.status) for x in done.sold],
                returned_value=ex.returned_value,
                sold_value=ex.sold_value,
                difference=ex.difference,
                paid=MethodAmount.listed(ex.paid_by_method),
                refunded=tenders_of(done.refund.by_method) if done.refund is not None else [],
                points_earned=ex.points_earned,
                points_taken_back=ex.points_taken_back,
                created_at=ex.created_at,
            ),
            receipt=ExchangeReceipt(
                number=receipt.number,
                at=receipt.at,
                lines=[ReceiptLine(name=x.name, quantity=x.quantity, amount=x.amount) for x in receipt.lines],
                difference=receipt.difference,
                settled=[MethodAmount(method=PaymentMethod(m), amount=a) for m, a in receipt.settled],
                text=receipt.text,
            ),
            order=Order.from_model(done.order),
        )

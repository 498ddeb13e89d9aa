"""Order root fields: quote, place, pay (through the provider), pick up, POS checkout, refunds, settlement."""

from __future__ import annotations

from datetime import date

import strawberry
from strawberry.scalars import JSON

from models import Channel, Fulfilment, OrderStatus, PaymentMethod
from resolvers import DomainError, ErrorCode, Perm
from resolvers import orders as order_resolvers
from resolvers.context import Context
from resolvers.orders import (
    CartLine,
    DeliveryAddress,
    OrderFilter,
    PlaceOrder,
    Prepay,
    RefundRequest,
    Tender,
)
from schema.core.common import Connection, decode_id, decode_optional_id, global_id
from schema.core.permissions import IsMember, IsSignedIn, only, requires
from schema.core.transaction import MutationTransaction
from schema.orders.types import (
    CartLineInput,
    CloseSettlementInput,
    ExchangeAtCounterInput,
    ExchangePayload,
    OnlineTopUp,
    Order,
    OrderFilterInput,
    OrderIdInput,
    OrderPayload,
    Payment,
    PaymentRequest,
    PlaceOrderInput,
    PosCheckoutInput,
    QuoteInput,
    QuoteType,
    Refund,
    RefundOrderInput,
    RefundPayload,
    RefundPreview,
    RefundPreviewInput,
    SettlementPayload,
    SettlementType,
    TopUpOnlineInput,
    TopUpOnlinePayload,
    VerifyPickupInput,
)
from schema.org.types import Store


def refund_request(input: RefundPreviewInput) -> RefundRequest:
    chosen: dict[PaymentMethod, int] | None = None
    if input.tenders is not None:
        chosen = {}
        for t in input.tenders:
            method = PaymentMethod(t.method)
            if method in chosen:
                raise DomainError(ErrorCode.INVALID_INPUT, "Name each tender once.", "tenders")
            chosen[method] = t.amount
    return RefundRequest(
        order_id=decode_id(input.id, "Order"),
        quantities={x.sku_id: x.quantity for x in _cart(input.lines)} if input.lines else None,
        restock=input.restock,
        reason=input.reason,
        tenders=chosen,
    )


def payment_request(ctx: Context, prepay: Prepay | None) -> PaymentRequest | None:
    if prepay is None:
        return None
    params: JSON = prepay.client_params  # type: ignore[assignment]
    return PaymentRequest(provider=order_resolvers.provider(ctx).name, params=params)


def order_filter(given: OrderFilterInput | None, status: OrderStatus | None) -> OrderFilter:
    f = given or OrderFilterInput()
    statuses = [OrderStatus(s) for s in f.statuses] if f.statuses is not None else None
    if status is not None:  # both apply: the one status, if the list has it
        statuses = [s for s in statuses if s == status] if statuses is not None else [OrderStatus(status)]
    return OrderFilter(
        store_ids=[decode_id(s, "Store", f"filter.storeIds[{i}]") for i, s in enumerate(f.store_ids)]
        if f.store_ids is not None
        else None,
        city=f.city,
        since=f.from_,
        until=f.to,
        statuses=statuses,
        channel=Channel(f.channel) if f.channel else None,
        fulfilment=Fulfilment(f.fulfilment) if f.fulfilment else None,
        member_id=decode_optional_id(f.member_id, "Member", "filter.memberId"),
        min_total=f.min_total,
        max_total=f.max_total,
        has_refund=f.has_refund,
    )


def _cart(lines: list[CartLineInput]) -> list[CartLine]:
    return [CartLine(decode_id(x.sku_id, "Sku", f"lines[{i}].skuId"), x.quantity) for i, x in enumerate(lines)]


def _card_ids(ids: list[strawberry.ID] | None) -> list[int]:
    return [decode_id(x, "MemberCard", f"cardIds[{i}]") for i, x in enumerate(ids or [])]


@strawberry.type
class OrderQuery:
    @strawberry.field(
        description="Price a cart: each line's price with the rules that made it; what points and stored value may pay."
    )
    async def quote(self, info: strawberry.Info[Context, None], input: QuoteInput) -> QuoteType:
        q = await order_resolvers.price(
            info.context,
            store_id=decode_id(input.store_id, "Store", "storeId"),
            lines=_cart(input.lines),
            member_id=decode_optional_id(input.member_id, "Member", "memberId"),
            fulfilment=Fulfilment(input.fulfilment),
            coupon_id=decode_optional_id(input.coupon_id, "MemberCoupon", "couponId"),
            card_ids=_card_ids(input.card_ids),
        )
        result = QuoteType.of(q)
        result.alternative_stores = [
            Store.from_model(s, d) for s, d in await order_resolvers.alternatives(info.context, q)
        ]
        result.open_now, result.next_opening = await order_resolvers.opening(info.context, q.store_id)
        return result

    @strawberry.field(extensions=only(IsMember()))
    async def my_orders(
        self, info: strawberry.Info[Context, None], first: int | None = 20, after: str | None = None
    ) -> Connection[Order]:
        page = await order_resolvers.my_orders(info.context, first=first, after=after)
        return Connection[Order].of(page, Order.from_model)

    @strawberry.field(
        extensions=requires(Perm.ORDER_READ),
        description="Late and duplicate provider payments, newest first (HQ: every store's; staff: their own). "
        "`refunded: false` lists those still being given back.",
    )
    async def late_payments(
        self,
        info: strawberry.Info[Context, None],
        store_id: strawberry.ID | None = None,
        refunded: bool | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[Payment]:
        page = await order_resolvers.late_payments_page(
            info.context,
            store_id=decode_optional_id(store_id, "Store", "storeId"),
            refunded=refunded,
            first=first,
            after=after,
        )
        return Connection[Payment].of(page, Payment.from_model)

    @strawberry.field(
        extensions=requires(Perm.ORDER_READ),
        description="统一订单管理: orders newest first, HQ every store's, a store's staff their own; narrowed by "
        "`filter`. `storeId` (the tablet's) names one store and refuses another store's.",
    )
    async def orders(
        self,
        info: strawberry.Info[Context, None],
        store_id: strawberry.ID | None = None,
        status: OrderStatus | None = None,
        filter: OrderFilterInput | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[Order]:
        page = await order_resolvers.order_list(
            info.context,
            order_filter(filter, status),
            store_id=decode_optional_id(store_id, "Store", "storeId"),
            first=first,
            after=after,
        )
        return Connection[Order].of(page, Order.from_model)

    @strawberry.field(
        extensions=requires(Perm.ORDER_READ),
        description="HQ: the filtered order list as CSV, newest first (order_no, store_code, city, created_at_local, "
        "channel, fulfilment, status, member_phone masked, items, total_fen, paid_fen, refunded_fen); at most "
        "5000 rows, more is refused: narrow the filter.",
    )
    async def orders_csv(self, info: strawberry.Info[Context, None], filter: OrderFilterInput | None = None) -> str:
        return await order_resolvers.orders_csv(info.context, order_filter(filter, None))

    @strawberry.field(
        extensions=requires(Perm.ORDER_REFUND),
        description="What refundOrder would give back to which tender, before it is made (the same rule).",
    )
    async def refund_preview(self, info: strawberry.Info[Context, None], input: RefundPreviewInput) -> RefundPreview:
        return RefundPreview.of(await order_resolvers.refund_preview(info.context, refund_request(input)))


@strawberry.type
class OrderMutation:
    @strawberry.mutation(
        extensions=[*only(IsMember()), MutationTransaction()],
        description="Order for pickup or delivery: stock is held (15 minutes by default) while the member pays.",
    )
    async def place_order(self, info: strawberry.Info[Context, None], input: PlaceOrderInput) -> OrderPayload:
        where = input.delivery
        request = PlaceOrder(
            store_id=decode_id(input.store_id, "Store", "storeId"),
            lines=_cart(input.lines),
            idempotency_key=input.idempotency_key,
            fulfilment=Fulfilment(input.fulfilment),
            pickup_at=input.pickup_at,
            use_points=input.use_points,
            use_stored_value=input.use_stored_value,
            delivery=DeliveryAddress(where.contact_name, where.phone, where.address, where.lat, where.lng)
            if where
            else None,
            coupon_id=decode_optional_id(input.coupon_id, "MemberCoupon", "couponId"),
            flash_sale_id=decode_optional_id(input.flash_sale_id, "Campaign", "flashSaleId"),
        )
        try:
            placed = await order_resolvers.place(info.context, request)
        except DomainError as exc:
            if "unavailable_sku_ids" in exc.details:
                exc.details["unavailable_sku_ids"] = [global_id("Sku", k) for k in exc.details["unavailable_sku_ids"]]
            raise
        return OrderPayload(order=Order.from_model(placed.order), payment=payment_request(info.context, placed.prepay))

    @strawberry.mutation(
        extensions=[*only(IsMember()), MutationTransaction()],
        description="储值: top up stored value online, paid through the provider; credited when payment arrives.",
    )
    async def top_up_online(self, info: strawberry.Info[Context, None], input: TopUpOnlineInput) -> TopUpOnlinePayload:
        ctx = info.context
        started = await order_resolvers.top_up_online(
            ctx,
            plan_id=decode_optional_id(input.plan_id, "TopUpPlan", "planId"),
            amount=input.amount,
            store_id=decode_optional_id(input.store_id, "Store", "storeId"),
            key=input.idempotency_key,
        )
        return TopUpOnlinePayload(
            top_up=OnlineTopUp.from_model(started.top_up), payment=payment_request(ctx, started.prepay)
        )

    @strawberry.mutation(
        extensions=[*only(IsMember()), MutationTransaction()],
        description="Cancel before paying; the provider's payment order is closed, so it can no longer be paid.",
    )
    async def cancel_my_order(self, info: strawberry.Info[Context, None], input: OrderIdInput) -> OrderPayload:
        order = await order_resolvers.cancel_my_order(info.context, decode_id(input.id, "Order"))
        return OrderPayload(order=Order.from_model(order))

    @strawberry.mutation(
        extensions=[*only(IsMember()), MutationTransaction()],
        description="Pay again (after a lost answer): the pay parameters of your unpaid order, until it expires. "
        "Asking again is harmless: the order is paid once.",
    )
    async def pay_order(self, info: strawberry.Info[Context, None], input: OrderIdInput) -> OrderPayload:
        ctx = info.context
        placed = await order_resolvers.pay_again(ctx, decode_id(input.id, "Order"))
        return OrderPayload(order=Order.from_model(placed.order), payment=payment_request(ctx, placed.prepay))

    @strawberry.mutation(
        extensions=[*requires(Perm.ORDER_CHECKOUT), MutationTransaction()],
        description="收银: a counter sale, paid by any mix of methods, completed at once.",
    )
    async def pos_checkout(self, info: strawberry.Info[Context, None], input: PosCheckoutInput) -> OrderPayload:
        order = await order_resolvers.pos_checkout(
            info.context,
            store_id=decode_optional_id(input.store_id, "Store", "storeId"),
            client_order_id=input.client_order_id,
            lines=_cart(input.lines),
            tenders=[Tender(PaymentMethod(t.method), t.amount, t.reference) for t in input.tenders],
            member_id=decode_optional_id(input.member_id, "Member", "memberId"),
            use_points=input.use_points,
            coupon_id=decode_optional_id(input.coupon_id, "MemberCoupon", "couponId"),
            card_ids=_card_ids(input.card_ids),
        )
        return OrderPayload(order=Order.from_model(order))

    @strawberry.mutation(
        extensions=[*requires(Perm.ORDER_REFUND), MutationTransaction()],
        description="Refund all or some lines: money back by method, points settled, goods restocked.",
    )
    async def refund_order(self, info: strawberry.Info[Context, None], input: RefundOrderInput) -> RefundPayload:
        refund, order = await order_resolvers.refund(info.context, refund_request(input), input.idempotency_key)
        return RefundPayload(refund=Refund.from_model(refund), order=Order.from_model(order))

    @strawberry.mutation(
        extensions=[*requires(Perm.ORDER_CHECKOUT, Perm.ORDER_REFUND), MutationTransaction()],
        description="换货: return some lines of an order and sell others in one step, the difference paid by tenders "
        "or given back by the refund rule; the order's own store only.",
    )
    async def exchange_at_counter(
        self, info: strawberry.Info[Context, None], input: ExchangeAtCounterInput
    ) -> ExchangePayload:
        returns: dict[int, int] = {}
        for x in input.return_lines:
            if x.line_id in returns:
                raise DomainError(ErrorCode.INVALID_INPUT, "Name each line once.", "returnLines")
            returns[x.line_id] = x.quantity
        request = order_resolvers.ExchangeRequest(
            order_id=decode_id(input.order_id, "Order", "orderId"),
            returns=returns,
            new_lines=_cart(input.new_lines),
            tenders=[Tender(PaymentMethod(t.method), t.amount, t.reference) for t in input.tenders],
            member_code=input.member_code,
        )
        done, receipt = await order_resolvers.exchange(info.context, request, input.idempotency_key)
        return ExchangePayload.of(done, receipt)

    @strawberry.mutation(extensions=[*requires(Perm.ORDER_PICKUP), MutationTransaction()])
    async def mark_order_preparing(self, info: strawberry.Info[Context, None], input: OrderIdInput) -> OrderPayload:
        order = await order_resolvers.mark_preparing(info.context, decode_id(input.id, "Order"))
        return OrderPayload(order=Order.from_model(order))

    @strawberry.mutation(extensions=[*requires(Perm.ORDER_PICKUP), MutationTransaction()])
    async def mark_order_ready(self, info: strawberry.Info[Context, None], input: OrderIdInput) -> OrderPayload:
        order = await order_resolvers.mark_ready(info.context, decode_id(input.id, "Order"))
        return OrderPayload(order=Order.from_model(order))

    @strawberry.mutation(
        extensions=[*requires(Perm.ORDER_PICKUP), MutationTransaction()],
        description="A delivery order leaves with the rider (this store's orders only).",
    )
    async def dispatch_order(self, info: strawberry.Info[Context, None], input: OrderIdInput) -> OrderPayload:
        order = await order_resolvers.dispatch(info.context, decode_id(input.id, "Order"))
        return OrderPayload(order=Order.from_model(order))

    @strawberry.mutation(
        extensions=[*only(IsSignedIn()), MutationTransaction()],
        description="A delivery arrived: said by the store for its rider, or by the member who received it.",
    )
    async def confirm_delivery(self, info: strawberry.Info[Context, None], input: OrderIdInput) -> OrderPayload:
        order = await order_resolvers.confirm_delivery(info.context, decode_id(input.id, "Order"))
        return OrderPayload(order=Order.from_model(order))

    @strawberry.mutation(
        extensions=[*requires(Perm.ORDER_PICKUP), MutationTransaction()],
        description="核销: hand over a pickup order by its code (this store's orders only).",
    )
    async def verify_pickup(self, info: strawberry.Info[Context, None], input: VerifyPickupInput) -> OrderPayload:
        quantities = {x.sku_id: x.quantity for x in _cart(input.lines)} if input.lines else None
        order = await order_resolvers.verify_pickup(
            info.context,
            store_id=decode_optional_id(input.store_id, "Store", "storeId"),
            code=input.code,
            key=input.idempotency_key,
            quantities=quantities,
        )
        return OrderPayload(order=Order.from_model(order))


@strawberry.type
class SettlementQuery:
    @strawberry.field(extensions=requires(Perm.SETTLEMENT_VIEW), description="A store's day in its own time zone.")
    async def settlement(
        self, info: strawberry.Info[Context, None], store_id: strawberry.ID, date: date
    ) -> SettlementType:
        figures, closed = await order_resolvers.day_settlement(
            info.context, decode_id(store_id, "Store", "storeId"), date
        )
        return SettlementType.of(decode_id(store_id, "Store", "storeId"), date, closed, figures)


@strawberry.type
class SettlementMutation:
    @strawberry.mutation(
        extensions=[*requires(Perm.SETTLEMENT_VIEW), MutationTransaction()],
        description="HQ closes a store's day: its figures never change afterwards.",
    )
    async def close_settlement(
        self, info: strawberry.Info[Context, None], input: CloseSettlementInput
    ) -> SettlementPayload:
        store_id = decode_id(input.store_id, "Store", "storeId")
        figures = await order_resolvers.close_settlement(info.context, store_id, input.date)
        return SettlementPayload(settlement=SettlementType.of(store_id, input.date, True, figures))

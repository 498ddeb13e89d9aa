"""Card root fields: products, a member's cards, a store's card uses, HQ's card report; selling, buying online,
refunding and gifting cards. Using a card is part of posCheckout (cardIds), priced by the quote."""

from __future__ import annotations

from datetime import date

import strawberry

from models import PaymentMethod
from resolvers import Perm
from resolvers import cards as card_resolvers
from resolvers.cards import ProductSpec
from resolvers.context import Context
from resolvers.orders import Tender
from schema.cards.types import (
    BuyCardInput,
    BuyCardPayload,
    CardEntry,
    CardProduct,
    CardProductPayload,
    CardReportRow,
    CardSale,
    CreateCardProductInput,
    MemberCard,
    MemberCardPayload,
    RedeemGiftCardInput,
    RefundCardInput,
    RefundCardPayload,
    SellCardInput,
    ShareGiftCardInput,
)
from schema.core.common import Connection, decode_id, decode_optional_id
from schema.core.permissions import IsMember, only, requires
from schema.core.transaction import MutationTransaction
from schema.orders.api import payment_request


@strawberry.type
class CardQuery:
    @strawberry.field(description="The card products on sale (HQ's card managers: every one)")
    async def card_products(self, info: strawberry.Info[Context, None]) -> list[CardProduct]:
        return [CardProduct.from_model(p) for p in await card_resolvers.card_products(info.context)]

    @strawberry.field(extensions=only(IsMember()), description="The member's own cards, newest first")
    async def my_cards(
        self,
        info: strawberry.Info[Context, None],
        with_uses_left: bool = False,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[MemberCard]:
        page = await card_resolvers.my_cards(info.context, with_left=with_uses_left, first=first, after=after)
        return Connection[MemberCard].of(page, MemberCard.from_model)

    @strawberry.field(
        extensions=requires(Perm.MEMBER_LOOKUP),
        description="At the counter: the usable cards of a member identified here, soonest to expire first",
    )
    async def member_cards(self, info: strawberry.Info[Context, None], member_id: strawberry.ID) -> list[MemberCard]:
        cards = await card_resolvers.member_cards(info.context, decode_id(member_id, "Member", "memberId"))
        return [MemberCard.from_model(c) for c in cards]

    @strawberry.field(extensions=requires(Perm.ORDER_READ), description="Card uses at a store's counter, newest first")
    async def card_uses(
        self,
        info: strawberry.Info[Context, None],
        store_id: strawberry.ID,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[CardEntry]:
        sid = decode_id(store_id, "Store", "storeId")
        page = await card_resolvers.card_uses(info.context, store_id=sid, first=first, after=after)
        return Connection[CardEntry].of(page, CardEntry.from_model)

    @strawberry.field(
        extensions=requires(Perm.REPORT_VIEW),
        description="Cards sold, used, refunded and expired by store (days in UTC, both included; all time without), "
        "with each store's outstanding liability now and its clearing with the chain",
    )
    async def card_report(
        self, info: strawberry.Info[Context, None], since: date | None = None, until: date | None = None
    ) -> list[CardReportRow]:
        return [CardReportRow.of(r) for r in await card_resolvers.report(info.context, since=since, until=until)]


def _spec(input: CreateCardProductInput) -> ProductSpec:
    skus = None if input.sku_ids is None else [decode_id(s, "Sku", f"skuIds[{i}]") for i, s in enumerate(input.sku_ids)]
    stores = (
        None
        if input.store_ids is None
        else [decode_id(s, "Store", f"storeIds[{i}]") for i, s in enumerate(input.store_ids)]
    )
    return ProductSpec(
        name=input.name,
        kind=input.kind,
        price=input.price,
        uses=input.uses,
        face_value=input.face_value,
        per_day_limit=input.per_day_limit,
        sku_ids=skus,
        validity_days=input.validity_days,
        valid_until=input.valid_until,
        store_ids=stores,
        city=input.city,
        stores_may_sell=input.stores_may_sell,
        earns_points_on_use=input.earns_points_on_use,
    )


@strawberry.type
class CardMutation:
    @strawberry.mutation(
        extensions=[*requires(Perm.CARD_MANAGE), MutationTransaction()], description="HQ defines a card product"
    )
    async def create_card_product(
        self, info: strawberry.Info[Context, None], input: CreateCardProductInput
    ) -> CardProductPayload:
        product = await card_resolvers.create_product(info.context, _spec(input))
        return CardProductPayload(product=CardProduct.from_model(product))

    @strawberry.mutation(
        extensions=[*requires(Perm.ORDER_CHECKOUT), MutationTransaction()],
        description="Sell a card at the counter, paid by tenders; the store issues it",
    )
    async def sell_card(self, info: strawberry.Info[Context, None], input: SellCardInput) -> MemberCardPayload:
        card = await card_resolvers.sell(
            info.context,
            member_id=decode_id(input.member_id, "Member", "memberId"),
            product_id=decode_id(input.product_id, "CardProduct", "productId"),
            store_id=decode_optional_id(input.store_id, "Store", "storeId"),
            tenders=[Tender(PaymentMethod(t.method), t.amount, t.reference) for t in input.tenders],
            key=input.idempotency_key,
        )
        return MemberCardPayload(card=MemberCard.from_model(card))

    @strawberry.mutation(
        extensions=[*only(IsMember()), MutationTransaction()],
        description="Buy a card in the mini-program, paid through the provider; issued when the payment arrives",
    )
    async def buy_card(self, info: strawberry.Info[Context, None], input: BuyCardInput) -> BuyCardPayload:
        ctx = info.context
        started = await card_resolvers.buy_online(
            ctx,
            product_id=decode_id(input.product_id, "CardProduct", "productId"),
            store_id=decode_id(input.store_id, "Store", "storeId"),
            key=input.idempotency_key,
        )
        return BuyCardPayload(sale=CardSale.from_model(started.sale), payment=payment_request(ctx, started.prepay))

    @strawberry.mutation(
        extensions=[*requires(Perm.ORDER_REFUND), MutationTransaction()],
        description="Refund what is left on a card, pro rata, at the store that sold it",
    )
    async def refund_card(self, info: strawberry.Info[Context, None], input: RefundCardInput) -> RefundCardPayload:
        done = await card_resolvers.refund(
            info.context,
            card_id=decode_id(input.card_id, "MemberCard", "cardId"),
            store_id=decode_optional_id(input.store_id, "Store", "storeId"),
            method=PaymentMethod(input.method),
            key=input.idempotency_key,
        )
        return RefundCardPayload(card=MemberCard.from_model(done.card), amount=done.amount, method=done.method)

    @strawberry.mutation(
        extensions=[*only(IsMember()), MutationTransaction()],
        description="Get the share code of an unused gift card, to send to a friend",
    )
    async def share_gift_card(
        self, info: strawberry.Info[Context, None], input: ShareGiftCardInput
    ) -> MemberCardPayload:
        card = await card_resolvers.share_gift(info.context, decode_id(input.card_id, "MemberCard", "cardId"))
        return MemberCardPayload(card=MemberCard.from_model(card))

    @strawberry.mutation(
        extensions=[*only(IsMember()), MutationTransaction()],
        description="Claim a gift card by its share code; a code is claimed once",
    )
    async def redeem_gift_card(
        self, info: strawberry.Info[Context, None], input: RedeemGiftCardInput
    ) -> MemberCardPayload:
        card = await card_resolvers.redeem_gift(info.context, code=input.code, key=input.idempotency_key)
        return MemberCardPayload(card=MemberCard.from_model(card))

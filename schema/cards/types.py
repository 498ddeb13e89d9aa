"""Card types: card products, members' cards with their history, card uses and HQ's card report."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Self

import strawberry
from strawberry import relay

from models import CardEntry as CardEntryModel
from models import CardKind, CardMove, CardSaleStatus, CardStatus, PaymentMethod
from models import CardProduct as CardProductModel
from models import CardSale as CardSaleModel
from models import MemberCard as MemberCardModel
from resolvers.cards import StoreCards
from resolvers.context import Context
from schema.catalog.types import Sku
from schema.core.common import UserError, global_id
from schema.core.node import Loaded
from schema.core.personal import not_personal
from schema.orders.types import PaymentRequest, TenderInput
from schema.org.types import Store

strawberry.enum(CardKind, name="CardKind", description="COUNT 次卡, PERIOD 月卡/季卡, GIFT 礼品卡")
strawberry.enum(CardStatus, name="CardStatus")
strawberry.enum(CardMove, name="CardMove")
strawberry.enum(CardSaleStatus, name="CardSaleStatus")


@strawberry.type(description="A card HQ sells (卡项)")
class CardProduct(Loaded, relay.Node):
    id: relay.NodeID[int]
    name: str
    kind: CardKind
    price: int = strawberry.field(description="fen")
    uses: int | None = strawberry.field(description="COUNT: the uses sold")
    face_value: int | None = strawberry.field(description="GIFT: the fen it pays")
    per_day_limit: int | None = strawberry.field(description="Uses a day (PERIOD: always set)")
    validity_days: int | None = strawberry.field(description="Valid N days from purchase")
    valid_until: datetime | None = strawberry.field(description="Or until this moment (the earlier wins)")
    city: str | None = strawberry.field(description="Valid only in this city's stores")
    stores_may_sell: bool
    earns_points_on_use: bool = strawberry.field(description="A use earns points for the goods it pays (default no)")
    active: bool
    sku_ids: strawberry.Private[list[int] | None]
    store_ids: strawberry.Private[list[int] | None]

    @classmethod
    def from_model(cls, m: CardProductModel) -> Self:
        return cls(
            id=m.id,
            name=m.name,
            kind=m.kind,
            price=m.price,
            uses=m.uses,
            face_value=m.face_value,
            per_day_limit=m.per_day_limit,
            validity_days=m.validity_days,
            valid_until=m.valid_until,
            city=m.city,
            stores_may_sell=m.stores_may_sell,
            earns_points_on_use=m.earns_points_on_use,
            active=m.active,
            sku_ids=m.sku_ids,
            store_ids=m.store_ids,
        )

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        m = await ctx.loaders.card_product_by_id.load(pk)
        return cls.from_model(m) if m else None

    @strawberry.field(description="The SKUs it pays for; empty: any (gift cards)")
    async def skus(self, info: strawberry.Info[Context, None]) -> list[Sku]:
        found = await asyncio.gather(*(Sku.load(info.context, s) for s in self.sku_ids or []))  # one loader batch
        return [s for s in found if s is not None]

    @strawberry.field(description="The stores where it is valid; empty: every store (or every store of `city`)")
    def store_ids_valid(self) -> list[strawberry.ID]:
        return [strawberry.ID(str(global_id("Store", s))) for s in self.store_ids or []]


@strawberry.type(description="One move of a card: issue, use, refund, expiry or gift, where it happened")
class CardEntry:
    kind: CardMove
    units: int = strawberry.field(description="Uses (a gift card: fen) added or taken")
    value: int = strawberry.field(description="Fen of the card's price the move carried (pro rata)")
    created_at: datetime
    store_id: strawberry.Private[int]
    issuer_store_id: strawberry.Private[int]
    sku_id: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, m: CardEntryModel) -> Self:
        return cls(
            kind=m.kind,
            units=m.units,
            value=m.value,
            created_at=m.created_at,
            store_id=m.store_id,
            issuer_store_id=m.issuer_store_id,
            sku_id=m.sku_id,
        )

    @strawberry.field(description="Where it happened (the redeeming store, for a use)")
    async def store(self, info: strawberry.Info[Context, None]) -> Store | None:
        return await Store.load(info.context, self.store_id)

    @strawberry.field(description="The store that sold the card")
    async def issuer(self, info: strawberry.Info[Context, None]) -> Store | None:
        return await Store.load(info.context, self.issuer_store_id)

    @strawberry.field
    async def sku(self, info: strawberry.Info[Context, None]) -> Sku | None:
        return None if self.sku_id is None else await Sku.load(info.context, self.sku_id)


@strawberry.type(description="A card a member holds")
class MemberCard(Loaded, relay.Node):
    id: relay.NodeID[int]
    kind: CardKind
    status: CardStatus
    units_total: int = strawberry.field(description="Uses bought (a gift card: fen)")
    units_left: int = strawberry.field(description="Uses left (a gift card: fen)")
    value_total: int = strawberry.field(description="Fen paid")
    value_left: int = strawberry.field(description="Fen still owed for the units left (what a refund gives back)")
    per_day_limit: int | None
    expires_at: datetime
    gifted: bool = strawberry.field(description="Claimed from another member's gift")
    created_at: datetime
    product_id: strawberry.Private[int]
    issuer_store_id: strawberry.Private[int]
    member_id: strawberry.Private[int]
    code: strawberry.Private[str | None]

    @classmethod
    def from_model(cls, m: MemberCardModel) -> Self:
        return cls(
            id=m.id,
            kind=m.kind,
            status=m.status,
            units_total=m.units_total,
            units_left=m.units_left,
            value_total=m.value_total,
            value_left=m.value_left,
            per_day_limit=m.per_day_limit,
            expires_at=m.expires_at,
            gifted=m.gifted,
            created_at=m.created_at,
            product_id=m.product_id,
            issuer_store_id=m.issuer_store_id,
            member_id=m.member_id,
            code=m.share_code,
        )

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        m = await ctx.loaders.member_card_by_id.load(pk)
        return cls.from_model(m) if m else None

    @strawberry.field
    async def product(self, info: strawberry.Info[Context, None]) -> CardProduct | None:
        return await CardProduct.load(info.context, self.product_id)

    @strawberry.field(description="The store that sold it (its unused value is that store's liability)")
    async def issuer(self, info: strawberry.Info[Context, None]) -> Store | None:
        return await Store.load(info.context, self.issuer_store_id)

    @strawberry.field(description="The gift code to send a friend; only its holder sees it")
    def share_code(self, info: strawberry.Info[Context, None]) -> str | None:
        viewer = info.context.viewer
        return self.code if viewer.is_member and viewer.member_id == self.member_id else None

    @strawberry.field(
        description="Its moves, newest first: a member sees all of their own; staff only those at their counters"
    )
    async def history(self, info: strawberry.Info[Context, None]) -> list[CardEntry]:
        return [CardEntry.from_model(e) for e in await info.context.loaders.card_history.load(self.id)]


@strawberry.type(description="A card bought in the mini-program; the card is issued when the payment arrives")
class CardSale:
    id: strawberry.ID
    amount: int = strawberry.field(description="fen")
    status: CardSaleStatus
    card_id: strawberry.ID | None = strawberry.field(description="The MemberCard, once paid")

    @classmethod
    def from_model(cls, m: CardSaleModel) -> Self:
        card = strawberry.ID(str(global_id("MemberCard", m.card_id))) if m.card_id else None
        return cls(id=strawberry.ID(str(global_id("CardSale", m.id))), amount=m.amount, status=m.status, card_id=card)


@strawberry.type(description="One store's cards, in fen: sold (issued there), used at its counter, and what it owes")
class CardReportRow:
    sold_count: int
    sold_value: int
    uses: int = strawberry.field(description="Units used at this store's counter")
    used_value: int = strawberry.field(description="Value recognised here as revenue (uses at this counter)")
    refunded_value: int
    expired_value: int
    outstanding_value: int = strawberry.field(description="Unused value of cards this store sold: its liability now")
    receivable: int = strawberry.field(description="Value used here of cards other stores sold")
    payable: int = strawberry.field(description="Value of this store's cards used in other stores")
    clearing: int = strawberry.field(description="receivable - payable; sums to zero over the chain")
    store_id: strawberry.Private[int]

    @classmethod
    def of(cls, r: StoreCards) -> Self:
        return cls(
            sold_count=r.sold_count,
            sold_value=r.sold_value,
            uses=r.uses,
            used_value=r.used_value,
            refunded_value=r.refunded_value,
            expired_value=r.expired_value,
            outstanding_value=r.outstanding_value,
            receivable=r.receivable,
            payable=r.payable,
            clearing=r.clearing,
            store_id=r.store_id,
        )

    @strawberry.field
    async def store(self, info: strawberry.Info[Context, None]) -> Store | None:
        return await Store.load(info.context, self.store_id)


@strawberry.input
class CreateCardProductInput:
    name: str = not_personal()
    kind: CardKind
    price: int = strawberry.field(description="fen")
    uses: int | None = strawberry.field(default=None, description="COUNT: uses sold")
    face_value: int | None = strawberry.field(default=None, description="GIFT: fen it pays (at least the price)")
    per_day_limit: int | None = strawberry.field(default=None, description="Uses a day (PERIOD: required)")
    sku_ids: list[strawberry.ID] | None = strawberry.field(default=None, description="What it pays for")
    validity_days: int | None = None
    valid_until: datetime | None = None
    store_ids: list[strawberry.ID] | None = strawberry.field(default=None, description="Valid only here")
    city: str | None = not_personal(default=None, description="Valid only in this city's stores")
    stores_may_sell: bool = True
    earns_points_on_use: bool = False


@strawberry.input
class SellCardInput:
    member_id: strawberry.ID
    product_id: strawberry.ID
    tenders: list[TenderInput]
    idempotency_key: str = strawberry.field(description="The same key again returns the first card; takes once")
    store_id: strawberry.ID | None = None


@strawberry.input
class BuyCardInput:
    product_id: strawberry.ID
    store_id: strawberry.ID = strawberry.field(description="The store it is bought from (it issues the card)")
    idempotency_key: str = strawberry.field(description="The same key again returns the first sale")


@strawberry.input
class RefundCardInput:
    card_id: strawberry.ID
    method: PaymentMethod = strawberry.field(description="How the money goes back: CASH, CARD, WECHAT_PAY, ALIPAY")
    idempotency_key: str = strawberry.field(description="The same key again returns the first refund")
    store_id: strawberry.ID | None = strawberry.field(default=None, description="The issuing store")


@strawberry.input
class ShareGiftCardInput:
    card_id: strawberry.ID


@strawberry.input
class RedeemGiftCardInput:
    code: str = not_personal()
    idempotency_key: str = strawberry.field(description="The same key again returns the card claimed")


@strawberry.type
class CardProductPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    product: CardProduct | None = None


@strawberry.type
class MemberCardPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    card: MemberCard | None = None


@strawberry.type
class BuyCardPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    sale: CardSale | None = None
    payment: PaymentRequest | None = None


@strawberry.type
class RefundCardPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    card: MemberCard | None = None
    amount: int = strawberry.field(default=0, description="fen given back: the unused value, pro rata")
    method: PaymentMethod | None = None

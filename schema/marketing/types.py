"""Marketing types: campaigns, coupons, group buys, referral and the points mall."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

import strawberry
from strawberry import relay

from models import Campaign as CampaignModel
from models import CampaignItem as CampaignItemModel
from models import (
    CampaignKind,
    CampaignStatus,
    CouponKind,
    CouponSource,
    CouponTrigger,
    GroupBuyStatus,
    MemberCouponStatus,
)
from models import CouponTemplate as CouponTemplateModel
from models import GroupBuy as GroupBuyModel
from models import MemberCoupon as MemberCouponModel
from models import PointsMallItem as PointsMallItemModel
from resolvers.context import Context
from schema.catalog.types import Sku
from schema.core.common import Long, UserError
from schema.core.node import Loaded
from schema.core.personal import not_personal, personal
from schema.members.types import MemberAttributeFilterInput
from schema.orders.types import Order, PaymentRequest
from schema.org.types import Store

# The Python enums as GraphQL enums (registered once, here); annotations name the Python enums themselves.
strawberry.enum(CampaignKind, name="CampaignKind")


strawberry.enum(CampaignStatus, name="CampaignStatus")


strawberry.enum(CouponKind, name="CouponKind")


strawberry.enum(CouponTrigger, name="CouponTrigger")


strawberry.enum(CouponSource, name="CouponSource")


strawberry.enum(MemberCouponStatus, name="MemberCouponStatus")


strawberry.enum(GroupBuyStatus, name="GroupBuyStatus")


@strawberry.type
class FullReductionTier:
    threshold: int = strawberry.field(description="fen")
    off: int = strawberry.field(description="fen")


@strawberry.type
class CampaignItem:
    price: int | None = strawberry.field(description="The campaign price, fen")
    percent: int | None = strawberry.field(description="Or: pay this percentage of the store price")
    quota: int | None = strawberry.field(description="Flash sale: units at this price")
    sold: int
    per_member_limit: int | None
    sku_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, m: CampaignItemModel) -> Self:
        return cls(
            price=m.price,
            percent=m.percent,
            quota=m.quota,
            sold=m.sold,
            per_member_limit=m.per_member_limit,
            sku_id=m.sku_id,
        )

    @strawberry.field
    async def sku(self, info: strawberry.Info[Context, None]) -> Sku | None:
        return await Sku.load(info.context, self.sku_id)


@strawberry.type
class Campaign(Loaded, relay.Node):
    id: relay.NodeID[int]
    kind: CampaignKind
    name: str
    status: CampaignStatus
    starts_at: datetime
    ends_at: datetime
    local: bool = strawberry.field(description="A store's own campaign (else HQ's)")
    tiers: list[FullReductionTier]
    group_size: int | None
    group_minutes: int | None
    reward_points: int | None
    pk: strawberry.Private[int]
    store_ids: strawberry.Private[list[int] | None]

    @classmethod
    def from_model(cls, m: CampaignModel) -> Self:
        rules: dict[str, Any] = m.rules or {}
        return cls(
            id=m.id,
            kind=m.kind,
            name=m.name,
            status=m.status,
            starts_at=m.starts_at,
            ends_at=m.ends_at,
            local=m.owner_store_id is not None,
            tiers=[FullReductionTier(threshold=t["threshold"], off=t["off"]) for t in rules.get("tiers", [])],
            group_size=rules.get("group_size"),
            group_minutes=rules.get("group_minutes"),
            reward_points=rules.get("reward_points"),
            pk=m.id,
            store_ids=m.store_ids,
        )

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        """node(id): through a scoped loader (see resolvers/loaders/)."""
        m = await ctx.loaders.campaign_node.load(pk)
        return cls.from_model(m) if m else None

    @strawberry.field
    async def items(self, info: strawberry.Info[Context, None]) -> list[CampaignItem]:
        return [CampaignItem.from_model(x) for x in await info.context.loaders.campaign_items_by_campaign.load(self.pk)]

    @strawberry.field(description="The stores it runs in; null means every store")
    async def stores(self, info: strawberry.Info[Context, None]) -> list[Store] | None:
        if self.store_ids is None:
            return None
        found = [await Store.load(info.context, s) for s in self.store_ids]
        return [s for s in found if s is not None]


@strawberry.type
class CouponTemplate(Loaded, relay.Node):
    id: relay.NodeID[int]
    name: str
    kind: CouponKind
    threshold: int
    amount_off: int
    percent: int
    cap: int | None
    valid_from: datetime
    valid_until: datetime
    valid_days: int | None
    total_quantity: int | None
    issued: int
    per_member_limit: int
    stackable: bool
    claimable: bool
    trigger: CouponTrigger
    status: CampaignStatus
    free_sku_id: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, m: CouponTemplateModel) -> Self:
        return cls(
            id=m.id,
            name=m.name,
            kind=m.kind,
            threshold=m.threshold,
            amount_off=m.amount_off,
            percent=m.percent,
            cap=m.cap,
            valid_from=m.valid_from,
            valid_until=m.valid_until,
            valid_days=m.valid_days,
            total_quantity=m.total_quantity,
            issued=m.issued,
            per_member_limit=m.per_member_limit,
            stackable=m.stackable,
            claimable=m.claimable,
            trigger=m.trigger,
            status=m.status,
            free_sku_id=m.free_sku_id,
        )

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        """node(id): through a scoped loader (see resolvers/loaders/)."""
        m = await ctx.loaders.coupon_template_node.load(pk)
        return cls.from_model(m) if m else None

    @strawberry.field
    async def free_sku(self, info: strawberry.Info[Context, None]) -> Sku | None:
        return await Sku.load(info.context, self.free_sku_id) if self.free_sku_id else None


@strawberry.type
class MemberCoupon(Loaded, relay.Node):
    id: relay.NodeID[int]
    status: MemberCouponStatus
    source: CouponSource
    valid_from: datetime
    valid_until: datetime
    used_at: datetime | None
    template_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, m: MemberCouponModel) -> Self:
        return cls(
            id=m.id,
            status=m.status,
            source=m.source,
            valid_from=m.valid_from,
            valid_until=m.valid_until,
            used_at=m.used_at,
            template_id=m.template_id,
        )

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        """node(id): through a scoped loader (see resolvers/loaders/)."""
        m = await ctx.loaders.member_coupon_node.load(pk)
        return cls.from_model(m) if m else None

    @strawberry.field
    async def template(self, info: strawberry.Info[Context, None]) -> CouponTemplate | None:
        m = await info.context.loaders.coupon_template_by_id.load(self.template_id)
        return CouponTemplate.from_model(m) if m else None


@strawberry.type
class GroupBuy:
    share_code: str
    size: int
    joined: int
    paid: int
    status: GroupBuyStatus
    expires_at: datetime
    completed_at: datetime | None
    sku_id: strawberry.Private[int]
    store_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, m: GroupBuyModel) -> Self:
        return cls(
            share_code=m.share_code,
            size=m.size,
            joined=m.joined,
            paid=m.paid,
            status=m.status,
            expires_at=m.expires_at,
            completed_at=m.completed_at,
            sku_id=m.sku_id,
            store_id=m.store_id,
        )

    @strawberry.field
    async def sku(self, info: strawberry.Info[Context, None]) -> Sku | None:
        return await Sku.load(info.context, self.sku_id)

    @strawberry.field
    async def store(self, info: strawberry.Info[Context, None]) -> Store | None:
        return await Store.load(info.context, self.store_id)


@strawberry.type
class PointsMallItem(Loaded, relay.Node):
    id: relay.NodeID[int]
    name: str
    points_cost: int
    stock: int
    redeemed: int
    sku_id: strawberry.Private[int | None]
    template_id: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, m: PointsMallItemModel) -> Self:
        return cls(
            id=m.id,
            name=m.name,
            points_cost=m.points_cost,
            stock=m.stock,
            redeemed=m.redeemed,
            sku_id=m.sku_id,
            template_id=m.coupon_template_id,
        )

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        """node(id): through a scoped loader (see resolvers/loaders/)."""
        m = await ctx.loaders.points_mall_item_node.load(pk)
        return cls.from_model(m) if m else None

    @strawberry.field
    async def sku(self, info: strawberry.Info[Context, None]) -> Sku | None:
        return await Sku.load(info.context, self.sku_id) if self.sku_id else None

    @strawberry.field
    async def coupon(self, info: strawberry.Info[Context, None]) -> CouponTemplate | None:
        m = await info.context.loaders.coupon_template_by_id.load(self.template_id) if self.template_id else None
        return CouponTemplate.from_model(m) if m else None


@strawberry.type(description="A campaign's or coupon's effect in one store (store null: overall).")
class CampaignEffect:
    orders: int
    sales: Long = strawberry.field(description="Goods sold in those orders after discounts, fen")
    discount: Long = strawberry.field(description="What the campaign or coupon gave away, fen")
    members: int = strawberry.field(description="Members reached")
    issued: int | None = strawberry.field(description="Coupons: given out (overall row)")
    claimed: int | None = strawberry.field(description="Coupons: claimed by members themselves (overall row)")
    redeemed: int | None = strawberry.field(description="Coupons: used")
    store_id: strawberry.Private[int | None]

    @strawberry.field
    async def store(self, info: strawberry.Info[Context, None]) -> Store | None:
        return await Store.load(info.context, self.store_id) if self.store_id is not None else None


@strawberry.input
class CampaignItemInput:
    sku_id: strawberry.ID
    price: int | None = None
    percent: int | None = None
    quota: int | None = None
    per_member_limit: int | None = None


@strawberry.input
class TierInput:
    threshold: int
    off: int


@strawberry.input
class CreateCampaignInput:
    kind: CampaignKind
    name: str = not_personal()
    starts_at: datetime
    ends_at: datetime
    store_ids: list[strawberry.ID] | None = strawberry.field(default=None, description="Leave out for every store")
    items: list[CampaignItemInput] = strawberry.field(default_factory=list)
    tiers: list[TierInput] = strawberry.field(default_factory=list)
    sku_ids: list[strawberry.ID] | None = strawberry.field(default=None, description="Full reduction: only these")
    category_ids: list[strawberry.ID] | None = None
    group_size: int | None = None
    group_minutes: int | None = None
    reward_points: int | None = None
    reward_coupon_template_id: strawberry.ID | None = None


@strawberry.input
class IdInput:
    id: strawberry.ID


@strawberry.type
class CampaignPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    campaign: Campaign | None = None


@strawberry.input
class CreateCouponTemplateInput:
    name: str = not_personal()
    kind: CouponKind
    valid_from: datetime
    valid_until: datetime
    threshold: int = 0
    amount_off: int = 0
    percent: int = 100
    cap: int | None = None
    free_sku_id: strawberry.ID | None = None
    store_ids: list[strawberry.ID] | None = None
    category_ids: list[strawberry.ID] | None = None
    sku_ids: list[strawberry.ID] | None = None
    valid_days: int | None = strawberry.field(default=None, description="Valid this many days from claiming")
    total_quantity: int | None = None
    per_member_limit: int = 1
    stackable: bool = strawberry.field(default=True, description="May combine with promotions")
    claimable: bool = True
    trigger: CouponTrigger = CouponTrigger.NONE


@strawberry.type
class CouponTemplatePayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    template: CouponTemplate | None = None


@strawberry.input
class ClaimCouponInput:
    template_id: strawberry.ID
    idempotency_key: str = strawberry.field(description="The same key again returns the coupon first claimed")


@strawberry.type
class MemberCouponPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    coupon: MemberCoupon | None = None


@strawberry.input
class IssueCouponsInput:
    template_id: strawberry.ID
    idempotency_key: str = strawberry.field(description="The same key again issues nothing more")
    segment: str | None = None
    level_id: strawberry.ID | None = None
    member_ids: list[strawberry.ID] | None = None
    attributes: list[MemberAttributeFilterInput] | None = strawberry.field(
        default=None, description="Members whose attribute values match all of these (肤质 油性)"
    )


@strawberry.type
class IssueCouponsPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    issued: int = 0


@strawberry.input
class OpenGroupBuyInput:
    campaign_id: strawberry.ID
    store_id: strawberry.ID
    sku_id: strawberry.ID
    idempotency_key: str


@strawberry.input
class JoinGroupBuyInput:
    share_code: str = not_personal()
    idempotency_key: str


@strawberry.type
class GroupBuyPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    group: GroupBuy | None = None
    order: Order | None = None
    payment: PaymentRequest | None = None


@strawberry.input
class AcceptReferralInput:
    code: str = personal()


@strawberry.type
class AcceptReferralPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    accepted: bool = False


@strawberry.input
class CreatePointsMallItemInput:
    name: str = not_personal()
    points_cost: int
    stock: int
    sku_id: strawberry.ID | None = None
    coupon_template_id: strawberry.ID | None = None


@strawberry.type
class PointsMallItemPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    item: PointsMallItem | None = None


@strawberry.input
class ExchangePointsInput:
    item_id: strawberry.ID
    idempotency_key: str
    store_id: strawberry.ID | None = strawberry.field(default=None, description="Where to pick an item up")


@strawberry.type
class ExchangePointsPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    coupon: MemberCoupon | None = None
    order: Order | None = None

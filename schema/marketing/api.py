"""Marketing root fields for all three front ends: campaigns, coupons, group buys, referral, the points mall."""

from __future__ import annotations

import strawberry

from models import (
    CampaignKind,
    CampaignStatus,
    CouponKind,
    CouponTrigger,
)
from resolvers import Perm
from resolvers import marketing as marketing_resolvers
from resolvers.context import Context
from resolvers.marketing import Audience, ItemSpec, NewCampaign, NewTemplate
from schema.core.common import Connection, decode_id, decode_optional_id
from schema.core.permissions import IsMember, IsStaff, only, requires
from schema.core.transaction import MutationTransaction
from schema.marketing.types import (
    AcceptReferralInput,
    AcceptReferralPayload,
    Campaign,
    CampaignEffect,
    CampaignPayload,
    ClaimCouponInput,
    CouponTemplate,
    CouponTemplatePayload,
    CreateCampaignInput,
    CreateCouponTemplateInput,
    CreatePointsMallItemInput,
    ExchangePointsInput,
    ExchangePointsPayload,
    GroupBuy,
    GroupBuyPayload,
    IdInput,
    IssueCouponsInput,
    IssueCouponsPayload,
    JoinGroupBuyInput,
    MemberCoupon,
    MemberCouponPayload,
    OpenGroupBuyInput,
    PointsMallItem,
    PointsMallItemPayload,
)
from schema.members.types import attribute_filters
from schema.orders.api import payment_request
from schema.orders.types import Order


def _ids(values: list[strawberry.ID] | None, type_name: str, field: str) -> list[int] | None:
    return None if values is None else [decode_id(v, type_name, f"{field}[{i}]") for i, v in enumerate(values)]


@strawberry.type
class MarketingQuery:
    @strawberry.field(
        extensions=requires(Perm.MARKETING_MANAGE), description="HQ: every campaign; a store: HQ's and its own"
    )
    async def campaigns(
        self,
        info: strawberry.Info[Context, None],
        status: CampaignStatus | None = None,
        kind: CampaignKind | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[Campaign]:
        page = await marketing_resolvers.campaigns(
            info.context,
            status=CampaignStatus(status) if status else None,
            kind=CampaignKind(kind) if kind else None,
            first=first,
            after=after,
        )
        return Connection[Campaign].of(page, Campaign.from_model)

    @strawberry.field(description="Promotions running in a store now (public).")
    async def running_campaigns(self, info: strawberry.Info[Context, None], store_id: strawberry.ID) -> list[Campaign]:
        rows = await marketing_resolvers.running_campaigns(info.context, decode_id(store_id, "Store", "storeId"))
        return [Campaign.from_model(c) for c in rows]

    @strawberry.field(extensions=requires(Perm.MARKETING_MANAGE))
    async def coupon_templates(
        self, info: strawberry.Info[Context, None], first: int | None = 20, after: str | None = None
    ) -> Connection[CouponTemplate]:
        page = await marketing_resolvers.coupon_templates(info.context, first=first, after=after)
        return Connection[CouponTemplate].of(page, CouponTemplate.from_model)

    @strawberry.field(description="Coupons members may claim now (in a store, if given).")
    async def claimable_coupons(
        self, info: strawberry.Info[Context, None], store_id: strawberry.ID | None = None
    ) -> list[CouponTemplate]:
        rows = await marketing_resolvers.claimable_coupons(
            info.context, decode_optional_id(store_id, "Store", "storeId")
        )
        return [CouponTemplate.from_model(t) for t in rows]

    @strawberry.field(extensions=only(IsMember()))
    async def my_coupons(
        self,
        info: strawberry.Info[Context, None],
        usable_only: bool = True,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[MemberCoupon]:
        page = await marketing_resolvers.my_coupons(info.context, usable_only=usable_only, first=first, after=after)
        return Connection[MemberCoupon].of(page, MemberCoupon.from_model)

    @strawberry.field(extensions=only(IsMember()), description="A group's progress, by its share code.")
    async def group_buy(self, info: strawberry.Info[Context, None], share_code: str) -> GroupBuy | None:
        group = await marketing_resolvers.group_buy(info.context, share_code)
        return GroupBuy.from_model(group) if group else None

    @strawberry.field(description="积分商城: what points can buy.")
    async def points_mall(self, info: strawberry.Info[Context, None]) -> list[PointsMallItem]:
        return [PointsMallItem.from_model(x) for x in await marketing_resolvers.points_mall(info.context)]

    @strawberry.field(extensions=only(IsStaff()), description="Per store and overall; a store sees itself.")
    async def campaign_effect(
        self,
        info: strawberry.Info[Context, None],
        campaign_id: strawberry.ID | None = None,
        coupon_template_id: strawberry.ID | None = None,
    ) -> list[CampaignEffect]:
        rows = await marketing_resolvers.effect(
            info.context,
            campaign_id=decode_optional_id(campaign_id, "Campaign", "campaignId"),
            coupon_template_id=decode_optional_id(coupon_template_id, "CouponTemplate", "couponTemplateId"),
        )
        return [
            CampaignEffect(
                orders=r["orders"],
                sales=r["sales"],
                discount=r["discount"],
                members=r["members"],
                issued=r.get("issued"),
                claimed=r.get("claimed"),
                redeemed=r.get("redeemed"),
                store_id=r["store_id"],
            )
            for r in rows
        ]

    @strawberry.field(extensions=[*only(IsMember())], description="全民推广: the member's own share code.")
    async def my_share_code(self, info: strawberry.Info[Context, None]) -> str:
        return await marketing_resolvers.my_share_code(info.context)


@strawberry.type
class MarketingMutation:
    @strawberry.mutation(
        extensions=[*requires(Perm.MARKETING_MANAGE), MutationTransaction()],
        description="HQ: any kind, for chosen stores; a store manager: its own store, kinds and depth HQ allows.",
    )
    async def create_campaign(
        self, info: strawberry.Info[Context, None], input: CreateCampaignInput
    ) -> CampaignPayload:
        ctx = info.context
        spec = NewCampaign(
            kind=CampaignKind(input.kind),
            name=input.name,
            starts_at=input.starts_at,
            ends_at=input.ends_at,
            store_ids=_ids(input.store_ids, "Store", "storeIds"),
            items=[
                ItemSpec(
                    decode_id(i.sku_id, "Sku", f"items[{n}].skuId"), i.price, i.percent, i.quota, i.per_member_limit
                )
                for n, i in enumerate(input.items)
            ],
            tiers=[(t.threshold, t.off) for t in input.tiers],
            sku_ids=_ids(input.sku_ids, "Sku", "skuIds"),
            category_ids=_ids(input.category_ids, "Category", "categoryIds"),
            group_size=input.group_size,
            group_minutes=input.group_minutes,
            reward_points=input.reward_points,
            reward_coupon_template_id=decode_optional_id(
                input.reward_coupon_template_id, "CouponTemplate", "rewardCouponTemplateId"
            ),
        )
        campaign = await marketing_resolvers.create_campaign(ctx, spec)
        return CampaignPayload(campaign=Campaign.from_model(campaign))

    @strawberry.mutation(extensions=[*requires(Perm.MARKETING_MANAGE), MutationTransaction()])
    async def end_campaign(self, info: strawberry.Info[Context, None], input: IdInput) -> CampaignPayload:
        campaign = await marketing_resolvers.end_campaign(info.context, decode_id(input.id, "Campaign"))
        return CampaignPayload(campaign=Campaign.from_model(campaign))

    @strawberry.mutation(extensions=[*requires(Perm.MARKETING_MANAGE), MutationTransaction()])
    async def create_coupon_template(
        self, info: strawberry.Info[Context, None], input: CreateCouponTemplateInput
    ) -> CouponTemplatePayload:
        ctx = info.context
        spec = NewTemplate(
            name=input.name,
            kind=CouponKind(input.kind),
            valid_from=input.valid_from,
            valid_until=input.valid_until,
            threshold=input.threshold,
            amount_off=input.amount_off,
            percent=input.percent,
            cap=input.cap,
            free_sku_id=decode_optional_id(input.free_sku_id, "Sku", "freeSkuId"),
            store_ids=_ids(input.store_ids, "Store", "storeIds"),
            category_ids=_ids(input.category_ids, "Category", "categoryIds"),
            sku_ids=_ids(input.sku_ids, "Sku", "skuIds"),
            valid_days=input.valid_days,
            total_quantity=input.total_quantity,
            per_member_limit=input.per_member_limit,
            stackable=input.stackable,
            claimable=input.claimable,
            trigger=CouponTrigger(input.trigger),
        )
        template = await marketing_resolvers.create_coupon_template(ctx, spec)
        return CouponTemplatePayload(template=CouponTemplate.from_model(template))

    @strawberry.mutation(extensions=[*requires(Perm.MARKETING_MANAGE), MutationTransaction()])
    async def end_coupon_template(self, info: strawberry.Info[Context, None], input: IdInput) -> CouponTemplatePayload:
        template = await marketing_resolvers.end_coupon_template(info.context, decode_id(input.id, "CouponTemplate"))
        return CouponTemplatePayload(template=CouponTemplate.from_model(template))

    @strawberry.mutation(extensions=[*only(IsMember()), MutationTransaction()], description="领券")
    async def claim_coupon(self, info: strawberry.Info[Context, None], input: ClaimCouponInput) -> MemberCouponPayload:
        coupon = await marketing_resolvers.claim_coupon(
            info.context, decode_id(input.template_id, "CouponTemplate", "templateId"), input.idempotency_key
        )
        return MemberCouponPayload(coupon=MemberCoupon.from_model(coupon))

    @strawberry.mutation(
        extensions=[*requires(Perm.MARKETING_MANAGE), MutationTransaction()],
        description="HQ: one coupon each to a segment, a level or listed members, in one batch.",
    )
    async def issue_coupons(
        self, info: strawberry.Info[Context, None], input: IssueCouponsInput
    ) -> IssueCouponsPayload:
        audience = Audience(
            segment=input.segment,
            level_id=decode_optional_id(input.level_id, "MemberLevel", "levelId"),
            member_ids=_ids(input.member_ids, "Member", "memberIds"),
            attributes=attribute_filters(input.attributes),
        )
        count = await marketing_resolvers.issue_coupons(
            info.context, decode_id(input.template_id, "CouponTemplate", "templateId"), audience, input.idempotency_key
        )
        return IssueCouponsPayload(issued=count)

    @strawberry.mutation(
        extensions=[*only(IsMember()), MutationTransaction()], description="开团: open a group and order"
    )
    async def open_group_buy(self, info: strawberry.Info[Context, None], input: OpenGroupBuyInput) -> GroupBuyPayload:
        ctx = info.context
        store_id = decode_id(input.store_id, "Store", "storeId")
        joined = await marketing_resolvers.open_group_buy(
            ctx,
            campaign_id=decode_id(input.campaign_id, "Campaign", "campaignId"),
            store_id=store_id,
            sku_id=decode_id(input.sku_id, "Sku", "skuId"),
            key=input.idempotency_key,
        )
        return GroupBuyPayload(
            group=GroupBuy.from_model(joined.group),
            order=Order.from_model(joined.placed.order),
            payment=payment_request(ctx, joined.placed.prepay),
        )

    @strawberry.mutation(extensions=[*only(IsMember()), MutationTransaction()], description="参团 by share code")
    async def join_group_buy(self, info: strawberry.Info[Context, None], input: JoinGroupBuyInput) -> GroupBuyPayload:
        ctx = info.context
        joined = await marketing_resolvers.join_group_buy(ctx, share_code=input.share_code, key=input.idempotency_key)
        return GroupBuyPayload(
            group=GroupBuy.from_model(joined.group),
            order=Order.from_model(joined.placed.order),
            payment=payment_request(ctx, joined.placed.prepay),
        )

    @strawberry.mutation(extensions=[*only(IsMember()), MutationTransaction()], description="A new member's referrer")
    async def accept_referral(
        self, info: strawberry.Info[Context, None], input: AcceptReferralInput
    ) -> AcceptReferralPayload:
        await marketing_resolvers.accept_referral(info.context, input.code)
        return AcceptReferralPayload(accepted=True)

    @strawberry.mutation(extensions=[*requires(Perm.MARKETING_MANAGE), MutationTransaction()])
    async def create_points_mall_item(
        self, info: strawberry.Info[Context, None], input: CreatePointsMallItemInput
    ) -> PointsMallItemPayload:
        item = await marketing_resolvers.create_points_mall_item(
            info.context,
            name=input.name,
            points_cost=input.points_cost,
            stock_count=input.stock,
            sku_id=decode_optional_id(input.sku_id, "Sku", "skuId"),
            coupon_template_id=decode_optional_id(input.coupon_template_id, "CouponTemplate", "couponTemplateId"),
        )
        return PointsMallItemPayload(item=PointsMallItem.from_model(item))

    @strawberry.mutation(extensions=[*only(IsMember()), MutationTransaction()], description="积分兑换")
    async def exchange_points(
        self, info: strawberry.Info[Context, None], input: ExchangePointsInput
    ) -> ExchangePointsPayload:
        done = await marketing_resolvers.exchange_points(
            info.context,
            item_id=decode_id(input.item_id, "PointsMallItem", "itemId"),
            store_id=decode_optional_id(input.store_id, "Store", "storeId"),
            key=input.idempotency_key,
        )
        return ExchangePointsPayload(
            coupon=MemberCoupon.from_model(done.coupon) if done.coupon else None,
            order=Order.from_model(done.order) if done.order else None,
        )

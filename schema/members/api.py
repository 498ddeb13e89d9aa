"""Member root fields: POS lookup and registration, HQ rules and search, the member's own data and ledgers."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from models import Gender, PaymentMethod
from resolvers import Perm
from resolvers import members as member_resolvers
from resolvers.context import Context
from resolvers.members import MemberFilter, ProfileChanges
from resolvers.orders import Tender
from schema.core.common import Connection, decode_id, decode_optional_id
from schema.core.permissions import IsMember, RateLimit, only, requires
from schema.core.transaction import MutationTransaction
from schema.members.types import (
    AdjustPointsInput,
    CreateMemberLevelInput,
    CreateMemberTagInput,
    CreateTopUpPlanInput,
    DeleteAccountPayload,
    IdentifyMemberInput,
    Member,
    MemberCode,
    MemberFilterInput,
    MemberIdInput,
    MemberLevel,
    MemberLevelPayload,
    MemberPayload,
    MemberTag,
    MemberTagPayload,
    PublicChainSettings,
    RegisterMemberInput,
    RevealPhonePayload,
    SetLevelPriceInput,
    SetMemberLevelInput,
    TagMembersInput,
    TopUpPlan,
    TopUpPlanPayload,
    TopUpStoredValueInput,
    UpdateMemberLevelInput,
    UpdateMyProfileInput,
    attribute_filters,
)


def _member(m: object) -> Member | None:
    return Member.from_model(m) if m is not None else None  # type: ignore[arg-type]


@strawberry.type
class MemberQuery:
    @strawberry.field(
        extensions=[
            *requires(Perm.MEMBER_READ),
            RateLimit("memberPhoneLookup", when=lambda args: bool(args.get("filter") and args["filter"].phone)),
        ],
        description="HQ: every member; a store manager: their store's members.",
    )
    async def members(
        self,
        info: strawberry.Info[Context, None],
        filter: MemberFilterInput | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[Member]:
        f = filter or MemberFilterInput()
        flt = MemberFilter(
            level_id=decode_optional_id(f.level_id, "MemberLevel", "levelId"),
            tag_id=decode_optional_id(f.tag_id, "MemberTag", "tagId"),
            segment=f.segment,
            store_id=decode_optional_id(f.store_id, "Store", "storeId"),
            last_visit_after=f.last_visit_after,
            last_visit_before=f.last_visit_before,
            min_spend=f.min_spend,
            max_spend=f.max_spend,
            phone=f.phone,
            name=f.name,
            attributes=attribute_filters(f.attributes),
        )
        page = await member_resolvers.search(info.context, flt, first=first, after=after)
        return Connection[Member].of(page, Member.from_model)

    @strawberry.field(description="The points and delivery rules the mini-program shows (public).")
    async def public_chain_settings(self, info: strawberry.Info[Context, None]) -> PublicChainSettings:
        rules = await info.context.loaders.settings.get()
        return PublicChainSettings(
            points_per_yuan=rules.points_per_yuan,
            point_value_fen=rules.point_value_fen,
            max_points_share_pct=rules.max_points_share_pct,
            birthday_multiplier_pct=rules.birthday_multiplier_pct,
            delivery_fee_fen=rules.delivery_fee_fen,
            free_delivery_over_fen=rules.free_delivery_over_fen,
            delivery_radius_km=rules.delivery_radius_km,
            unpaid_order_minutes=rules.unpaid_order_minutes,
        )

    @strawberry.field(description="The membership levels and what each gives.")
    async def member_levels(self, info: strawberry.Info[Context, None]) -> list[MemberLevel]:
        return [MemberLevel.from_model(m) for m in await member_resolvers.levels(info.context)]

    @strawberry.field(description="Top-up plans on offer (HQ also sees retired ones).")
    async def top_up_plans(self, info: strawberry.Info[Context, None]) -> list[TopUpPlan]:
        return [TopUpPlan.from_model(p) for p in await member_resolvers.plans(info.context)]

    @strawberry.field(extensions=requires(Perm.MEMBER_READ))
    async def member_tags(self, info: strawberry.Info[Context, None]) -> list[MemberTag]:
        return [MemberTag.from_model(t) for t in await member_resolvers.tags(info.context)]

    @strawberry.field(extensions=only(IsMember()), description="Everything the chain holds about me, to keep.")
    async def my_data_export(self, info: strawberry.Info[Context, None]) -> JSON:
        return await member_resolvers.my_data(info.context)  # type: ignore[return-value]

    @strawberry.field(extensions=only(IsMember()), description="My rotating member code for the POS to scan.")
    def my_member_code(self, info: strawberry.Info[Context, None]) -> MemberCode:
        code, expires = member_resolvers.member_code(info.context)
        return MemberCode(code=code, expires_at=expires)


@strawberry.type
class MemberMutation:
    @strawberry.mutation(
        extensions=[
            *requires(Perm.MEMBER_LOOKUP),
            RateLimit("identifyMember"),
            MutationTransaction(),
        ],
        description="POS: the member at the counter, by member code (then known to this store) or exact phone.",
    )
    async def identify_member(self, info: strawberry.Info[Context, None], input: IdentifyMemberInput) -> MemberPayload:
        found = await member_resolvers.identify(
            info.context,
            code=input.code,
            phone=input.phone,
            store_id=decode_optional_id(input.store_id, "Store", "storeId"),
        )
        return MemberPayload(member=_member(found))

    @strawberry.mutation(extensions=[*requires(Perm.MEMBER_LOOKUP), MutationTransaction()])
    async def register_member(self, info: strawberry.Info[Context, None], input: RegisterMemberInput) -> MemberPayload:
        member = await member_resolvers.register(
            info.context,
            phone=input.phone,
            name=input.name,
            store_id=decode_optional_id(input.store_id, "Store", "storeId"),
        )
        return MemberPayload(member=_member(member))

    @strawberry.mutation(extensions=[*only(IsMember()), MutationTransaction()])
    async def update_my_profile(
        self, info: strawberry.Info[Context, None], input: UpdateMyProfileInput
    ) -> MemberPayload:
        changes = ProfileChanges(
            name=input.name, birthday=input.birthday, gender=Gender(input.gender) if input.gender else None
        )
        return MemberPayload(member=_member(await member_resolvers.update_my_profile(info.context, changes)))

    @strawberry.mutation(
        extensions=[*requires(Perm.MEMBER_READ_PII), RateLimit("revealMemberPhone"), MutationTransaction()],
        description="The member's full phone number; every reveal is written to the audit log.",
    )
    async def reveal_member_phone(
        self, info: strawberry.Info[Context, None], input: MemberIdInput
    ) -> RevealPhonePayload:
        phone = await member_resolvers.reveal_phone(info.context, decode_id(input.member_id, "Member", "memberId"))
        return RevealPhonePayload(phone=phone)

    @strawberry.mutation(extensions=[*requires(Perm.MEMBER_MANAGE), MutationTransaction()])
    async def set_member_level(self, info: strawberry.Info[Context, None], input: SetMemberLevelInput) -> MemberPayload:
        member = await member_resolvers.set_member_level(
            info.context,
            member_id=decode_id(input.member_id, "Member", "memberId"),
            level_id=decode_id(input.level_id, "MemberLevel", "levelId"),
        )
        return MemberPayload(member=_member(member))

    @strawberry.mutation(extensions=[*requires(Perm.MEMBER_MANAGE), MutationTransaction()])
    async def create_member_level(
        self, info: strawberry.Info[Context, None], input: CreateMemberLevelInput
    ) -> MemberLevelPayload:
        level = await member_resolvers.create_level(
            info.context,
            name=input.name,
            spend_threshold=input.spend_threshold,
            discount_percent=input.discount_percent,
            points_multiplier_pct=input.points_multiplier_pct,
        )
        return MemberLevelPayload(level=MemberLevel.from_model(level))

    @strawberry.mutation(extensions=[*requires(Perm.MEMBER_MANAGE), MutationTransaction()])
    async def update_member_level(
        self, info: strawberry.Info[Context, None], input: UpdateMemberLevelInput
    ) -> MemberLevelPayload:
        level = await member_resolvers.update_level(
            info.context,
            level_id=decode_id(input.id, "MemberLevel"),
            name=input.name,
            discount_percent=input.discount_percent,
            points_multiplier_pct=input.points_multiplier_pct,
        )
        return MemberLevelPayload(level=MemberLevel.from_model(level))

    @strawberry.mutation(extensions=[*requires(Perm.MEMBER_MANAGE), MutationTransaction()])
    async def set_level_price(
        self, info: strawberry.Info[Context, None], input: SetLevelPriceInput
    ) -> MemberLevelPayload:
        level_id = decode_id(input.level_id, "MemberLevel", "levelId")
        await member_resolvers.set_level_price(
            info.context, level_id=level_id, sku_id=decode_id(input.sku_id, "Sku", "skuId"), price=input.price
        )
        return MemberLevelPayload(level=await MemberLevel.load(info.context, level_id))

    @strawberry.mutation(extensions=[*requires(Perm.MEMBER_MANAGE), MutationTransaction()])
    async def create_top_up_plan(
        self, info: strawberry.Info[Context, None], input: CreateTopUpPlanInput
    ) -> TopUpPlanPayload:
        plan = await member_resolvers.create_top_up_plan(
            info.context, name=input.name, pay_amount=input.pay_amount, bonus_amount=input.bonus_amount
        )
        return TopUpPlanPayload(plan=TopUpPlan.from_model(plan))

    @strawberry.mutation(
        extensions=[*requires(Perm.ORDER_CHECKOUT), MutationTransaction()],
        description="POS: a stored-value top-up paid at the counter; retrying with the same key credits once.",
    )
    async def top_up_stored_value(
        self, info: strawberry.Info[Context, None], input: TopUpStoredValueInput
    ) -> MemberPayload:
        member = await member_resolvers.top_up(
            info.context,
            member_id=decode_id(input.member_id, "Member", "memberId"),
            plan_id=decode_optional_id(input.plan_id, "TopUpPlan", "planId"),
            amount=input.amount,
            store_id=decode_optional_id(input.store_id, "Store", "storeId"),
            key=input.idempotency_key,
            tenders=[Tender(PaymentMethod(t.method), t.amount, t.reference) for t in input.tenders],
        )
        return MemberPayload(member=_member(member))

    @strawberry.mutation(extensions=[*requires(Perm.MEMBER_MANAGE), MutationTransaction()])
    async def adjust_points(self, info: strawberry.Info[Context, None], input: AdjustPointsInput) -> MemberPayload:
        member = await member_resolvers.adjust_points(
            info.context,
            member_id=decode_id(input.member_id, "Member", "memberId"),
            points_delta=input.points,
            note=input.note,
            key=input.idempotency_key,
        )
        return MemberPayload(member=_member(member))

    @strawberry.mutation(extensions=[*requires(Perm.MEMBER_MANAGE), MutationTransaction()])
    async def create_member_tag(
        self, info: strawberry.Info[Context, None], input: CreateMemberTagInput
    ) -> MemberTagPayload:
        tag = await member_resolvers.create_tag(info.context, input.name)
        return MemberTagPayload(tag=MemberTag.from_model(tag))

    @strawberry.mutation(extensions=[*requires(Perm.MEMBER_MANAGE), MutationTransaction()])
    async def tag_members(self, info: strawberry.Info[Context, None], input: TagMembersInput) -> MemberTagPayload:
        changed = await member_resolvers.tag_members(
            info.context,
            tag_id=decode_id(input.tag_id, "MemberTag", "tagId"),
            member_ids=[decode_id(m, "Member", "memberIds") for m in input.member_ids],
            add=input.add,
        )
        return MemberTagPayload(changed=changed)

    @strawberry.mutation(
        extensions=[*only(IsMember()), MutationTransaction()],
        description="Cancel or refund my open orders, erase my personal data and sign-ins; orders stay, anonymised.",
    )
    async def delete_my_account(self, info: strawberry.Info[Context, None]) -> DeleteAccountPayload:
        ctx = info.context
        await member_resolvers.delete_my_account(ctx)
        ctx.ip = None  # the deletion's own audit entry keeps no address of the member either
        return DeleteAccountPayload(deleted=True)

"""Member types: the member, their level, tags, stored value, member code."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Self

import strawberry
from strawberry import relay

from models import BalanceKind, Gender, PointsKind
from models import Member as MemberModel
from models import MemberLevel as MemberLevelModel
from models import MemberTag as MemberTagModel
from models import TopUpPlan as TopUpPlanModel
from resolvers import members as member_resolvers
from resolvers import profiles as profile_resolvers
from resolvers.context import Context
from resolvers.members import BalanceRow, PointsRow
from resolvers.profiles import AttributeFilter
from schema.core.common import Connection, UserError, decode_id
from schema.core.node import Loaded
from schema.core.personal import Sensitivity, not_personal, personal
from schema.org.types import Store

if TYPE_CHECKING:
    from schema.members.profiles import MemberAttributeValue, ViewedCategory
    from schema.orders.types import Order, TenderInput

# The Python enums as GraphQL enums (registered once, here); annotations name the Python enums themselves.
strawberry.enum(Gender, name="Gender")
strawberry.enum(PointsKind, name="PointsKind", description="Why points moved")
strawberry.enum(BalanceKind, name="StoredValueKind", description="Why stored value moved")
OrderRef = Annotated["Order", strawberry.lazy("schema.orders.api")]
AttributeValueRef = Annotated["MemberAttributeValue", strawberry.lazy("schema.members.profiles")]
ViewedCategoryRef = Annotated["ViewedCategory", strawberry.lazy("schema.members.profiles")]

# What a ledger row says when staff left no note: by its kind and what it refers to.
_REASONS = {
    (PointsKind.EARN, "order"): "Earned on an order",
    (PointsKind.REDEEM, "order"): "Paid part of an order",
    (PointsKind.REDEEM, "mall"): "Exchanged in the points mall",
    (PointsKind.REVERSAL, "order"): "Order refunded or cancelled",
    (PointsKind.EXPIRE, None): "Expired",
    (BalanceKind.TOP_UP, "counter_top_up"): "Topped up at the counter",
    (BalanceKind.TOP_UP, "online_top_up"): "Topped up online",
    (BalanceKind.SPEND, "order"): "Paid an order",
    (BalanceKind.REFUND, "order"): "Order refunded or cancelled",
}


def _reason(kind: PointsKind | BalanceKind, ref_type: str | None, note: str | None) -> str:
    return (
        note
        or _REASONS.get((kind, ref_type))
        or _REASONS.get((kind, None))
        or kind.value.replace("_", " ").capitalize()
    )


async def _order(info: strawberry.Info[Context, None], ref_type: str | None, ref_id: int | None) -> Order | None:
    if ref_type != "order" or ref_id is None:
        return None
    from schema.orders.types import Order

    return await Order.load(info.context, ref_id)


@strawberry.type
class _LedgerRow:
    """What every ledger row says besides its amounts: the order it belongs to and where it happened."""

    row: strawberry.Private[PointsRow | BalanceRow]

    @strawberry.field(description="The order it belongs to; null when none, or not yours to see")
    async def order(self, info: strawberry.Info[Context, None]) -> OrderRef | None:
        return await _order(info, self.row.entry.ref_type, self.row.entry.ref_id)

    @strawberry.field(description="Where it happened")
    async def store(self, info: strawberry.Info[Context, None]) -> Store | None:
        sid = self.row.entry.store_id
        return await Store.load(info.context, sid) if sid is not None else None


@strawberry.type(description="One row of the member's points history (积分明细), newest first.")
class PointsLedgerEntry(_LedgerRow):
    kind: PointsKind
    points: int = strawberry.field(description="Signed: earned positive, spent or expired negative")
    reason: str
    balance_after: int = strawberry.field(description="The member's points right after this row")
    at: datetime
    row: strawberry.Private[PointsRow]

    @classmethod
    def of(cls, row: PointsRow) -> Self:
        e = row.entry
        return cls(
            kind=e.kind,
            points=e.points,
            reason=_reason(e.kind, e.ref_type, e.note),
            balance_after=row.balance_after,
            at=e.created_at,
            row=row,
        )


@strawberry.type(description="One row of the member's stored-value history (余额明细), newest first.")
class StoredValueLedgerEntry(_LedgerRow):
    kind: BalanceKind
    principal: int = strawberry.field(description="Signed fen of paid-in money")
    bonus: int = strawberry.field(description="Signed fen of bonus")
    reason: str
    at: datetime
    row: strawberry.Private[BalanceRow]

    @classmethod
    def of(cls, row: BalanceRow) -> Self:
        e = row.entry
        return cls(
            kind=e.kind,
            principal=e.principal,
            bonus=e.bonus,
            reason=_reason(e.kind, e.ref_type, None),
            at=e.created_at,
            row=row,
        )

    @strawberry.field(description="Signed fen, principal and bonus together")
    def amount(self) -> int:
        return self.principal + self.bonus

    @strawberry.field(description="The member's stored value right after this row")
    def balance_after(self) -> StoredValue:
        return StoredValue(principal=self.row.principal_after, bonus=self.row.bonus_after)

    @strawberry.field(description="The store that took the money in (settlement clears between the two)")
    async def issuer(self, info: strawberry.Info[Context, None]) -> Store | None:
        sid = self.row.entry.issuer_store_id
        return await Store.load(info.context, sid) if sid is not None else None


@strawberry.type
class MemberLevel(Loaded, relay.Node):
    id: relay.NodeID[int]
    name: str
    spend_threshold: int = strawberry.field(description="Lifetime spend (fen) that reaches this level")
    discount_percent: int = strawberry.field(description="Members pay this percent of the store price")
    points_multiplier_pct: int

    @classmethod
    def from_model(cls, m: MemberLevelModel) -> Self:
        return cls(
            id=m.id,
            name=m.name,
            spend_threshold=m.spend_threshold,
            discount_percent=m.discount_percent,
            points_multiplier_pct=m.points_multiplier_pct,
        )

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        m = await ctx.loaders.member_level_by_id.load(pk)
        return cls.from_model(m) if m else None


@strawberry.type
class MemberTag(Loaded, relay.Node):
    id: relay.NodeID[int]
    name: str

    @classmethod
    def from_model(cls, m: MemberTagModel) -> Self:
        return cls(id=m.id, name=m.name)

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        for tag in await member_resolvers.tags_if_allowed(ctx):
            if tag.id == pk:
                return cls.from_model(tag)
        return None


@strawberry.type
class TopUpPlan(Loaded, relay.Node):
    id: relay.NodeID[int]
    name: str
    pay_amount: int = strawberry.field(description="fen")
    bonus_amount: int = strawberry.field(description="fen")
    active: bool

    @classmethod
    def from_model(cls, m: TopUpPlanModel) -> Self:
        return cls(id=m.id, name=m.name, pay_amount=m.pay_amount, bonus_amount=m.bonus_amount, active=m.active)

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        found = [p for p in await member_resolvers.plans(ctx) if p.id == pk]
        return cls.from_model(found[0]) if found else None


@strawberry.type
class StoredValue:
    principal: int = strawberry.field(description="Money the member paid in, fen")
    bonus: int = strawberry.field(description="Bonus from top-up plans, fen")

    @strawberry.field
    def total(self) -> int:
        return self.principal + self.bonus


@strawberry.type
class MemberCode:
    code: str = strawberry.field(description="Show as QR/barcode; the POS scans it. Valid for one minute.")
    expires_at: datetime


@strawberry.type
class Member(Loaded, relay.Node):
    id: relay.NodeID[int]
    name: str | None
    birthday: date | None
    gender: Gender
    joined_at: datetime
    segment: str | None = strawberry.field(description="RFM segment: NEW, VIP, LOYAL, REGULAR, AT_RISK, LOST")
    points_balance: int
    total_spend: int = strawberry.field(description="Lifetime spend, fen")
    visit_count: int
    last_visit_at: datetime | None
    deleted: bool
    model: strawberry.Private[MemberModel]

    @classmethod
    def from_model(cls, m: MemberModel) -> Self:
        return cls(
            id=m.id,
            name=m.name,
            birthday=m.birthday,
            gender=m.gender,
            joined_at=m.joined_at,
            segment=m.segment,
            points_balance=m.points_balance,
            total_spend=m.total_spend,
            visit_count=m.visit_count,
            last_visit_at=m.last_visit_at,
            deleted=m.deleted_at is not None,
            model=m,
        )

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        m = await ctx.loaders.member_by_id.load(pk)
        return cls.from_model(m) if m else None

    @strawberry.field(
        description="138****5678 for staff (revealMemberPhone shows it in full, audited); in full to the member."
    )
    def phone(self, info: strawberry.Info[Context, None]) -> str | None:
        return member_resolvers.phone(info.context, self.model)

    @strawberry.field
    def stored_value(self) -> StoredValue:
        return StoredValue(principal=self.model.balance_principal, bonus=self.model.balance_bonus)

    @strawberry.field
    async def level(self, info: strawberry.Info[Context, None]) -> MemberLevel | None:
        return await MemberLevel.load(info.context, self.model.level_id) if self.model.level_id else None

    @strawberry.field
    async def home_store(self, info: strawberry.Info[Context, None]) -> Store | None:
        home = self.model.home_store_id
        return await Store.load(info.context, home) if home is not None else None

    @strawberry.field
    async def tags(self, info: strawberry.Info[Context, None]) -> list[MemberTag]:
        return [MemberTag.from_model(t) for t in await info.context.loaders.tags_by_member.load(self.id)]

    @strawberry.field(description="The store where the member buys most often.")
    async def favourite_store(self, info: strawberry.Info[Context, None]) -> Store | None:
        stats = await info.context.loaders.member_store_stats.load(self.id)
        return await Store.load(info.context, stats.favourite_store_id) if stats.favourite_store_id else None

    @strawberry.field
    async def last_purchase_at(self, info: strawberry.Info[Context, None]) -> datetime | None:
        stats = await info.context.loaders.member_store_stats.load(self.id)
        last: datetime | None = stats.last_purchase_at
        return last

    @strawberry.field(
        description="The attributes HQ declared that this member has a value for; SENSITIVE ones masked to staff."
    )
    async def attributes(self, info: strawberry.Info[Context, None]) -> list[AttributeValueRef]:
        from schema.members.profiles import MemberAttributeValue

        return [MemberAttributeValue.of(v) for v in await profile_resolvers.values(info.context, self.id)]

    @strawberry.field(
        description="The categories the member looked at most in the mini-program, 90 days (staff with member.read)."
    )
    async def viewed_categories(self, info: strawberry.Info[Context, None]) -> list[ViewedCategoryRef]:
        from schema.members.profiles import ViewedCategory

        return [ViewedCategory.of(c) for c in await profile_resolvers.categories_viewed(info.context, self.id)]

    @strawberry.field(description="积分明细: points history, newest first (the member; staff with member.read).")
    async def points_ledger(
        self, info: strawberry.Info[Context, None], first: int | None = 20, after: str | None = None
    ) -> Connection[PointsLedgerEntry]:
        page = await member_resolvers.ledger_page(info.context, self.id, stored_value=False, first=first, after=after)
        return Connection[PointsLedgerEntry].of(page, PointsLedgerEntry.of)

    @strawberry.field(description="余额明细: stored-value history, newest first (the member; staff with member.read).")
    async def stored_value_ledger(
        self, info: strawberry.Info[Context, None], first: int | None = 20, after: str | None = None
    ) -> Connection[StoredValueLedgerEntry]:
        page = await member_resolvers.ledger_page(info.context, self.id, stored_value=True, first=first, after=after)
        return Connection[StoredValueLedgerEntry].of(page, StoredValueLedgerEntry.of)


@strawberry.input
class MemberFilterInput:
    level_id: strawberry.ID | None = None
    tag_id: strawberry.ID | None = None
    segment: str | None = None
    store_id: strawberry.ID | None = None
    last_visit_after: datetime | None = None
    last_visit_before: datetime | None = None
    min_spend: int | None = None
    max_spend: int | None = None
    phone: str | None = personal(Sensitivity.PHONE, default=None, description="Exact phone number")
    name: str | None = personal(default=None)
    attributes: list[MemberAttributeFilterInput] | None = strawberry.field(
        default=None, description="Members whose attribute values match all of these"
    )


@strawberry.input(description="An attribute's value: exactly (SENSITIVE ones too), or a range of a NUMBER or DATE.")
class MemberAttributeFilterInput:
    attribute_id: strawberry.ID
    equals: str | None = personal(default=None)
    at_least: str | None = personal(default=None)
    at_most: str | None = personal(default=None)


def attribute_filters(given: list[MemberAttributeFilterInput] | None) -> tuple[AttributeFilter, ...]:
    """The attribute filters of a member search or a coupon audience, ids decoded."""
    return tuple(
        AttributeFilter(decode_id(a.attribute_id, "MemberAttribute", "attributes"), a.equals, a.at_least, a.at_most)
        for a in given or ()
    )


@strawberry.input
class IdentifyMemberInput:
    code: str | None = personal(Sensitivity.SECRET, default=None, description="The member code the member shows")
    phone: str | None = personal(
        Sensitivity.PHONE, default=None, description="Exact phone of a member this store knows"
    )
    store_id: strawberry.ID | None = None


@strawberry.input
class RegisterMemberInput:
    phone: str = personal(Sensitivity.PHONE)
    name: str | None = personal(default=None)
    store_id: strawberry.ID | None = None


@strawberry.input
class UpdateMyProfileInput:
    name: str | None = personal(default=None)
    birthday: date | None = personal(default=None)
    gender: Gender | None = personal(default=None)


@strawberry.input
class MemberIdInput:
    member_id: strawberry.ID


@strawberry.input
class SetMemberLevelInput:
    member_id: strawberry.ID
    level_id: strawberry.ID


@strawberry.input
class CreateMemberLevelInput:
    name: str = not_personal()
    spend_threshold: int
    discount_percent: int = 100
    points_multiplier_pct: int = 100


@strawberry.input
class UpdateMemberLevelInput:
    id: strawberry.ID
    name: str | None = not_personal(default=None)
    discount_percent: int | None = None
    points_multiplier_pct: int | None = None


@strawberry.input
class SetLevelPriceInput:
    level_id: strawberry.ID
    sku_id: strawberry.ID
    price: int | None = strawberry.field(description="fen; null removes the level price")


@strawberry.input
class CreateTopUpPlanInput:
    name: str = not_personal()
    pay_amount: int
    bonus_amount: int = 0


@strawberry.input
class TopUpStoredValueInput:
    member_id: strawberry.ID
    idempotency_key: str
    tenders: list[Annotated[TenderInput, strawberry.lazy("schema.orders.types")]] = strawberry.field(
        description="How it was paid (cash, card, WeChat, Alipay): adds up to the plan's price or the amount"
    )
    plan_id: strawberry.ID | None = None
    amount: int | None = strawberry.field(default=None, description="fen, when no plan is used")
    store_id: strawberry.ID | None = None


@strawberry.input
class AdjustPointsInput:
    member_id: strawberry.ID
    points: int
    idempotency_key: str = strawberry.field(description="The same key again adjusts once")
    note: str = not_personal()


@strawberry.input
class CreateMemberTagInput:
    name: str = not_personal()


@strawberry.input
class TagMembersInput:
    tag_id: strawberry.ID
    member_ids: list[strawberry.ID]
    add: bool = True


@strawberry.type
class MemberPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    member: Member | None = None


@strawberry.type
class RevealPhonePayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    phone: str | None = None


@strawberry.type
class MemberLevelPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    level: MemberLevel | None = None


@strawberry.type
class TopUpPlanPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    plan: TopUpPlan | None = None


@strawberry.type
class MemberTagPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    tag: MemberTag | None = None
    changed: int = 0


@strawberry.type
class DeleteAccountPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    deleted: bool = False


@strawberry.type(description="The chain's rules as members see them (no sign-in needed); staff read chainSettings.")
class PublicChainSettings:
    points_per_yuan: int = strawberry.field(description="Points earned per whole yuan spent (times the level's rate)")
    point_value_fen: int = strawberry.field(description="What one point pays, in fen")
    max_points_share_pct: int = strawberry.field(description="The largest share of an order points may pay, percent")
    birthday_multiplier_pct: int = strawberry.field(description="Points on the member's birthday, percent of usual")
    delivery_fee_fen: int = strawberry.field(description="The delivery fee, fen")
    free_delivery_over_fen: int = strawberry.field(description="Goods worth this much deliver free (0: never)")
    delivery_radius_km: int = strawberry.field(description="How far from the store deliveries go (0: no delivery)")
    unpaid_order_minutes: int = strawberry.field(description="How long an unpaid order waits for payment")

"""Member attributes (自定义属性) and browsing history (浏览记录): types and root fields."""

from __future__ import annotations

from datetime import datetime
from typing import Self

import strawberry
from strawberry import relay

from models import AttributeKind, AttributeSensitivity
from models import MemberAttribute as MemberAttributeModel
from models import ProductView as ProductViewModel
from resolvers import Perm
from resolvers import profiles as profile_resolvers
from resolvers.context import Context
from resolvers.profiles import AttributeChanges, AttributeSpec, CategoryInterest, Shown
from schema.catalog.types import Category, Product
from schema.core.common import Connection, UserError, decode_id, decode_optional_id
from schema.core.node import Loaded
from schema.core.permissions import IsMember, RateLimit, only, requires
from schema.core.personal import not_personal, personal
from schema.core.transaction import MutationTransaction
from schema.members.types import Member, MemberPayload
from schema.org.types import Store

strawberry.enum(AttributeKind, name="MemberAttributeKind", description="What a member attribute's values are")
strawberry.enum(
    AttributeSensitivity,
    name="MemberAttributeSensitivity",
    description="PERSONAL: shown to staff in scope; SENSITIVE: encrypted, masked to staff, reveals audited",
)


@strawberry.type(description="An attribute HQ declares for members (肤质, 过敏); kind and sensitivity never change.")
class MemberAttribute(Loaded, relay.Node):
    id: relay.NodeID[int]
    code: str
    name: str
    kind: AttributeKind
    sensitivity: AttributeSensitivity
    choices: list[str] = strawberry.field(description="The allowed values of a CHOICE attribute")
    member_editable: bool = strawberry.field(description="Members may set their own value in the mini-program")
    active: bool

    @classmethod
    def from_model(cls, m: MemberAttributeModel) -> Self:
        return cls(
            id=m.id,
            code=m.code,
            name=m.name,
            kind=m.kind,
            sensitivity=m.sensitivity,
            choices=list(m.choices),
            member_editable=m.member_editable,
            active=m.active,
        )

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        m = await ctx.loaders.member_attribute_by_id.load(pk)
        return cls.from_model(m) if m else None


@strawberry.type(description="One of a member's attribute values, as the viewer may see it.")
class MemberAttributeValue:
    value: str | None = strawberry.field(
        description="The value; a SENSITIVE one masked for staff (revealMemberAttribute shows it, audited)"
    )
    masked: bool
    attribute_id: strawberry.Private[int]

    @classmethod
    def of(cls, shown: Shown) -> Self:
        return cls(value=shown.value, masked=shown.masked, attribute_id=shown.attribute_id)

    @strawberry.field
    async def attribute(self, info: strawberry.Info[Context, None]) -> MemberAttribute | None:
        return await MemberAttribute.load(info.context, self.attribute_id)


@strawberry.type(description="A category the member looked at in the mini-program over the last 90 days.")
class ViewedCategory:
    views: int
    last_viewed_at: datetime
    category_id: strawberry.Private[int]

    @classmethod
    def of(cls, c: CategoryInterest) -> Self:
        return cls(views=c.views, last_viewed_at=c.last_viewed_at, category_id=c.category_id)

    @strawberry.field
    async def category(self, info: strawberry.Info[Context, None]) -> Category | None:
        return await Category.load(info.context, self.category_id)


@strawberry.type(description="A product the member looked at (浏览记录), newest first.")
class ProductView:
    viewed_at: datetime
    product_id: strawberry.Private[int]
    store_id: strawberry.Private[int | None]

    @classmethod
    def of(cls, m: ProductViewModel) -> Self:
        return cls(viewed_at=m.viewed_at, product_id=m.product_id, store_id=m.store_id)

    @strawberry.field
    async def product(self, info: strawberry.Info[Context, None]) -> Product | None:
        return await Product.load(info.context, self.product_id)

    @strawberry.field(description="The store the member was browsing")
    async def store(self, info: strawberry.Info[Context, None]) -> Store | None:
        return await Store.load(info.context, self.store_id) if self.store_id is not None else None


@strawberry.input
class DefineMemberAttributeInput:
    code: str = not_personal(description="Stable key, letters, digits and underscores (skin_type)")
    name: str = not_personal()
    kind: AttributeKind
    sensitivity: AttributeSensitivity = AttributeSensitivity.PERSONAL
    choices: list[str] = strawberry.field(default_factory=list, description="For CHOICE: the allowed values")
    member_editable: bool = False


@strawberry.input
class UpdateMemberAttributeInput:
    id: strawberry.ID
    name: str | None = not_personal(default=None)
    choices: list[str] | None = None
    member_editable: bool | None = None
    active: bool | None = strawberry.field(default=None, description="false retires it (values are kept)")


@strawberry.input
class AttributeValueInput:
    attribute_id: strawberry.ID
    value: str | None = personal(
        default=None, description="TEXT, a CHOICE, a NUMBER (3.5) or a DATE (YYYY-MM-DD); null clears it"
    )


@strawberry.input
class SetMemberAttributesInput:
    member_id: strawberry.ID
    values: list[AttributeValueInput]


@strawberry.input
class SetMyAttributesInput:
    values: list[AttributeValueInput]


@strawberry.input
class RevealMemberAttributeInput:
    member_id: strawberry.ID
    attribute_id: strawberry.ID


@strawberry.input
class RecordProductViewsInput:
    product_ids: list[strawberry.ID] = strawberry.field(description="1 to 50 products looked at just now")
    store_id: strawberry.ID | None = None


@strawberry.type
class MemberAttributePayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    attribute: MemberAttribute | None = None


@strawberry.type
class RevealAttributePayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    value: str | None = None


@strawberry.type
class RecordProductViewsPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    recorded: int = strawberry.field(default=0, description="Views that were new (one per product per minute)")


@strawberry.type
class ClearBrowsingHistoryPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    cleared: int = 0


def _values(given: list[AttributeValueInput]) -> list[tuple[int, str | None]]:
    return [
        (decode_id(v.attribute_id, "MemberAttribute", f"values.{i}.attributeId"), v.value) for i, v in enumerate(given)
    ]


@strawberry.type
class ProfileQuery:
    @strawberry.field(extensions=only(), description="The member attributes HQ declared (HQ also sees retired ones).")
    async def member_attributes(self, info: strawberry.Info[Context, None]) -> list[MemberAttribute]:
        return [MemberAttribute.from_model(a) for a in await profile_resolvers.definitions(info.context)]

    @strawberry.field(extensions=only(IsMember()), description="浏览记录: the products I looked at, newest first.")
    async def my_browsing_history(
        self, info: strawberry.Info[Context, None], first: int | None = 20, after: str | None = None
    ) -> Connection[ProductView]:
        page = await profile_resolvers.history(info.context, first=first, after=after)
        return Connection[ProductView].of(page, ProductView.of)


@strawberry.type
class ProfileMutation:
    @strawberry.mutation(
        extensions=[*requires(Perm.MEMBER_MANAGE), MutationTransaction()],
        description="HQ declares a member attribute.",
    )
    async def define_member_attribute(
        self, info: strawberry.Info[Context, None], input: DefineMemberAttributeInput
    ) -> MemberAttributePayload:
        spec = AttributeSpec(
            code=input.code,
            name=input.name,
            kind=AttributeKind(input.kind),
            sensitivity=AttributeSensitivity(input.sensitivity),
            choices=input.choices,
            member_editable=input.member_editable,
        )
        return MemberAttributePayload(
            attribute=MemberAttribute.from_model(await profile_resolvers.define(info.context, spec))
        )

    @strawberry.mutation(
        extensions=[*requires(Perm.MEMBER_MANAGE), MutationTransaction()],
        description="HQ renames an attribute, changes its choices, who edits it, or retires it.",
    )
    async def update_member_attribute(
        self, info: strawberry.Info[Context, None], input: UpdateMemberAttributeInput
    ) -> MemberAttributePayload:
        changes = AttributeChanges(
            name=input.name, choices=input.choices, member_editable=input.member_editable, active=input.active
        )
        attribute = await profile_resolvers.update(info.context, decode_id(input.id, "MemberAttribute"), changes)
        return MemberAttributePayload(attribute=MemberAttribute.from_model(attribute))

    @strawberry.mutation(
        extensions=[*requires(Perm.MEMBER_ATTRIBUTES_EDIT), MutationTransaction()],
        description="Staff fill a member's attributes (null clears one): HQ any member, a store its own members.",
    )
    async def set_member_attributes(
        self, info: strawberry.Info[Context, None], input: SetMemberAttributesInput
    ) -> MemberPayload:
        member_id = decode_id(input.member_id, "Member", "memberId")
        member = await profile_resolvers.set_values(info.context, member_id, _values(input.values))
        return MemberPayload(member=Member.from_model(member))

    @strawberry.mutation(
        extensions=[*only(IsMember()), MutationTransaction()],
        description="I set my own attributes (only those HQ made member-editable).",
    )
    async def set_my_attributes(
        self, info: strawberry.Info[Context, None], input: SetMyAttributesInput
    ) -> MemberPayload:
        member = await profile_resolvers.set_my_values(info.context, _values(input.values))
        return MemberPayload(member=Member.from_model(member))

    @strawberry.mutation(
        extensions=[*requires(Perm.MEMBER_READ_PII), RateLimit("revealMemberAttribute"), MutationTransaction()],
        description="A sensitive attribute value in full; every reveal is written to the audit log (never the value).",
    )
    async def reveal_member_attribute(
        self, info: strawberry.Info[Context, None], input: RevealMemberAttributeInput
    ) -> RevealAttributePayload:
        value = await profile_resolvers.reveal(
            info.context,
            member_id=decode_id(input.member_id, "Member", "memberId"),
            attribute_id=decode_id(input.attribute_id, "MemberAttribute", "attributeId"),
        )
        return RevealAttributePayload(value=value)

    @strawberry.mutation(
        extensions=[*only(IsMember()), RateLimit("recordProductViews"), MutationTransaction()],
        description="The mini-program records product views in batches; one per product per minute is kept.",
    )
    async def record_product_views(
        self, info: strawberry.Info[Context, None], input: RecordProductViewsInput
    ) -> RecordProductViewsPayload:
        ids = [decode_id(p, "Product", "productIds") for p in input.product_ids]
        store_id = decode_optional_id(input.store_id, "Store", "storeId")
        return RecordProductViewsPayload(recorded=await profile_resolvers.record_views(info.context, ids, store_id))

    @strawberry.mutation(extensions=[*only(IsMember()), MutationTransaction()], description="Clear my 浏览记录.")
    async def clear_my_browsing_history(self, info: strawberry.Info[Context, None]) -> ClearBrowsingHistoryPayload:
        return ClearBrowsingHistoryPayload(cleared=await profile_resolvers.clear_history(info.context))

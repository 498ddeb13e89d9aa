"""Org types: stores, staff, roles and their inputs."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Self

import strawberry
from strawberry import relay

from models import Role as RoleModel
from models import RoleScope, StoreKind, StoreStatus
from models import Staff as StaffModel
from models import Store as StoreModel
from resolvers import Perm
from resolvers import catalog as catalog_resolvers
from resolvers import inventory as inventory_resolvers
from resolvers import org as org_resolvers
from resolvers.catalog import ListingFilter
from resolvers.context import Context
from schema.core.common import Connection, UserError, decode_optional_id
from schema.core.node import Loaded
from schema.core.permissions import requires
from schema.core.personal import Sensitivity, not_personal, personal

if TYPE_CHECKING:
    from schema.catalog.types import MenuCategory, MenuItem, StoreListing
    from schema.inventory.types import StockLevel

StoreListingRef = Annotated["StoreListing", strawberry.lazy("schema.catalog.types")]
StockLevelRef = Annotated["StockLevel", strawberry.lazy("schema.inventory.types")]
MenuItemRef = Annotated["MenuItem", strawberry.lazy("schema.catalog.types")]
MenuCategoryRef = Annotated["MenuCategory", strawberry.lazy("schema.catalog.types")]

# The Python enums as GraphQL enums (registered once, here); annotations name the Python enums themselves.
strawberry.enum(StoreStatus, name="StoreStatus")
strawberry.enum(StoreKind, name="StoreKind")
strawberry.enum(RoleScope, name="RoleScope")


@strawberry.type
class OpeningHours:
    weekday: int = strawberry.field(description="0 = Monday ... 6 = Sunday, in the store's time zone")
    opens: str = strawberry.field(description="HH:MM")
    closes: str = strawberry.field(description="HH:MM; earlier than opens means past midnight")


@strawberry.input
class OpeningHoursInput:
    weekday: int
    opens: str
    closes: str

    def as_dict(self) -> dict[str, Any]:
        return {"weekday": self.weekday, "opens": self.opens, "closes": self.closes}


@strawberry.type
class Role(Loaded, relay.Node):
    id: relay.NodeID[int]
    code: str
    name: str
    scope: RoleScope
    builtin: bool
    permissions: list[str]

    @classmethod
    def from_model(cls, m: RoleModel) -> Self:
        return cls(id=m.id, code=m.code, name=m.name, scope=m.scope, builtin=m.builtin, permissions=list(m.permissions))

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        m = await ctx.loaders.role_by_id.load(pk)
        return cls.from_model(m) if m else None


@strawberry.type
class Staff(Loaded, relay.Node):
    id: relay.NodeID[int]
    username: str
    display_name: str
    active: bool
    created_at: datetime
    disabled_at: datetime | None
    role_id: strawberry.Private[int]
    store_id: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, m: StaffModel) -> Self:
        return cls(
            id=m.id,
            username=m.username,
            display_name=m.display_name,
            active=m.active,
            created_at=m.created_at,
            disabled_at=m.disabled_at,
            role_id=m.role_id,
            store_id=m.store_id,
        )

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        m = await ctx.loaders.staff_by_id.load(pk)
        return cls.from_model(m) if m else None

    @strawberry.field
    async def role(self, info: strawberry.Info[Context, None]) -> Role | None:
        return await Role.load(info.context, self.role_id)

    @strawberry.field(description="The staff member's store; null for HQ staff.")
    async def store(self, info: strawberry.Info[Context, None]) -> Store | None:
        return await Store.load(info.context, self.store_id) if self.store_id is not None else None


@strawberry.type
class Store(Loaded, relay.Node):
    id: relay.NodeID[int]
    code: str
    name: str
    city: str
    address: str
    phone: str | None
    lat: float
    lng: float
    timezone: str
    status: StoreStatus
    kind: StoreKind = strawberry.field(description="STORE sells; WAREHOUSE holds stock and ships replenishment")
    hours: list[OpeningHours]
    created_at: datetime
    distance_km: float | None = strawberry.field(
        default=None, description="Distance from the point asked for; set by nearbyStores only."
    )
    model: strawberry.Private[StoreModel | None] = None

    @classmethod
    def from_model(cls, m: StoreModel, distance_km: float | None = None) -> Self:
        return cls(
            id=m.id,
            code=m.code,
            name=m.name,
            city=m.city,
            address=m.address,
            phone=m.phone,
            lat=m.lat,
            lng=m.lng,
            timezone=m.timezone,
            status=m.status,
            kind=m.kind,
            hours=[OpeningHours(**h) for h in m.hours],
            created_at=m.created_at,
            distance_km=round(distance_km, 3) if distance_km is not None else None,
            model=m,
        )

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        m = await org_resolvers.store(ctx, pk)
        return cls.from_model(m) if m else None

    @strawberry.field(description="Open now, by the store's hours in its own time zone.")
    def is_open_now(self) -> bool:
        return self.model is not None and org_resolvers.is_open_now(self.model)

    @strawberry.field(extensions=requires(Perm.STAFF_READ), description="The store's staff accounts.")
    async def staff(self, info: strawberry.Info[Context, None]) -> list[Staff]:
        return [Staff.from_model(s) for s in await org_resolvers.store_staff(info.context, self.id)]

    @strawberry.field(description="Library SKUs adopted by this store (its staff and HQ, stock.read).")
    async def listings(
        self,
        info: strawberry.Info[Context, None],
        on_shelf: bool | None = None,
        search: str | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[StoreListingRef]:
        from schema.catalog.types import StoreListing

        flt = ListingFilter(on_shelf=on_shelf, search=search)
        page = await catalog_resolvers.store_listings(info.context, self.id, flt, first=first, after=after)
        return Connection[StoreListing].of(page, StoreListing.from_model)

    @strawberry.field(description="Stock levels of this store (its staff and HQ, stock.read).")
    async def stock_levels(
        self,
        info: strawberry.Info[Context, None],
        low_only: bool = False,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[StockLevelRef]:
        from schema.inventory.types import StockLevel

        page = await inventory_resolvers.store_levels(
            info.context, self.id, low_only=low_only, first=first, after=after
        )
        return Connection[StockLevel].of(page, StockLevel.from_view)

    @strawberry.field(description="What is on sale here, at this store's prices; anyone may read it.")
    async def menu(
        self,
        info: strawberry.Info[Context, None],
        category_id: strawberry.ID | None = None,
        search: str | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[MenuItemRef]:
        from schema.catalog.types import MenuItem

        page = await catalog_resolvers.menu(
            info.context,
            self.id,
            category_id=decode_optional_id(category_id, "Category", "categoryId"),
            search=search,
            first=first,
            after=after,
        )
        return Connection[MenuItem].of(page, MenuItem.from_row)

    @strawberry.field(description="The menu's categories with how many items each holds.")
    async def menu_categories(self, info: strawberry.Info[Context, None]) -> list[MenuCategoryRef]:
        from schema.catalog.types import Category, MenuCategory

        rows = await catalog_resolvers.menu_categories(info.context, self.id)
        return [MenuCategory(category=Category.from_model(c), item_count=n) for c, n in rows]

    @strawberry.field(extensions=requires(Perm.STAFF_READ))
    async def manager(self, info: strawberry.Info[Context, None]) -> Staff | None:
        m = await org_resolvers.store_manager(info.context, self.id)
        return Staff.from_model(m) if m else None


@strawberry.input
class StoreFilterInput:
    kind: StoreKind | None = None
    city: str | None = None
    status: StoreStatus | None = None
    search: str | None = strawberry.field(default=None, description="Part of the name or code")


@strawberry.input
class CreateStoreInput:
    code: str = not_personal()
    name: str = not_personal()
    city: str
    address: str = not_personal()
    lat: float = not_personal()
    lng: float = not_personal()
    phone: str | None = not_personal(default=None)
    timezone: str = "Asia/Shanghai"
    hours: list[OpeningHoursInput] = strawberry.field(default_factory=list)
    kind: StoreKind = StoreKind.STORE


@strawberry.input
class UpdateStoreInput:
    id: strawberry.ID
    name: str | None = not_personal(default=None)
    city: str | None = None
    address: str | None = not_personal(default=None)
    lat: float | None = not_personal(default=None)
    lng: float | None = not_personal(default=None)
    phone: str | None = not_personal(default=None)
    timezone: str | None = None
    hours: list[OpeningHoursInput] | None = None


@strawberry.input
class SetStoreStatusInput:
    id: strawberry.ID
    status: StoreStatus


@strawberry.type
class StorePayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    store: Store | None = None


@strawberry.type
class Permission:
    code: str
    description: str


@strawberry.input
class StaffFilterInput:
    store_id: strawberry.ID | None = None
    role_id: strawberry.ID | None = None
    active: bool | None = None
    search: str | None = None


@strawberry.input
class CreateStaffInput:
    username: str = not_personal()
    # Staff are named in the audit log anyway (each entry's actor): their names are the trace, not hidden data.
    display_name: str = not_personal()
    password: str = personal(Sensitivity.SECRET)
    role_id: strawberry.ID
    store_id: strawberry.ID | None = strawberry.field(
        default=None, description="Required for store roles; a store manager's own store by default."
    )


@strawberry.input
class UpdateStaffInput:
    id: strawberry.ID
    display_name: str | None = not_personal(default=None)
    role_id: strawberry.ID | None = None
    store_id: strawberry.ID | None = None


@strawberry.input
class SetStaffActiveInput:
    id: strawberry.ID
    active: bool


@strawberry.input
class ResetStaffPasswordInput:
    id: strawberry.ID
    new_password: str = personal(Sensitivity.SECRET)


@strawberry.input
class ChangeMyPasswordInput:
    current_password: str = personal(Sensitivity.SECRET)
    new_password: str = personal(Sensitivity.SECRET)


@strawberry.input
class CreateRoleInput:
    code: str = not_personal()
    name: str = not_personal()
    scope: RoleScope
    permissions: list[str]


@strawberry.input
class UpdateRoleInput:
    id: strawberry.ID
    name: str | None = not_personal(default=None)
    permissions: list[str] | None = None


@strawberry.type
class StaffPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    staff: Staff | None = None


@strawberry.type
class RolePayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    role: Role | None = None

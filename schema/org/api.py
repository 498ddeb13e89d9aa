"""Org root fields: HQ runs stores, staff and roles; visitors find the nearest store."""

from __future__ import annotations

import strawberry

from models import RoleScope, StoreStatus
from resolvers import Perm
from resolvers import org as org_resolvers
from resolvers.context import Context
from resolvers.org import MAX_RADIUS_KM, PERMISSIONS, StaffFilter, StoreFields, StoreFilter
from schema.core.common import Connection, decode_id, decode_optional_id
from schema.core.permissions import IsStaff, only, requires
from schema.core.transaction import MutationTransaction
from schema.org.types import (
    ChangeMyPasswordInput,
    CreateRoleInput,
    CreateStaffInput,
    CreateStoreInput,
    Permission,
    ResetStaffPasswordInput,
    Role,
    RolePayload,
    SetStaffActiveInput,
    SetStoreStatusInput,
    Staff,
    StaffFilterInput,
    StaffPayload,
    Store,
    StoreFilterInput,
    StorePayload,
    UpdateRoleInput,
    UpdateStaffInput,
    UpdateStoreInput,
)


def _fields(data: CreateStoreInput | UpdateStoreInput) -> StoreFields:
    hours = [h.as_dict() for h in data.hours] if data.hours is not None else None
    return StoreFields(
        code=getattr(data, "code", None),
        name=data.name,
        city=data.city,
        address=data.address,
        phone=data.phone,
        lat=data.lat,
        lng=data.lng,
        timezone=data.timezone,
        hours=hours,
        kind=getattr(data, "kind", None),
    )


@strawberry.type
class StoreQuery:
    @strawberry.field(description="Stores, by id. Anyone may list open stores; HQ also sees those being prepared.")
    async def stores(
        self,
        info: strawberry.Info[Context, None],
        filter: StoreFilterInput | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[Store]:
        f = filter or StoreFilterInput()
        flt = StoreFilter(kind=f.kind, city=f.city, status=f.status, search=f.search)
        page = await org_resolvers.stores(info.context, flt, first=first, after=after)
        return Connection[Store].of(page, Store.from_model)

    @strawberry.field
    async def store(self, info: strawberry.Info[Context, None], id: strawberry.ID) -> Store | None:
        return await Store.load(info.context, decode_id(id, "Store"))

    @strawberry.field(description=f"Open stores within radiusKm (at most {MAX_RADIUS_KM:g}), nearest first.")
    async def nearby_stores(
        self,
        info: strawberry.Info[Context, None],
        lat: float,
        lng: float,
        radius_km: float = 10.0,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[Store]:
        page = await org_resolvers.nearby_stores(
            info.context, lat=lat, lng=lng, radius_km=radius_km, first=first, after=after
        )
        return Connection[Store].of(page, lambda pair: Store.from_model(pair[0], pair[1]))


@strawberry.type
class StoreMutation:
    @strawberry.mutation(extensions=[*requires(Perm.STORE_MANAGE), MutationTransaction()])
    async def create_store(self, info: strawberry.Info[Context, None], input: CreateStoreInput) -> StorePayload:
        store = await org_resolvers.create_store(info.context, _fields(input))
        return StorePayload(store=Store.from_model(store))

    @strawberry.mutation(extensions=[*requires(Perm.STORE_MANAGE), MutationTransaction()])
    async def update_store(self, info: strawberry.Info[Context, None], input: UpdateStoreInput) -> StorePayload:
        store = await org_resolvers.update_store(info.context, decode_id(input.id, "Store"), _fields(input))
        return StorePayload(store=Store.from_model(store))

    @strawberry.mutation(
        extensions=[*requires(Perm.STORE_MANAGE), MutationTransaction()],
        description="Open a store to the public, or close it (PREPARING -> OPEN <-> CLOSED).",
    )
    async def set_store_status(self, info: strawberry.Info[Context, None], input: SetStoreStatusInput) -> StorePayload:
        store = await org_resolvers.set_store_status(
            info.context, decode_id(input.id, "Store"), StoreStatus(input.status)
        )
        return StorePayload(store=Store.from_model(store))


@strawberry.type
class StaffQuery:
    @strawberry.field(extensions=requires(Perm.STAFF_READ), description="HQ sees all staff; a store its own.")
    async def staff_members(
        self,
        info: strawberry.Info[Context, None],
        filter: StaffFilterInput | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[Staff]:
        f = filter or StaffFilterInput()
        flt = StaffFilter(
            store_id=decode_optional_id(f.store_id, "Store", "storeId"),
            role_id=decode_optional_id(f.role_id, "Role", "roleId"),
            active=f.active,
            search=f.search,
        )
        page = await org_resolvers.staff_list(info.context, flt, first=first, after=after)
        return Connection[Staff].of(page, Staff.from_model)

    @strawberry.field(extensions=only(IsStaff()), description="Roles the viewer may see (store staff: store roles).")
    async def roles(self, info: strawberry.Info[Context, None]) -> list[Role]:
        return [Role.from_model(r) for r in await org_resolvers.roles(info.context)]

    @strawberry.field(extensions=requires(Perm.ROLE_MANAGE), description="Every permission a role can hold.")
    def permissions(self) -> list[Permission]:
        return [Permission(code=c, description=d) for c, d in PERMISSIONS.items()]


@strawberry.type
class StaffMutation:
    @strawberry.mutation(extensions=[*requires(Perm.STAFF_MANAGE), MutationTransaction()])
    async def create_staff(self, info: strawberry.Info[Context, None], input: CreateStaffInput) -> StaffPayload:
        staff = await org_resolvers.create_staff(
            info.context,
            username=input.username,
            display_name=input.display_name,
            password=input.password,
            role_id=decode_id(input.role_id, "Role", "roleId"),
            store_id=decode_optional_id(input.store_id, "Store", "storeId"),
        )
        return StaffPayload(staff=Staff.from_model(staff))

    @strawberry.mutation(extensions=[*requires(Perm.STAFF_MANAGE), MutationTransaction()])
    async def update_staff(self, info: strawberry.Info[Context, None], input: UpdateStaffInput) -> StaffPayload:
        staff = await org_resolvers.update_staff(
            info.context,
            staff_id=decode_id(input.id, "Staff"),
            display_name=input.display_name,
            role_id=decode_optional_id(input.role_id, "Role", "roleId"),
            store_id=decode_optional_id(input.store_id, "Store", "storeId"),
        )
        return StaffPayload(staff=Staff.from_model(staff))

    @strawberry.mutation(
        extensions=[*requires(Perm.STAFF_MANAGE), MutationTransaction()],
        description="Disable (ending every session at once) or re-enable a staff account.",
    )
    async def set_staff_active(self, info: strawberry.Info[Context, None], input: SetStaffActiveInput) -> StaffPayload:
        staff = await org_resolvers.set_staff_active(
            info.context, staff_id=decode_id(input.id, "Staff"), active=input.active
        )
        return StaffPayload(staff=Staff.from_model(staff))

    @strawberry.mutation(extensions=[*requires(Perm.STAFF_MANAGE), MutationTransaction()])
    async def reset_staff_password(
        self, info: strawberry.Info[Context, None], input: ResetStaffPasswordInput
    ) -> StaffPayload:
        staff = await org_resolvers.reset_staff_password(
            info.context, staff_id=decode_id(input.id, "Staff"), new_password=input.new_password
        )
        return StaffPayload(staff=Staff.from_model(staff))

    @strawberry.mutation(extensions=[*only(IsStaff()), MutationTransaction()])
    async def change_my_password(
        self, info: strawberry.Info[Context, None], input: ChangeMyPasswordInput
    ) -> StaffPayload:
        staff = await org_resolvers.change_my_password(
            info.context, current_password=input.current_password, new_password=input.new_password
        )
        return StaffPayload(staff=Staff.from_model(staff))

    @strawberry.mutation(extensions=[*requires(Perm.ROLE_MANAGE), MutationTransaction()])
    async def create_role(self, info: strawberry.Info[Context, None], input: CreateRoleInput) -> RolePayload:
        role = await org_resolvers.create_role(
            info.context, code=input.code, name=input.name, scope=RoleScope(input.scope), permissions=input.permissions
        )
        return RolePayload(role=Role.from_model(role))

    @strawberry.mutation(extensions=[*requires(Perm.ROLE_MANAGE), MutationTransaction()])
    async def update_role(self, info: strawberry.Info[Context, None], input: UpdateRoleInput) -> RolePayload:
        role = await org_resolvers.update_role(
            info.context, role_id=decode_id(input.id, "Role"), name=input.name, permissions=input.permissions
        )
        return RolePayload(role=Role.from_model(role))

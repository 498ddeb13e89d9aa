"""Staff and role queries and mutations."""

from __future__ import annotations

import strawberry

from models import RoleScope
from resolvers import Perm
from resolvers import org as org_resolvers
from resolvers.context import Context
from resolvers.org import PERMISSIONS, StaffFilter
from schema.core.common import Connection, UserError, decode_id, decode_optional_id
from schema.core.permissions import IsStaff, only, requires
from schema.core.personal import Sensitivity, not_personal, personal
from schema.core.transaction import MutationTransaction
from schema.org.types import Role, Staff


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

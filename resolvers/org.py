"""Stores, staff and roles: the viewer and arguments in, service calls out. The values the org API's inputs are
made of are re-exported here (`X as X`) for schema/, which imports no service."""

from __future__ import annotations

from models import Role, RoleScope, Staff, Store, StoreStatus, utcnow
from resolvers.context import Context
from services.access import roles as role_service
from services.access.permissions import PERMISSIONS as PERMISSIONS
from services.access.permissions import Perm
from services.access.scope import require_store
from services.org import staff as staff_service
from services.org import stores as store_service
from services.org.staff import StaffFilter as StaffFilter
from services.org.stores import MAX_RADIUS_KM as MAX_RADIUS_KM
from services.org.stores import StoreFields as StoreFields
from services.org.stores import StoreFilter as StoreFilter
from services.platform.pagination import Page


async def stores(ctx: Context, flt: store_service.StoreFilter, *, first: int | None, after: str | None) -> Page[Store]:
    async with ctx.read() as session:
        return await store_service.list_stores(session, ctx.viewer, flt, first=first, after=after)


async def nearby_stores(
    ctx: Context, *, lat: float, lng: float, radius_km: float, first: int | None, after: str | None
) -> Page[tuple[Store, float]]:
    async with ctx.read() as session:
        return await store_service.nearby_stores(
            session, lat=lat, lng=lng, radius_km=radius_km, first=first, after=after
        )


async def store(ctx: Context, store_id: int) -> Store | None:
    result: Store | None = await ctx.loaders.store_by_id.load(store_id)
    return result


def is_open_now(store: Store) -> bool:
    return store_service.is_open_at(store, utcnow())


async def store_staff(ctx: Context, store_id: int) -> list[Staff]:
    require_store(ctx.viewer, store_id, Perm.STAFF_READ)
    result: list[Staff] = await ctx.loaders.staff_by_store.load(store_id)
    return result


async def store_manager(ctx: Context, store_id: int) -> Staff | None:
    """The store's active manager: its first active staff member holding the built-in manager role."""
    for member in await store_staff(ctx, store_id):
        role: Role | None = await ctx.loaders.role_by_id.load(member.role_id)
        if staff_service.is_store_manager(member, role):
            return member
    return None


async def staff_list(
    ctx: Context, flt: staff_service.StaffFilter, *, first: int | None, after: str | None
) -> Page[Staff]:
    async with ctx.read() as session:
        return await staff_service.list_staff(session, ctx.viewer, flt, first=first, after=after)


async def roles(ctx: Context) -> list[Role]:
    async with ctx.read() as session:
        return await role_service.list_roles(session, ctx.viewer)


async def create_store(ctx: Context, fields: store_service.StoreFields) -> Store:
    return await store_service.create_store(ctx.session, fields=fields)


async def update_store(ctx: Context, store_id: int, fields: store_service.StoreFields) -> Store:
    return await store_service.update_store(ctx.session, store_id=store_id, fields=fields)


async def set_store_status(ctx: Context, store_id: int, status: StoreStatus) -> Store:
    return await store_service.set_status(ctx.session, store_id=store_id, status=status)


async def create_staff(
    ctx: Context, *, username: str, display_name: str, password: str, role_id: int, store_id: int | None
) -> Staff:
    return await staff_service.create_staff(
        ctx.session,
        ctx.app.security,
        ctx.viewer,
        username=username,
        display_name=display_name,
        password=password,
        role_id=role_id,
        store_id=store_id,
    )


async def update_staff(
    ctx: Context, *, staff_id: int, display_name: str | None, role_id: int | None, store_id: int | None
) -> Staff:
    return await staff_service.update_staff(
        ctx.session, ctx.viewer, staff_id=staff_id, display_name=display_name, role_id=role_id, store_id=store_id
    )


async def set_staff_active(ctx: Context, *, staff_id: int, active: bool) -> Staff:
    return await staff_service.set_active(ctx.session, ctx.viewer, staff_id=staff_id, active=active)


async def reset_staff_password(ctx: Context, *, staff_id: int, new_password: str) -> Staff:
    return await staff_service.reset_password(
        ctx.session, ctx.app.security, ctx.viewer, staff_id=staff_id, new_password=new_password
    )


async def change_my_password(ctx: Context, *, current_password: str, new_password: str) -> Staff:
    return await staff_service.change_own_password(
        ctx.session, ctx.app.security, ctx.viewer, current_password=current_password, new_password=new_password
    )


async def create_role(ctx: Context, *, code: str, name: str, scope: RoleScope, permissions: list[str]) -> Role:
    return await role_service.create_role(ctx.session, code=code, name=name, scope=scope, permissions=permissions)


async def update_role(ctx: Context, *, role_id: int, name: str | None, permissions: list[str] | None) -> Role:
    return await role_service.update_role(ctx.session, role_id=role_id, name=name, permissions=permissions)

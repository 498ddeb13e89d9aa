"""Roles: built-in ones kept in step with the code, custom ones made by HQ admins."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Role, RoleScope
from services.access.auth import ACCESS_CHANGED
from services.access.permissions import BUILTIN_ROLES, PERMISSIONS, Perm
from services.access.scope import Viewer
from services.platform.errors import DomainError, ErrorCode
from services.platform.events import emit
from services.platform.validation import text

_CODE = re.compile(r"^[A-Z][A-Z0-9_]{1,63}$")
# Permissions that only make sense chain-wide; a store-scoped role may not carry them.
HQ_ONLY = frozenset(
    {
        Perm.STORE_MANAGE,
        Perm.ROLE_MANAGE,
        Perm.SETTINGS_MANAGE,
        Perm.CATALOG_MANAGE,
        Perm.TRANSFER_APPROVE,
        Perm.MEMBER_MANAGE,
        Perm.BRAND_MANAGE,
        Perm.CARD_MANAGE,
    }
)


async def sync_builtin_roles(session: AsyncSession) -> None:
    """Create the built-in roles, or bring their permissions up to date with the code."""
    existing = {r.code: r for r in (await session.scalars(select(Role).where(Role.builtin.is_(True)))).all()}
    for spec in BUILTIN_ROLES:
        role = existing.get(spec.code)
        if role is None:
            session.add(
                Role(
                    code=spec.code, name=spec.name, scope=spec.scope, builtin=True, permissions=sorted(spec.permissions)
                )
            )
        elif set(role.permissions) != spec.permissions or role.scope is not spec.scope:
            role.permissions = sorted(spec.permissions)
            role.scope = spec.scope
    await session.flush()


def _check_permissions(permissions: list[str], scope: RoleScope) -> list[str]:
    unknown = sorted(set(permissions) - set(PERMISSIONS))
    if unknown:
        raise DomainError(ErrorCode.UNKNOWN_PERMISSION, f"Unknown permissions: {', '.join(unknown)}.", "permissions")
    if scope is RoleScope.STORE and (hq_only := sorted(set(permissions) & HQ_ONLY)):
        raise DomainError(
            ErrorCode.ROLE_SCOPE_MISMATCH, f"Store roles cannot hold {', '.join(hq_only)}.", "permissions"
        )
    return sorted(set(permissions))


async def create_role(session: AsyncSession, *, code: str, name: str, scope: RoleScope, permissions: list[str]) -> Role:
    code = text(code, "code", max_len=64).upper()
    if not _CODE.match(code):
        raise DomainError(ErrorCode.INVALID_INPUT, "Role codes are letters, digits and underscores.", "code")
    if await session.scalar(select(Role.id).where(Role.code == code)) is not None:
        raise DomainError(ErrorCode.DUPLICATE, f"A role with code {code} exists.", "code")
    role = Role(
        code=code,
        name=text(name, "name", max_len=128),
        scope=scope,
        builtin=False,
        permissions=_check_permissions(permissions, scope),
    )
    session.add(role)
    await session.flush()
    return role


async def update_role(session: AsyncSession, *, role_id: int, name: str | None, permissions: list[str] | None) -> Role:
    """Change a custom role; staff holding it get the new permissions on their next request."""
    role = await session.get(Role, role_id, with_for_update=True)
    if role is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such role.", "id")
    if role.builtin:
        raise DomainError(ErrorCode.BUILTIN_ROLE, "Built-in roles are defined by the product.", "id")
    if name is not None:
        role.name = text(name, "name", max_len=128)
    if permissions is not None:
        role.permissions = _check_permissions(permissions, role.scope)
        emit(session, ACCESS_CHANGED, {"roleId": role.id})
    await session.flush()
    return role


def can_assign(viewer: Viewer, role: Role) -> bool:
    """HQ staff managers assign any role; store managers only store roles weaker than their own."""
    if viewer.is_hq:
        return viewer.can(Perm.STAFF_MANAGE)
    return (
        role.scope is RoleScope.STORE
        and Perm.STAFF_MANAGE not in role.permissions
        and set(role.permissions) <= viewer.permissions
    )


async def list_roles(session: AsyncSession, viewer: Viewer) -> list[Role]:
    stmt = select(Role).order_by(Role.id)
    if not viewer.is_hq:
        stmt = stmt.where(Role.scope == RoleScope.STORE)
    return list((await session.scalars(stmt)).all())

"""Staff accounts: HQ admins manage everyone, a store manager their own store's clerks."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from zxcvbn import zxcvbn

from models import AuthSession, Role, RoleScope, Staff, Store, utcnow
from services.access.auth import ACCESS_CHANGED, USERNAME, revoke_sessions
from services.access.permissions import Perm
from services.access.roles import can_assign
from services.access.scope import Viewer, acted_in, require_store, restrict
from services.access.security import Security
from services.platform.errors import AccessDenied, DomainError, ErrorCode
from services.platform.events import emit
from services.platform.pagination import AnySelect, Page, keyset_page
from services.platform.validation import text

MANAGER_ROLE = "STORE_MANAGER"  # the built-in role (services/access/permissions.py) that makes a store's manager
MIN_PASSWORD = 10
MAX_PASSWORD = 128
# zxcvbn's score (0-4): 3 is "safely unguessable" against an offline attack on a slow hash. Below it are the
# passwords in its frequency lists (common passwords, names, words) and their easy variations.
MIN_STRENGTH = 3
_ZXCVBN_MAX = 72  # zxcvbn's own input limit; what lies beyond cannot make a weak start strong enough to matter


def check_password(password: str, field: str = "password", *, username: str, display_name: str | None = None) -> str:
    """A staff password: 10 to 128 characters, not the username nor containing it, and not guessable by zxcvbn
    (common-password and word lists, keyboard patterns, the account's own names). PASSWORD_TOO_WEAK on `field`."""
    if len(password) > MAX_PASSWORD:
        raise DomainError(ErrorCode.INVALID_INPUT, f"Passwords have at most {MAX_PASSWORD} characters.", field)
    if len(password) < MIN_PASSWORD:
        raise DomainError(ErrorCode.PASSWORD_TOO_WEAK, f"Passwords have at least {MIN_PASSWORD} characters.", field)
    if username.lower() in password.lower():
        raise DomainError(ErrorCode.PASSWORD_TOO_WEAK, "A password may not contain the username.", field)
    names = [username, *username.replace("-", ".").split("."), *([display_name] if display_name else [])]
    if zxcvbn(password[:_ZXCVBN_MAX], user_inputs=names)["score"] < MIN_STRENGTH:
        raise DomainError(
            ErrorCode.PASSWORD_TOO_WEAK,
            "This password is too common or too easy to guess; choose a longer phrase.",
            field,
        )
    return password


async def _assignable_role(session: AsyncSession, viewer: Viewer, role_id: int) -> Role:
    role = await session.get(Role, role_id)
    if role is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such role.", "roleId")
    if not can_assign(viewer, role):
        raise DomainError(ErrorCode.ROLE_NOT_ASSIGNABLE, "You cannot give this role.", "roleId")
    return role


async def _placement(session: AsyncSession, viewer: Viewer, role: Role, store_id: int | None) -> int | None:
    """Where the account belongs: HQ roles nowhere, store roles in one store the viewer manages."""
    if role.scope is RoleScope.HQ:
        if store_id is not None:
            raise DomainError(ErrorCode.ROLE_SCOPE_MISMATCH, "HQ roles do not belong to a store.", "storeId")
        return None
    store_id = store_id if store_id is not None else viewer.store_id
    if store_id is None:
        raise DomainError(ErrorCode.ROLE_SCOPE_MISMATCH, "Store roles need a store.", "storeId")
    require_store(viewer, store_id, Perm.STAFF_MANAGE)
    if await session.scalar(select(Store.id).where(Store.id == store_id)) is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such store.", "storeId")
    return store_id


async def create_staff(
    session: AsyncSession,
    security: Security,
    viewer: Viewer,
    *,
    username: str,
    display_name: str,
    password: str,
    role_id: int,
    store_id: int | None,
) -> Staff:
    name = text(username, "username", max_len=64).lower()
    if not USERNAME.match(name):
        raise DomainError(
            ErrorCode.INVALID_INPUT, "Usernames are 3-64 lower-case letters, digits, dots or dashes.", "username"
        )
    display = text(display_name, "displayName", max_len=128)
    check_password(password, username=name, display_name=display)
    role = await _assignable_role(session, viewer, role_id)
    placed = await _placement(session, viewer, role, store_id)
    if await session.scalar(select(Staff.id).where(Staff.username == name)) is not None:
        raise DomainError(ErrorCode.DUPLICATE, "This username is taken.", "username")
    staff = Staff(
        username=name,
        display_name=display,
        password_hash=security.hash_password(password),
        role_id=role.id,
        store_id=placed,
        active=True,
    )
    session.add(staff)
    await session.flush()
    return staff


async def get_managed(session: AsyncSession, viewer: Viewer, staff_id: int) -> Staff:
    """The staff account, locked, if the viewer may manage it; another store's account is FORBIDDEN."""
    staff = await session.get(Staff, staff_id, with_for_update=True)
    if staff is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such staff member.", "id")
    if staff.store_id is None:
        if not viewer.is_hq:
            raise AccessDenied("This account belongs to HQ.")
    else:
        require_store(viewer, staff.store_id, Perm.STAFF_MANAGE)
    current_role = await session.get(Role, staff.role_id)
    assert current_role is not None
    if not can_assign(viewer, current_role):
        raise AccessDenied("You cannot manage an account with this role.")
    return staff


async def update_staff(
    session: AsyncSession,
    viewer: Viewer,
    *,
    staff_id: int,
    display_name: str | None,
    role_id: int | None,
    store_id: int | None,
) -> Staff:
    staff = await get_managed(session, viewer, staff_id)
    if display_name is not None:
        staff.display_name = text(display_name, "displayName", max_len=128)
    if role_id is not None or store_id is not None:
        role = await _assignable_role(session, viewer, role_id if role_id is not None else staff.role_id)
        target_store = store_id if store_id is not None else (staff.store_id if role.scope is RoleScope.STORE else None)
        staff.store_id = await _placement(session, viewer, role, target_store)
        staff.role_id = role.id
        acted_in(staff.store_id)  # where the account now belongs (an HQ role: no store)
        emit(session, ACCESS_CHANGED, {"staffId": staff.id})
    await session.flush()
    return staff


async def set_active(session: AsyncSession, viewer: Viewer, *, staff_id: int, active: bool) -> Staff:
    """Disable or re-enable an account; disabling ends every session of it at once."""
    if staff_id == viewer.staff_id:
        raise DomainError(ErrorCode.CANNOT_DISABLE_SELF, "You cannot disable your own account.", "id")
    staff = await get_managed(session, viewer, staff_id)
    staff.active = active
    staff.disabled_at = None if active else utcnow()
    if not active:
        await revoke_sessions(session, staff_id=staff.id, reason="DISABLED")
    await session.flush()
    return staff


async def reset_password(
    session: AsyncSession, security: Security, viewer: Viewer, *, staff_id: int, new_password: str
) -> Staff:
    staff = await get_managed(session, viewer, staff_id)
    check_password(new_password, "newPassword", username=staff.username, display_name=staff.display_name)
    staff.password_hash = security.hash_password(new_password)
    await revoke_sessions(session, staff_id=staff.id, reason="PASSWORD_RESET")
    await session.flush()
    return staff


async def change_own_password(
    session: AsyncSession, security: Security, viewer: Viewer, *, current_password: str, new_password: str
) -> Staff:
    """A signed-in staff member changes their password; other sessions end, this one stays."""
    staff = await session.get(Staff, viewer.staff_id, with_for_update=True)
    assert staff is not None
    if not security.verify_password(staff.password_hash, current_password):
        raise DomainError(ErrorCode.INVALID_CREDENTIALS, "The current password is wrong.", "currentPassword")
    check_password(new_password, "newPassword", username=staff.username, display_name=staff.display_name)
    staff.password_hash = security.hash_password(new_password)
    ids = (
        await session.scalars(
            select(AuthSession.id).where(
                AuthSession.staff_id == staff.id, AuthSession.id != viewer.session_id, AuthSession.revoked_at.is_(None)
            )
        )
    ).all()
    if ids:
        await revoke_sessions(session, session_ids=list(ids), reason="PASSWORD_CHANGED")
    await session.flush()
    return staff


@dataclass(frozen=True)
class StaffFilter:
    store_id: int | None = None
    role_id: int | None = None
    active: bool | None = None
    search: str | None = None


def _filtered(viewer: Viewer, flt: StaffFilter) -> AnySelect:
    stmt = restrict(select(Staff), viewer, Staff.store_id, Perm.STAFF_READ)
    if flt.store_id is not None:
        require_store(viewer, flt.store_id, Perm.STAFF_READ)
        stmt = stmt.where(Staff.store_id == flt.store_id)
    if flt.role_id is not None:
        stmt = stmt.where(Staff.role_id == flt.role_id)
    if flt.active is not None:
        stmt = stmt.where(Staff.active.is_(flt.active))
    if flt.search:
        term = f"%{text(flt.search, 'search', max_len=64).lower()}%"
        stmt = stmt.where(or_(Staff.username.like(term), func.lower(Staff.display_name).like(term)))
    return stmt


async def list_staff(
    session: AsyncSession, viewer: Viewer, flt: StaffFilter, *, first: int | None, after: str | None
) -> Page[Staff]:
    return await keyset_page(session, _filtered(viewer, flt), Staff.id, first=first, after=after)


def is_store_manager(staff: Staff, role: Role | None) -> bool:
    """An active account holding the built-in store manager role (a store's manager is the first such)."""
    return staff.active and role is not None and role.code == MANAGER_ROLE

"""Who is asking and what they may see: the one place scope is decided.

Every root query and every loader passes its statement through `restrict` (or checks one
row with `require_store`), so a store's staff never see another store's rows.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, false
from sqlalchemy.orm import InstrumentedAttribute

from models import RoleScope
from services.access.permissions import Perm
from services.platform.errors import AccessDenied, DomainError, ErrorCode, Unauthenticated
from services.platform.pagination import AnySelect

StoreColumn = ColumnElement[Any] | InstrumentedAttribute[Any]


class ViewerKind(enum.StrEnum):
    ANONYMOUS = "ANONYMOUS"
    MEMBER = "MEMBER"
    STAFF = "STAFF"


@dataclass(frozen=True)
class Viewer:
    kind: ViewerKind = ViewerKind.ANONYMOUS
    staff_id: int | None = None
    member_id: int | None = None
    session_id: int | None = None
    role_code: str | None = None
    role_scope: RoleScope | None = None
    store_id: int | None = None
    permissions: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_staff(self) -> bool:
        return self.kind is ViewerKind.STAFF

    @property
    def is_member(self) -> bool:
        return self.kind is ViewerKind.MEMBER

    @property
    def is_hq(self) -> bool:
        return self.is_staff and self.role_scope is RoleScope.HQ

    def can(self, permission: Perm) -> bool:
        return self.is_staff and permission in self.permissions

    def sees_store(self, store_id: int | None, permission: Perm) -> bool:
        """True when the viewer holds `permission` and `store_id` lies in its scope."""
        if not self.can(permission):
            return False
        return self.is_hq or (store_id is not None and store_id == self.store_id)


ANONYMOUS = Viewer()
# The chain itself acting in a job (e.g. refunding a group buy that did not fill): HQ scope, only what it needs.
SYSTEM = Viewer(
    kind=ViewerKind.STAFF, role_code="SYSTEM", role_scope=RoleScope.HQ, permissions=frozenset({Perm.ORDER_REFUND})
)


@dataclass
class Acting:
    """Where one mutation acted, as the rules it ran found it: the store whose scope it passed (or the store a rule
    names, e.g. the counter's), and the account acting when there is no viewer yet (sign-in). For its audit entry."""

    store_id: int | None = None
    staff_id: int | None = None


_acting: ContextVar[Acting | None] = ContextVar("acting", default=None)


@contextmanager
def tracking() -> Iterator[Acting]:
    """Collect where the code run inside acts (one mutation); outside, nothing is collected."""
    acting = Acting()
    token = _acting.set(acting)
    try:
        yield acting
    finally:
        _acting.reset(token)


def acted_in(store_id: int | None) -> None:
    """The current mutation acts in `store_id` (None: in no store, so the viewer's own). The last store named wins:
    e.g. a staff account moved to another store is filed under the new one."""
    acting = _acting.get()
    if acting is not None:
        acting.store_id = store_id


def acted_as(staff_id: int, store_id: int | None) -> None:
    """The current mutation acts for this staff account (sign-in, before there is a viewer), in its store."""
    acting = _acting.get()
    if acting is not None:
        acting.staff_id, acting.store_id = staff_id, store_id


def require(viewer: Viewer, permission: Perm) -> None:
    """Raise unless the viewer is staff holding `permission`."""
    if viewer.kind is ViewerKind.ANONYMOUS:
        raise Unauthenticated()
    if not viewer.can(permission):
        raise AccessDenied()


def require_store(viewer: Viewer, store_id: int | None, permission: Perm) -> None:
    """Raise unless the viewer holds `permission` for `store_id`; a mutation that passes acts in that store (a refused
    attempt on another store stays out of that store's audit log)."""
    require(viewer, permission)
    if not viewer.sees_store(store_id, permission):
        raise AccessDenied("This belongs to another store.")
    acted_in(store_id)


def counter_store(viewer: Viewer, store_id: int | None) -> int:
    """The store a counter action (POS sale, pickup, member lookup, top-up) happens in: the one named, else the
    clerk's own. The mutation acts in it (even when refused), so it is filed under that store."""
    store = store_id if store_id is not None else viewer.store_id
    if store is None:
        raise DomainError(ErrorCode.INVALID_INPUT, "Say which store this happens in.", "storeId")
    acted_in(store)
    return store


def store_condition(viewer: Viewer, column: StoreColumn, permission: Perm) -> ColumnElement[bool]:
    """The WHERE clause that limits `column` (a store id) to what the viewer may see."""
    if not viewer.can(permission):
        return false()
    if viewer.is_hq:
        return column.is_not(None) | column.is_(None)
    return column == viewer.store_id


def restrict(stmt: AnySelect, viewer: Viewer, column: StoreColumn, permission: Perm) -> AnySelect:
    """Limit a statement to the viewer's stores; HQ sees all, store staff their own, others nothing."""
    if viewer.is_hq and viewer.can(permission):
        return stmt
    return stmt.where(store_condition(viewer, column, permission))


def scope_key(viewer: Viewer) -> tuple[Any, ...]:
    """All that the scope conditions (`restrict`, `store_condition`, `visible.owned_condition`, the stores'
    `visible_condition`) read of a viewer: its kind, scope, store and permissions, never who it is. A statement built
    with them for one viewer serves every viewer with the same key (services/platform/statements.py)."""
    return (viewer.kind, viewer.role_scope, viewer.store_id, viewer.permissions)


def idempotency_scope(viewer: Viewer, operation: str) -> str:
    """Idempotency keys (services/platform/idempotency.py) are scoped by who may replay them: a member, a store's
    staff, or HQ."""
    if viewer.is_member:
        return f"{operation}:member:{viewer.member_id}"
    if viewer.store_id is not None and not viewer.is_hq:
        return f"{operation}:store:{viewer.store_id}"
    return f"{operation}:hq"

"""Who sees which after-sales rows, decided once here on top of services/access/scope.py: a store's staff their own
store's tasks and tickets, HQ all of them, a member only their own tickets. Anything else is NOT_FOUND, like an id
that does not exist."""

from __future__ import annotations

from sqlalchemy import ColumnElement, false

from models import FollowUpTask, Ticket
from services.access.permissions import Perm
from services.access.scope import Viewer, acted_in, require, store_condition
from services.platform.errors import DomainError, ErrorCode


def tasks_seen(viewer: Viewer, permission: Perm = Perm.CARE_FOLLOW_UP) -> ColumnElement[bool]:
    return store_condition(viewer, FollowUpTask.store_id, permission)


def tickets_seen(viewer: Viewer) -> ColumnElement[bool]:
    if viewer.is_member:
        return Ticket.member_id == viewer.member_id
    if viewer.is_staff:
        return store_condition(viewer, Ticket.store_id, Perm.CARE_TICKET)
    return false()


def check_store(viewer: Viewer, store_id: int, permission: Perm, what: str) -> None:
    """The row's store must be in the viewer's scope; otherwise the row does not exist for them."""
    require(viewer, permission)
    if not viewer.sees_store(store_id, permission):
        raise DomainError(ErrorCode.NOT_FOUND, f"No such {what}.", "id")
    acted_in(store_id)

"""Permission classes declared on fields and mutations; each raises with a code the client can act on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.types import Info

from resolvers import auth as auth_resolvers
from resolvers.context import ViewerKind
from services.platform.errors import AccessDenied, Unauthenticated


def _require_kind(info: Info, kinds: set[ViewerKind], message: str) -> bool:
    viewer = info.context.viewer
    if viewer.kind is ViewerKind.ANONYMOUS:
        raise Unauthenticated()
    if viewer.kind not in kinds:
        raise AccessDenied(message)
    return True


class IsSignedIn(BasePermission):
    message = "Sign in first."

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return _require_kind(info, {ViewerKind.STAFF, ViewerKind.MEMBER}, self.message)


class IsStaff(BasePermission):
    message = "Only staff may do this."

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return _require_kind(info, {ViewerKind.STAFF}, self.message)


class IsMember(BasePermission):
    message = "Only members may do this."

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return _require_kind(info, {ViewerKind.MEMBER}, self.message)


class HasPermission(BasePermission):
    """Staff holding a named permission (scope to a store is checked row by row in services)."""

    def __init__(self, permission: str) -> None:
        self.permission = permission
        self.message = f"Requires the {permission} permission."

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        viewer = info.context.viewer
        if viewer.kind is ViewerKind.ANONYMOUS:
            raise Unauthenticated()
        if not viewer.can(self.permission):
            raise AccessDenied(self.message or "You are not allowed to do this.")
        return True


class RateLimit(FieldExtension):
    """Counts each call against the operation's rate limits (services/platform/ratelimit.py) before anything runs."""

    def __init__(
        self, operation: str, subject_field: str | None = None, when: Callable[[dict[str, Any]], bool] | None = None
    ) -> None:
        self.operation = operation
        self.subject_field = subject_field
        # Only calls whose arguments match count (e.g. a member search by exact phone, not every search).
        self.when = when

    def resolve(self, next_: Any, source: Any, info: Info, **kwargs: Any) -> Any:  # pragma: no cover - async only
        raise NotImplementedError

    async def resolve_async(self, next_: Any, source: Any, info: Info, **kwargs: Any) -> Any:
        if self.when is not None and not self.when(kwargs):
            return await next_(source, info, **kwargs)
        subject = None
        if self.subject_field and (given := kwargs.get("input")) is not None:
            subject = str(getattr(given, self.subject_field, "") or "").strip().lower()[:64] or None
        await auth_resolvers.count_call(info.context, self.operation, subject)
        return await next_(source, info, **kwargs)


def requires(*permissions: str) -> list[FieldExtension]:
    """Field extensions that let only staff holding every named permission through."""
    return [PermissionExtension([HasPermission(p) for p in permissions], use_directives=False)]


def only(*checks: BasePermission) -> list[FieldExtension]:
    return [PermissionExtension(list(checks), use_directives=False)]

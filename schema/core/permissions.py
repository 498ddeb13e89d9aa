"""Permission classes declared on fields, mutations and subscriptions: each answers yes or no, and a no is a GraphQL
error with its class's `message` and `error_extensions` (the code a client can act on).

`only(...)` and `requires(...)` put `IsSignedIn` first, so an anonymous viewer is told UNAUTHENTICATED ("Sign in
first.") and a signed-in one who may not is told FORBIDDEN with the refusing check's message.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any

from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.types import Info
from strawberry.types.field import StrawberryField

from resolvers import Perm
from resolvers import auth as auth_resolvers
from resolvers.context import ViewerKind


class IsSignedIn(BasePermission):
    message = "Sign in first."
    error_extensions = {"code": "UNAUTHENTICATED"}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return bool(info.context.viewer.kind is not ViewerKind.ANONYMOUS)


class Refusal(BasePermission):
    """A check whose no is FORBIDDEN; a field may word its own message."""

    error_extensions = {"code": "FORBIDDEN"}

    def __init__(self, message: str | None = None) -> None:
        if message is not None:
            self.message = message


class IsStaff(Refusal):
    message = "Only staff may do this."

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return bool(info.context.viewer.is_staff)


class IsMember(Refusal):
    message = "Only members may do this."

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return bool(info.context.viewer.is_member)


class IsHQ(Refusal):
    message = "Only HQ may do this."

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return bool(info.context.viewer.is_hq)


class HasPermission(Refusal):
    """Staff holding a named permission (scope to a store is checked row by row in services)."""

    def __init__(self, permission: Perm) -> None:
        super().__init__(f"Requires the {permission} permission.")
        self.permission = permission

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return bool(info.context.viewer.can(self.permission))


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


class Checks(PermissionExtension):
    """strawberry's permission extension; on a subscription a refusal is the stream's one result (a `next` carrying
    the error, then `complete`), as when the resolver itself refused, rather than a graphql-transport-ws `error`."""

    subscription = False

    def apply(self, field: StrawberryField) -> None:
        super().apply(field)
        self.subscription = field.is_subscription

    def _on_unauthorized(self, permission: BasePermission) -> Any:
        if self.subscription:
            return _refused(permission)
        return super()._on_unauthorized(permission)


async def _refused(permission: BasePermission) -> AsyncGenerator[None, None]:
    permission.on_unauthorized()  # raises
    yield  # pragma: no cover - never reached; makes this an async generator


def checks(*permissions: BasePermission) -> list[FieldExtension]:
    """Field extensions running exactly these checks, in order; the first that says no is the error."""
    return [Checks(list(permissions), use_directives=False)]


def only(*permissions: BasePermission) -> list[FieldExtension]:
    """Field extensions that let a signed-in viewer through when every check says yes."""
    signed_in = [] if any(isinstance(p, IsSignedIn) for p in permissions) else [IsSignedIn()]
    return checks(*signed_in, *permissions)


def requires(*permissions: Perm) -> list[FieldExtension]:
    """Field extensions that let only staff holding every named permission through."""
    return only(*(HasPermission(p) for p in permissions))

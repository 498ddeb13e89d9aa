"""Relay's node(id:): any object by its global id, through the same scoped loaders as every field."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import strawberry
from strawberry import relay

from resolvers.context import Context
from schema.audit import AuditLogEntry
from schema.member import Member
from schema.org import Role, Staff, Store

NODE_TYPES: dict[str, Callable[[Context, int], Awaitable[Any]]] = {
    "Store": Store.load,
    "Staff": Staff.load,
    "Role": Role.load,
    "Member": Member.load,
    "AuditLogEntry": AuditLogEntry.load,
}


def _parse(value: strawberry.ID) -> tuple[str, int] | None:
    try:
        gid = relay.GlobalID.from_id(str(value))
    except relay.GlobalIDValueError:
        return None
    if gid.type_name not in NODE_TYPES or not gid.node_id.isdigit() or len(gid.node_id) > 18:
        return None
    return gid.type_name, int(gid.node_id)


@strawberry.type
class NodeQuery:
    @strawberry.field(description="Any object by global id; null when it does not exist or is out of your scope.")
    async def node(self, info: strawberry.Info[Context, None], id: strawberry.ID) -> relay.Node | None:
        parsed = _parse(id)
        if parsed is None:
            return None
        loaded: relay.Node | None = await NODE_TYPES[parsed[0]](info.context, parsed[1])
        return loaded

    @strawberry.field(description="Many objects by global id, in the order asked; at most 100.")
    async def nodes(self, info: strawberry.Info[Context, None], ids: list[strawberry.ID]) -> list[relay.Node | None]:
        from services.errors import DomainError, ErrorCode

        if len(ids) > 100:
            raise DomainError(ErrorCode.INVALID_INPUT, "At most 100 ids at once.", "ids")
        return [await self.node(info, i) for i in ids]

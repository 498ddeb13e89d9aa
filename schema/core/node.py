"""Relay's node(id:): any object by its global id, through the same scoped loaders as every field.

Each Node type says how it is fetched (`load`, through the per-request loaders that apply the viewer's scope) and
strawberry's `resolve_nodes` goes through it, so an id out of the viewer's scope is null, as one that does not exist.
The schema's own type map finds the type a global id names: there is no table to keep.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Literal, Self, TypeVar, overload

import strawberry
from strawberry import relay
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.utils.await_maybe import await_maybe

from resolvers import MAX_PAGE, DomainError, ErrorCode
from resolvers.context import Context


class Loaded:
    """Mixed into a Node type (before `relay.Node`): node(id:) and nodes(ids:) fetch it through its `load`."""

    @classmethod
    async def load(cls, ctx: Context, pk: int) -> Self | None:
        """The object with primary key `pk`, or None when it does not exist or is out of the viewer's scope."""
        raise NotImplementedError

    @overload
    @classmethod
    async def resolve_nodes(
        cls, *, info: strawberry.Info, node_ids: Iterable[str], required: Literal[True]
    ) -> list[Self]: ...

    @overload
    @classmethod
    async def resolve_nodes(
        cls, *, info: strawberry.Info, node_ids: Iterable[str], required: Literal[False] = ...
    ) -> list[Self | None]: ...

    @overload
    @classmethod
    async def resolve_nodes(
        cls, *, info: strawberry.Info, node_ids: Iterable[str], required: bool
    ) -> list[Self] | list[Self | None]: ...

    @classmethod
    async def resolve_nodes(
        cls, *, info: strawberry.Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Self] | list[Self | None]:
        ctx: Context = info.context
        # Gathered, so the ids are fetched by one loader batch.
        found = await asyncio.gather(*(_load(cls, ctx, node_id) for node_id in node_ids))
        if required and any(node is None for node in found):
            raise DomainError(ErrorCode.NOT_FOUND, "No such object.", "id")
        return list(found)


T = TypeVar("T", bound=Loaded)


async def _load(cls: type[T], ctx: Context, node_id: str) -> T | None:
    if not node_id.isdigit() or len(node_id) > 18:  # not a primary key: exists nowhere
        return None
    return await cls.load(ctx, int(node_id))


def _parse(info: strawberry.Info, value: strawberry.ID) -> tuple[type[relay.Node], str] | None:
    """The Node type a global id names and the id within it; None when it names no Node type of the schema."""
    try:
        gid = relay.GlobalID.from_id(str(value))
    except relay.GlobalIDValueError:
        return None
    definition = info.schema.get_type_by_name(gid.type_name)
    if not isinstance(definition, StrawberryObjectDefinition) or definition.is_interface:
        return None
    origin: Any = definition.origin
    if not (isinstance(origin, type) and issubclass(origin, relay.Node)):
        return None
    return origin, gid.node_id


async def resolve_nodes(info: strawberry.Info, ids: list[strawberry.ID]) -> list[relay.Node | None]:
    """The objects the global ids name, in the order asked; each type's ids through one `resolve_nodes` call."""
    by_type: defaultdict[type[relay.Node], list[tuple[int, str]]] = defaultdict(list)
    for index, value in enumerate(ids):
        if (parsed := _parse(info, value)) is not None:
            by_type[parsed[0]].append((index, parsed[1]))
    results: list[relay.Node | None] = [None] * len(ids)

    async def fetch(node_type: type[relay.Node], wanted: list[tuple[int, str]]) -> None:
        found = await await_maybe(node_type.resolve_nodes(info=info, node_ids=[node_id for _, node_id in wanted]))
        for (index, _), node in zip(wanted, found, strict=True):
            results[index] = node

    await asyncio.gather(*(fetch(node_type, wanted) for node_type, wanted in by_type.items()))
    return results


@strawberry.type
class NodeQuery:
    @strawberry.field(description="Any object by global id; null when it does not exist or is out of your scope.")
    async def node(self, info: strawberry.Info[Context, None], id: strawberry.ID) -> relay.Node | None:
        return (await resolve_nodes(info, [id]))[0]

    @strawberry.field(description="Many objects by global id, in the order asked; at most 100.")
    async def nodes(self, info: strawberry.Info[Context, None], ids: list[strawberry.ID]) -> list[relay.Node | None]:
        if len(ids) > MAX_PAGE:
            raise DomainError(ErrorCode.INVALID_INPUT, f"At most {MAX_PAGE} ids at once.", "ids")
        return await resolve_nodes(info, ids)

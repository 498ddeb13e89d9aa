"""Shared GraphQL shapes: user errors, connections, global ids."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, NewType, TypeVar

import strawberry
from strawberry import relay

from resolvers import DomainError, ErrorCode, Page

# The Python enums as GraphQL enums (registered once, here); annotations name the Python enums themselves.
strawberry.enum(ErrorCode, name="ErrorCode", description="Why a business rule said no.")

# Money totals across a chain outgrow GraphQL's 32-bit Int (2^31 fen is only 21 million yuan): reports use Long,
# a JSON number exact up to 2^53.
Long = NewType("Long", int)
LONG_SCALAR = strawberry.scalar(
    name="Long",
    description="A 64-bit integer, e.g. a chain's money total in fen (a JSON number, exact up to 2^53)",
    serialize=int,
    parse_value=int,
)

T = TypeVar("T")
M = TypeVar("M")


@strawberry.type(description="A business rule refused the mutation; nothing was changed.")
class UserError:
    code: ErrorCode
    message: str
    field: str | None = None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: relay.PageInfo

    @classmethod
    def of(cls, page: Page[M], convert: Callable[[M], T], *, has_previous: bool = False) -> Connection[T]:
        edges = [Edge(cursor=c, node=convert(row)) for row, c in zip(page.rows, page.cursors, strict=True)]
        return cls(
            edges=edges,
            page_info=relay.PageInfo(
                has_next_page=page.has_next,
                has_previous_page=has_previous,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )


def global_id(type_name: str, pk: int) -> relay.GlobalID:
    return relay.GlobalID(type_name=type_name, node_id=str(pk))


def decode_id(value: strawberry.ID | str, type_name: str, field: str = "id") -> int:
    """The primary key inside a global id of `type_name`; anything else is an INVALID_ID user error."""
    try:
        gid = relay.GlobalID.from_id(str(value))
    except relay.GlobalIDValueError as exc:
        raise DomainError(ErrorCode.INVALID_ID, f"{field} is not a valid id.", field) from exc
    if gid.type_name != type_name or not gid.node_id.isdigit() or len(gid.node_id) > 18:
        raise DomainError(ErrorCode.INVALID_ID, f"{field} is not a {type_name} id.", field)
    return int(gid.node_id)


def decode_optional_id(value: strawberry.ID | str | None, type_name: str, field: str) -> int | None:
    return None if value is None else decode_id(value, type_name, field)

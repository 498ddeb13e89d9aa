"""Keyset pagination for Relay connections: at most 100 rows a page, cursors are opaque ids."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar

from sqlalchemy import BigInteger, Integer, Select, bindparam
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from services.platform.errors import DomainError, ErrorCode

MAX_PAGE = 100
# Any select statement, whatever it returns (SQLAlchemy 2.1 types a Select by all its columns).
AnySelect: TypeAlias = Select[*tuple[Any, ...]]
DEFAULT_PAGE = 20
T = TypeVar("T")


class InvalidPageArgs(DomainError):
    pass


@dataclass(frozen=True)
class Page(Generic[T]):
    rows: Sequence[T]
    has_next: bool
    cursors: Sequence[str]


def encode_cursor(value: int) -> str:
    return base64.urlsafe_b64encode(f"c:{value}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
        prefix, _, value = raw.partition(":")
        if prefix != "c":
            raise ValueError(raw)
        return int(value)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidPageArgs(ErrorCode.INVALID_INPUT, "The cursor is not valid.", "after") from exc


def page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE
    if first < 0 or first > MAX_PAGE:
        raise InvalidPageArgs(ErrorCode.INVALID_INPUT, f"first must be between 0 and {MAX_PAGE}.", "first")
    return first


async def keyset_page(
    session: AsyncSession,
    stmt: AnySelect,
    key: InstrumentedAttribute[int],
    *,
    first: int | None,
    after: str | None,
    descending: bool = False,
    whole_rows: bool = False,
) -> Page[Any]:
    """One page of `stmt` ordered by the unique integer `key`.

    Rows are the first selected entity, or with `whole_rows` the full result rows (the entity, or the key itself,
    first).
    """
    paged = keyset_statement(stmt, key, after=after is not None, descending=descending)
    return await keyset_rows(session, paged, key, {}, first=first, after=after, whole_rows=whole_rows)


def _page(rows: list[Any], size: int, key: InstrumentedAttribute[int], whole_rows: bool) -> Page[Any]:
    has_next = len(rows) > size
    rows = rows[:size]
    entities = [r[0] for r in rows] if whole_rows else rows
    return Page(
        rows=rows,
        has_next=has_next,
        cursors=[encode_cursor(e if isinstance(e, int) else getattr(e, key.key)) for e in entities],
    )


def keyset_statement(
    stmt: AnySelect, key: InstrumentedAttribute[int], *, after: bool, descending: bool = False
) -> AnySelect:
    """`stmt` as a page after any key (when `after`) of any size, for a statement built once
    (services/platform/statements.py): `keyset_rows` runs it with the values."""
    if after:
        last = bindparam("after_id", type_=BigInteger)
        stmt = stmt.where(key < last if descending else key > last)
    return stmt.order_by(key.desc() if descending else key.asc()).limit(bindparam("page_limit", type_=Integer))


async def keyset_rows(
    session: AsyncSession,
    stmt: AnySelect,
    key: InstrumentedAttribute[int],
    values: dict[str, Any],
    *,
    first: int | None,
    after: str | None,
    whole_rows: bool = False,
) -> Page[Any]:
    """One page of a `keyset_statement` (built with `after` set as `after` is here) run with `values`: rows as
    `keyset_page` gives them."""
    size = page_size(first)
    values = {**values, "page_limit": size + 1}
    if after is not None:
        values["after_id"] = decode_cursor(after)
    result = await session.execute(stmt, values)
    rows: list[Any] = list(result.all() if whole_rows else result.scalars().all())
    return _page(rows, size, key, whole_rows)


def offset_page(items: Sequence[T], *, first: int | None, after: str | None) -> Page[T]:
    """A page over an already ordered, bounded list (e.g. stores sorted by distance)."""
    size = page_size(first)
    start = decode_cursor(after) + 1 if after is not None else 0
    chunk = list(items[start : start + size])
    return Page(
        rows=chunk,
        has_next=start + size < len(items),
        cursors=[encode_cursor(start + i) for i in range(len(chunk))],
    )

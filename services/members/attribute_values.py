"""Member attribute values on their own: each kind's check and normal form, the mask staff see, the keyed index of
a sensitive value, and the condition that finds members by a value (member search, coupon audiences). No scope
and no accounts here, so marketing may use it too."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import AttributeKind, AttributeSensitivity, Member, MemberAttribute, MemberAttributeValue
from services.access.pii import PiiCipher
from services.platform.errors import DomainError, ErrorCode

MAX_TEXT = 200
EARLIEST, LATEST = date(1900, 1, 1), date(2100, 12, 31)


def _invalid(message: str, field: str) -> DomainError:
    return DomainError(ErrorCode.ATTRIBUTE_VALUE_INVALID, message, field)


@dataclass(frozen=True)
class Parsed:
    text: str
    number: float | None = None


def parse(attribute: MemberAttribute, raw: str, field: str = "value") -> Parsed:
    """Check a value against its attribute's kind; the result is the value's one normal form."""
    value = raw.strip()
    if not value:
        raise _invalid(f"{attribute.name}: give a value (or null to clear it).", field)
    if attribute.kind is AttributeKind.TEXT:
        if len(value) > MAX_TEXT:
            raise _invalid(f"{attribute.name}: at most {MAX_TEXT} characters.", field)
        return Parsed(value)
    if attribute.kind is AttributeKind.CHOICE:
        if value not in attribute.choices:
            raise _invalid(f"{attribute.name}: one of {', '.join(attribute.choices)}.", field)
        return Parsed(value)
    if attribute.kind is AttributeKind.NUMBER:
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise _invalid(f"{attribute.name}: a number, e.g. 42 or 3.5.", field) from None
        if not number.is_finite() or abs(number) >= Decimal("1e12") or math.isinf(float(number)):
            raise _invalid(f"{attribute.name}: a number below a trillion.", field)
        normal = format(number.normalize(), "f") if number != 0 else "0"
        return Parsed(normal, float(number))
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise _invalid(f"{attribute.name}: a date as YYYY-MM-DD.", field) from None
    if not EARLIEST <= day <= LATEST:
        raise _invalid(f"{attribute.name}: a date from {EARLIEST} to {LATEST}.", field)
    return Parsed(day.isoformat())


def mask(attribute: MemberAttribute, value: str) -> str:
    """How staff see a sensitive value: a text's first character, everything else hidden (花生过敏 -> 花***)."""
    if attribute.kind is AttributeKind.TEXT and len(value) > 1:
        return value[0] + "***"
    return "****"


def index(cipher: PiiCipher, attribute_id: int, value: str) -> str:
    return cipher.index(f"member-attribute:{attribute_id}:{value}")


@dataclass(frozen=True)
class AttributeFilter:
    attribute_id: int
    equals: str | None = None
    at_least: str | None = None
    at_most: str | None = None


async def condition(session: AsyncSession, cipher: PiiCipher, flt: AttributeFilter) -> ColumnElement[bool]:
    """Members whose value of the attribute matches: exactly (sensitive ones through their keyed index), or within
    a range for PERSONAL numbers and dates."""
    attribute = await session.get(MemberAttribute, flt.attribute_id)
    if attribute is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such attribute.", "attributes")
    v = MemberAttributeValue
    where: list[ColumnElement[bool]] = [v.attribute_id == attribute.id]
    sensitive = attribute.sensitivity is AttributeSensitivity.SENSITIVE
    if flt.equals is not None:
        normal = parse(attribute, flt.equals, "attributes").text
        where.append(v.value_index == index(cipher, attribute.id, normal) if sensitive else v.value_text == normal)
    ranged = attribute.kind in (AttributeKind.NUMBER, AttributeKind.DATE)
    for bound, low in ((flt.at_least, True), (flt.at_most, False)):
        if bound is None:
            continue
        if sensitive or not ranged:
            raise DomainError(
                ErrorCode.INVALID_INPUT, "Ranges are for numbers and dates that are not sensitive.", "attributes"
            )
        p = parse(attribute, bound, "attributes")
        column: Any = v.value_number if attribute.kind is AttributeKind.NUMBER else v.value_text
        key: Any = p.number if attribute.kind is AttributeKind.NUMBER else p.text
        where.append(column >= key if low else column <= key)
    return Member.id.in_(select(v.member_id).where(*where))


def fingerprint(cipher: PiiCipher, filters: Sequence[AttributeFilter]) -> list[list[Any]]:
    """The filters as an idempotency request may keep them: values only as keyed hashes, never in clear."""
    return [
        [f.attribute_id, cipher.index(repr(("member-attribute-filter", f.equals, f.at_least, f.at_most)))]
        for f in filters
    ]

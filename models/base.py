"""Declarative base, naming convention and reusable column types."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Annotated, Any

from sqlalchemy import JSON, BigInteger, DateTime, Enum, Integer, MetaData, String
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetime stored as UTC; SQLite gives naive values back, so tag them."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a timezone-aware column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids for ledgers and orders.
BigId = BigInteger().with_variant(Integer(), "sqlite")

intpk = Annotated[int, mapped_column(BigId, primary_key=True, autoincrement=True)]
Timestamp = Annotated[datetime, mapped_column(UTCDateTime(), default=utcnow, nullable=False)]
str32 = Annotated[str, mapped_column(String(32))]
str64 = Annotated[str, mapped_column(String(64))]
str128 = Annotated[str, mapped_column(String(128))]
str255 = Annotated[str, mapped_column(String(255))]
json_data = Annotated[Any, mapped_column(JSON())]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class Sensitivity(enum.StrEnum):
    """What a field holds, declared once where the field is: a model column's `info` or a GraphQL input field.

    The audit log and the logs redact by it (services/access/audit.py, services/platform/logs.py); deleting an account erases
    the columns declared personal (services/members/data.py); a test walks every input type for undeclared ones.
    """

    PERSONAL = "PERSONAL"  # about a person (name, address, birthday, location): left out of audit and logs
    PHONE = "PHONE"  # a phone number: masked (138****5678) in the audit log, left out of logs
    SECRET = "SECRET"  # passwords, codes, tokens: never written anywhere
    NOT_PERSONAL = "NOT_PERSONAL"  # looks personal but is not (a store's phone, a product's name)

    @property
    def hidden(self) -> bool:
        return self is not Sensitivity.NOT_PERSONAL


PII = "pii"  # the declaration's key in a column's `info` and in a strawberry field's `metadata`
REDACTED = "[REDACTED]"


def personal(kind: Sensitivity = Sensitivity.PERSONAL) -> dict[str, Any]:
    """`mapped_column(..., info=personal())`: this column holds personal data, erased when the member leaves."""
    return {PII: kind}


def str_enum(kind: type[enum.StrEnum]) -> Enum:
    """An enum column stored as its string value (no database enum type to migrate)."""
    return Enum(kind, native_enum=False, length=24, validate_strings=True)

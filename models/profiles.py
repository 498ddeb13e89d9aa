"""A member's profile beyond the fixed fields: attributes HQ declares (自定义属性), their values per member (sensitive
ones encrypted at rest), and the products a member looked at in the mini-program (浏览记录)."""

from __future__ import annotations

import enum

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, Timestamp, intpk, personal, str32, str64, str_enum


class AttributeKind(enum.StrEnum):
    TEXT = "TEXT"
    CHOICE = "CHOICE"
    NUMBER = "NUMBER"
    DATE = "DATE"


class AttributeSensitivity(enum.StrEnum):
    PERSONAL = "PERSONAL"  # shown to staff in scope as it is
    SENSITIVE = "SENSITIVE"  # encrypted at rest, masked to staff, each reveal audited (like phones)


class MemberAttribute(Base):
    """An attribute HQ declares for every member (肤质 skin type, 过敏 allergies); kind and sensitivity never change."""

    __tablename__ = "member_attributes"

    id: Mapped[intpk]
    code: Mapped[str32] = mapped_column(unique=True)
    name: Mapped[str64]
    kind: Mapped[AttributeKind] = mapped_column(str_enum(AttributeKind))
    sensitivity: Mapped[AttributeSensitivity] = mapped_column(str_enum(AttributeSensitivity))
    # The allowed values of a CHOICE attribute, in the order shown.
    choices: Mapped[list[str]] = mapped_column(JSON(), default=list)
    member_editable: Mapped[bool] = mapped_column(Boolean(), default=False)
    active: Mapped[bool] = mapped_column(Boolean(), default=True)
    created_at: Mapped[Timestamp]


class MemberAttributeValue(Base):
    """One member's value of one attribute. PERSONAL values are kept as text (and numbers as numbers, for ranges);
    SENSITIVE ones as AES-GCM ciphertext with a keyed index for exact search and a mask for display."""

    __tablename__ = "member_attribute_values"
    __table_args__ = (
        UniqueConstraint("member_id", "attribute_id"),
        Index("ix_member_attribute_values_attribute_id_value_text", "attribute_id", "value_text"),
        Index("ix_member_attribute_values_attribute_id_value_index", "attribute_id", "value_index"),
    )

    id: Mapped[intpk]
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    attribute_id: Mapped[int] = mapped_column(BigId, ForeignKey("member_attributes.id"))
    value_text: Mapped[str | None] = mapped_column(String(255), info=personal())
    value_number: Mapped[float | None] = mapped_column(Float(), info=personal())
    value_enc: Mapped[bytes | None] = mapped_column(LargeBinary(), info=personal())
    value_index: Mapped[str | None] = mapped_column(String(64), info=personal())
    value_mask: Mapped[str | None] = mapped_column(String(64), info=personal())
    updated_by_staff_id: Mapped[int | None] = mapped_column(BigId)
    updated_at: Mapped[Timestamp]


class ProductView(Base):
    """A member looked at a product: at most one row per member, product and minute (the unique key dedupes retries
    and concurrent batches); purged after 90 days."""

    __tablename__ = "product_views"
    __table_args__ = (
        UniqueConstraint("member_id", "product_id", "minute"),
        Index("ix_product_views_member_id_id", "member_id", "id"),
        Index("ix_product_views_viewed_at", "viewed_at"),
    )

    id: Mapped[intpk]
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    product_id: Mapped[int] = mapped_column(BigId, ForeignKey("products.id"))
    store_id: Mapped[int | None] = mapped_column(BigId)
    # Minutes since the epoch (UTC): the dedupe bucket.
    minute: Mapped[int] = mapped_column(BigInteger())
    viewed_at: Mapped[Timestamp]


__all__ = [
    "AttributeKind",
    "AttributeSensitivity",
    "MemberAttribute",
    "MemberAttributeValue",
    "ProductView",
]

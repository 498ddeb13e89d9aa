"""Members: one person, valid in every store; personal data encrypted at rest."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Enum,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, BigId, Sensitivity, Timestamp, intpk, personal, str32, str64, str128


class Gender(enum.StrEnum):
    FEMALE = "FEMALE"
    MALE = "MALE"
    UNDISCLOSED = "UNDISCLOSED"


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (
        Index("ix_members_home_store_id", "home_store_id"),
        Index("ix_members_level_id", "level_id"),
        Index("ix_members_segment", "segment"),
        CheckConstraint("points_balance >= 0", name="points_not_negative"),
        CheckConstraint("balance_principal >= 0", name="principal_not_negative"),
        CheckConstraint("balance_bonus >= 0", name="bonus_not_negative"),
    )

    id: Mapped[intpk]
    name: Mapped[str | None] = mapped_column(String(64), info=personal())
    # AES-GCM ciphertext of the phone number; phone_index is its keyed HMAC for exact lookup.
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary(), info=personal(Sensitivity.PHONE))
    phone_index: Mapped[str | None] = mapped_column(String(64), unique=True, info=personal(Sensitivity.PHONE))
    # For display as 138****5678: the network prefix and the last four digits, nothing in between.
    phone_prefix: Mapped[str | None] = mapped_column(String(3), info=personal(Sensitivity.PHONE))
    phone_last4: Mapped[str | None] = mapped_column(String(4), info=personal(Sensitivity.PHONE))
    home_store_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("stores.id"))
    birthday: Mapped[date | None] = mapped_column(Date(), info=personal())
    gender: Mapped[Gender] = mapped_column(
        Enum(Gender, native_enum=False, length=16, validate_strings=True), default=Gender.UNDISCLOSED, info=personal()
    )
    level_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("member_levels.id"))
    # Kept equal to the sums of their ledgers in the same transaction as each entry.
    points_balance: Mapped[int] = mapped_column(BigInteger(), default=0)
    balance_principal: Mapped[int] = mapped_column(BigInteger(), default=0)
    balance_bonus: Mapped[int] = mapped_column(BigInteger(), default=0)
    # Fed by orders: lifetime spend (fen), visits, last visit; RFM segment recomputed by a job.
    total_spend: Mapped[int] = mapped_column(BigInteger(), default=0)
    visit_count: Mapped[int] = mapped_column(default=0)
    last_visit_at: Mapped[datetime | None]
    segment: Mapped[str | None] = mapped_column(String(16))
    # The member's own share code (全民推广), made the first time they ask for it.
    share_code: Mapped[str | None] = mapped_column(String(16), unique=True, info=personal())
    joined_at: Mapped[Timestamp]
    updated_at: Mapped[datetime | None]
    # Set when the member deleted their account: personal data is erased, ledgers stay anonymised.
    deleted_at: Mapped[datetime | None]

    identities: Mapped[list[MemberIdentity]] = relationship(back_populates="member", lazy="raise")


class MemberIdentity(Base):
    """A member's account at an identity provider (WeChat openid, local test subject)."""

    __tablename__ = "member_identities"
    __table_args__ = (UniqueConstraint("provider", "subject"), Index("ix_member_identities_member_id", "member_id"))

    id: Mapped[intpk]
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    provider: Mapped[str32]
    subject: Mapped[str128] = mapped_column(info=personal())
    created_at: Mapped[Timestamp]

    member: Mapped[Member] = relationship(back_populates="identities", lazy="raise")


class MemberStore(Base):
    """How a member relates to a store; store staff see only members related to their store."""

    __tablename__ = "member_stores"
    __table_args__ = (UniqueConstraint("member_id", "store_id"), Index("ix_member_stores_store_id", "store_id"))

    id: Mapped[intpk]
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    store_id: Mapped[int] = mapped_column(BigId, ForeignKey("stores.id"))
    registered: Mapped[bool] = mapped_column(Boolean(), default=False)
    purchase_count: Mapped[int] = mapped_column(default=0)
    spend: Mapped[int] = mapped_column(BigInteger(), default=0)
    first_seen_at: Mapped[Timestamp]
    last_purchase_at: Mapped[datetime | None]


class MemberTag(Base):
    __tablename__ = "member_tags"

    id: Mapped[intpk]
    name: Mapped[str64] = mapped_column(unique=True)
    created_at: Mapped[Timestamp]


class MemberTagLink(Base):
    __tablename__ = "member_tag_links"
    __table_args__ = (UniqueConstraint("member_id", "tag_id"), Index("ix_member_tag_links_tag_id", "tag_id"))

    id: Mapped[intpk]
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    tag_id: Mapped[int] = mapped_column(BigId, ForeignKey("member_tags.id"))
    created_at: Mapped[Timestamp]

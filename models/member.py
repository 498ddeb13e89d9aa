"""Members: one person, valid in every store; personal data encrypted at rest."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, BigId, Timestamp, intpk, str32, str128


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (Index("ix_members_home_store_id", "home_store_id"),)

    id: Mapped[intpk]
    name: Mapped[str | None] = mapped_column(String(64))
    # AES-GCM ciphertext of the phone number; phone_index is its keyed HMAC for exact lookup.
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary())
    phone_index: Mapped[str | None] = mapped_column(String(64), unique=True)
    phone_last4: Mapped[str | None] = mapped_column(String(4))
    home_store_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("stores.id"))
    joined_at: Mapped[Timestamp]
    updated_at: Mapped[datetime | None]

    identities: Mapped[list[MemberIdentity]] = relationship(back_populates="member", lazy="raise")


class MemberIdentity(Base):
    """A member's account at an identity provider (WeChat openid, local test subject)."""

    __tablename__ = "member_identities"
    __table_args__ = (UniqueConstraint("provider", "subject"), Index("ix_member_identities_member_id", "member_id"))

    id: Mapped[intpk]
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    provider: Mapped[str32]
    subject: Mapped[str128]
    created_at: Mapped[Timestamp]

    member: Mapped[Member] = relationship(back_populates="identities", lazy="raise")

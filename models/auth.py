"""Sign-in sessions and their rotating refresh tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, BigId, Timestamp, intpk, personal, str32


class AuthSession(Base):
    """One sign-in: the family of refresh tokens rotated from it. Revoking it ends every token."""

    __tablename__ = "auth_sessions"
    __table_args__ = (Index("ix_auth_sessions_staff_id", "staff_id"), Index("ix_auth_sessions_member_id", "member_id"))

    id: Mapped[intpk]
    staff_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("staff.id"))
    member_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("members.id"))
    created_at: Mapped[Timestamp]
    revoked_at: Mapped[datetime | None]
    revoke_reason: Mapped[str32 | None]
    ip: Mapped[str | None] = mapped_column(String(64), info=personal())

    tokens: Mapped[list[RefreshToken]] = relationship(back_populates="session", lazy="raise")


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"
    __table_args__ = (Index("ix_refresh_tokens_session_id", "session_id"),)

    id: Mapped[intpk]
    session_id: Mapped[int] = mapped_column(BigId, ForeignKey("auth_sessions.id"))
    # SHA-256 of a 256-bit random token: the token itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[Timestamp]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]

    session: Mapped[AuthSession] = relationship(back_populates="tokens", lazy="raise")

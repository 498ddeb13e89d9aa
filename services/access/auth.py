"""Sign-in sessions: staff login, member sign-in, refresh rotation with reuse detection, logout."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from models import AuthSession, Member, RefreshToken, Role, Staff, utcnow
from services.access.scope import Viewer, ViewerKind, acted_as
from services.access.security import AccessClaims, Security, hash_refresh_token, new_refresh_token
from services.platform.errors import DomainError, ErrorCode, Unauthenticated
from services.platform.events import emit
from services.platform.validation import text

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._\-]{2,63}$")
# Published when sessions end ({"sessionIds": [...]}), so every instance closes their websockets at once.
SESSION_REVOKED = "session.revoked"
# Published when roles or placements change, so every instance forgets the viewers it remembered.
ACCESS_CHANGED = "access.changed"


class PersistentRefusal(DomainError):
    """A refusal whose side effects must still commit (revoking a token family on reuse)."""


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime


async def _issue(session: AsyncSession, security: Security, auth: AuthSession, kind: str, subject_id: int) -> TokenPair:
    now = utcnow()
    token, digest = new_refresh_token()
    refresh_expires = now + timedelta(seconds=security.settings.refresh_token_ttl_s)
    session.add(RefreshToken(session_id=auth.id, token_hash=digest, expires_at=refresh_expires))
    access, access_expires = security.issue_access_token(AccessClaims(kind, subject_id, auth.id), now)
    await session.flush()
    return TokenPair(access, access_expires, token, refresh_expires)


async def start_session(
    session: AsyncSession,
    security: Security,
    *,
    staff_id: int | None = None,
    member_id: int | None = None,
    ip: str | None = None,
) -> TokenPair:
    """Open a new token family for a staff member or a member."""
    auth = AuthSession(staff_id=staff_id, member_id=member_id, ip=ip)
    session.add(auth)
    await session.flush()
    if staff_id is not None:
        return await _issue(session, security, auth, "staff", staff_id)
    assert member_id is not None
    return await _issue(session, security, auth, "member", member_id)


async def login(
    session: AsyncSession, security: Security, *, username: str, password: str, ip: str | None
) -> tuple[Staff, TokenPair]:
    """Check a staff member's password and open a session; unknown user and wrong password look alike."""
    name = text(username, "username", max_len=64).lower()
    if len(password) > 128:
        raise DomainError(ErrorCode.INVALID_INPUT, "password is longer than 128 characters.", "password")
    staff = await session.scalar(select(Staff).where(Staff.username == name))
    if not security.verify_password(staff.password_hash if staff else None, password) or staff is None:
        raise DomainError(ErrorCode.INVALID_CREDENTIALS, "Wrong username or password.")
    if not staff.active:
        raise DomainError(ErrorCode.ACCOUNT_DISABLED, "This account is disabled.")
    if security.needs_rehash(staff.password_hash):
        staff.password_hash = security.hash_password(password)
    acted_as(staff.id, staff.store_id)
    return staff, await start_session(session, security, staff_id=staff.id, ip=ip)


async def refresh(session: AsyncSession, security: Security, *, refresh_token: str) -> TokenPair:
    """Spend a refresh token for a new pair; a spent token used again revokes its whole family."""
    now = utcnow()
    row = (
        await session.execute(
            select(RefreshToken, AuthSession)
            .join(AuthSession, AuthSession.id == RefreshToken.session_id)
            .where(RefreshToken.token_hash == hash_refresh_token(refresh_token))
        )
    ).first()
    if row is None:
        raise DomainError(ErrorCode.TOKEN_INVALID, "The refresh token is not valid.", "refreshToken")
    token, auth = row
    if auth.revoked_at is not None:
        raise DomainError(ErrorCode.TOKEN_INVALID, "This session has ended; sign in again.", "refreshToken")
    if token.expires_at <= now:
        raise DomainError(ErrorCode.TOKEN_EXPIRED, "The refresh token has expired.", "refreshToken")
    spent: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
        update(RefreshToken)
        .where(RefreshToken.id == token.id, RefreshToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:
        await revoke_sessions(session, session_ids=[auth.id], reason="REFRESH_REUSE")
        raise PersistentRefusal(
            ErrorCode.TOKEN_REUSED, "This refresh token was already used; the session is ended.", "refreshToken"
        )
    if auth.staff_id is not None:
        active = await session.scalar(select(Staff.active).where(Staff.id == auth.staff_id))
        if not active:
            raise DomainError(ErrorCode.ACCOUNT_DISABLED, "This account is disabled.")
        return await _issue(session, security, auth, "staff", auth.staff_id)
    assert auth.member_id is not None
    return await _issue(session, security, auth, "member", auth.member_id)


async def revoke_sessions(
    session: AsyncSession,
    *,
    session_ids: list[int] | None = None,
    staff_id: int | None = None,
    member_id: int | None = None,
    reason: str,
) -> None:
    """End sessions at once: their access tokens fail on the next request, their refresh tokens too, and their
    open websockets close (announced after commit)."""
    stmt = update(AuthSession).where(AuthSession.revoked_at.is_(None))
    if session_ids is not None:
        stmt = stmt.where(AuthSession.id.in_(session_ids))
    if staff_id is not None:
        stmt = stmt.where(AuthSession.staff_id == staff_id)
    if member_id is not None:
        stmt = stmt.where(AuthSession.member_id == member_id)
    ended = await session.scalars(
        stmt.values(revoked_at=utcnow(), revoke_reason=reason)
        .returning(AuthSession.id)
        .execution_options(synchronize_session=False)
    )
    ids = list(ended)
    if ids:
        emit(session, SESSION_REVOKED, {"sessionIds": ids})


async def logout(session: AsyncSession, *, viewer: Viewer) -> None:
    if viewer.session_id is None:
        raise Unauthenticated()
    await revoke_sessions(session, session_ids=[viewer.session_id], reason="LOGOUT")


# Every request with a token runs one of these; built once (building a select costs more than running it).
_STAFF_SESSION = (
    select(Staff.active, Staff.store_id, Role.code, Role.scope, Role.permissions, AuthSession.revoked_at)
    .join(Role, Role.id == Staff.role_id)
    .join(AuthSession, AuthSession.staff_id == Staff.id)
    .where(Staff.id == bindparam("subject"), AuthSession.id == bindparam("session"))
)
_MEMBER_SESSION = (
    select(AuthSession.revoked_at)
    .join(Member, Member.id == AuthSession.member_id)
    .where(AuthSession.id == bindparam("session"), Member.id == bindparam("subject"))
)


async def authenticate(session: AsyncSession, security: Security, token: str) -> Viewer:
    """Turn a bearer token into the viewer, checking that the session still stands."""
    return await session_viewer(session, security.decode_access_token(token))


async def session_viewer(session: AsyncSession, claims: AccessClaims) -> Viewer:
    """The viewer of verified access-token claims, if their session still stands."""
    if claims.kind == "staff":
        staff_row = (
            await session.execute(_STAFF_SESSION, {"subject": claims.subject_id, "session": claims.session_id})
        ).first()
        if staff_row is None or staff_row.revoked_at is not None:
            raise Unauthenticated("This session has ended; sign in again.", reason="SESSION_REVOKED")
        if not staff_row.active:
            raise Unauthenticated("This account is disabled.", reason="ACCOUNT_DISABLED")
        return Viewer(
            kind=ViewerKind.STAFF,
            staff_id=claims.subject_id,
            session_id=claims.session_id,
            role_code=staff_row.code,
            role_scope=staff_row.scope,
            store_id=staff_row.store_id,
            permissions=frozenset(staff_row.permissions),
        )
    member_row = (
        await session.execute(_MEMBER_SESSION, {"subject": claims.subject_id, "session": claims.session_id})
    ).first()
    if member_row is None or member_row.revoked_at is not None:
        raise Unauthenticated("This session has ended; sign in again.", reason="SESSION_REVOKED")
    return Viewer(kind=ViewerKind.MEMBER, member_id=claims.subject_id, session_id=claims.session_id)

"""The rotating member code (会员码): signed, short-lived, so a screenshot stops working within a minute."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from datetime import datetime, timedelta

from models import utcnow
from services.access.scope import Viewer
from services.platform.errors import AccessDenied, DomainError, ErrorCode

LIFETIME = timedelta(seconds=60)
PREFIX = "MC1"


class MemberCodes:
    def __init__(self, key: bytes) -> None:
        # Its own key, derived so that a leaked code key reveals nothing about the PII key.
        self._key = hashlib.sha256(b"member-code:" + key).digest()

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:12]

    def issue(self, member_id: int, now: datetime | None = None) -> tuple[str, datetime]:
        """A code for `member_id` valid for LIFETIME from `now`."""
        expires = (now or utcnow()) + LIFETIME
        body = struct.pack(">QI", member_id, int(expires.timestamp()))
        token = base64.b32encode(body + self._sign(body)).decode().rstrip("=")
        return f"{PREFIX}{token}", expires

    def verify(self, code: str, now: datetime | None = None) -> int:
        """The member id in a valid, unexpired code; a coded refusal otherwise."""
        raw = code.strip().upper()
        if not raw.startswith(PREFIX) or len(raw) > 64:
            raise DomainError(ErrorCode.MEMBER_CODE_INVALID, "This is not a member code.", "code")
        token = raw[len(PREFIX) :]
        try:
            blob = base64.b32decode(token + "=" * (-len(token) % 8))
        except ValueError as exc:
            raise DomainError(ErrorCode.MEMBER_CODE_INVALID, "This is not a member code.", "code") from exc
        body, signature = blob[:12], blob[12:]
        if len(body) != 12 or not hmac.compare_digest(signature, self._sign(body)):
            raise DomainError(ErrorCode.MEMBER_CODE_INVALID, "This member code is not valid.", "code")
        member_id, expires = struct.unpack(">QI", body)
        if (now or utcnow()).timestamp() > expires:
            raise DomainError(ErrorCode.MEMBER_CODE_EXPIRED, "This member code has expired; refresh it.", "code")
        return int(member_id)


def code_for(codes: MemberCodes, viewer: Viewer) -> tuple[str, datetime]:
    """The signed-in member's rotating code; only members have one."""
    if viewer.member_id is None:
        raise AccessDenied("Only members have a member code.")
    return codes.issue(viewer.member_id)

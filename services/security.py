"""Passwords (argon2id) and tokens (EdDSA-signed JWT access tokens, opaque rotating refresh tokens)."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from models import utcnow
from services.access.keys import Keys
from services.platform.config import Settings
from services.platform.errors import Unauthenticated

ISSUER = "chain-bff"
AUDIENCE = "chain-bff"


@dataclass(frozen=True)
class AccessClaims:
    kind: str  # "staff" or "member"
    subject_id: int
    session_id: int
    expires_at: int = 0  # seconds since the epoch; set on decoded tokens


class Security:
    """Password hashing and token signing with the chain's keys and the configured costs."""

    def __init__(self, settings: Settings, keys: Keys) -> None:
        self.settings = settings
        self.keys = keys
        self.hasher = PasswordHasher(time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_kib)
        # Verifying against this when the user is unknown keeps both paths equally slow.
        self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        # A token's signature is checked once per process, not on every request that carries it; its expiry is
        # checked on every use (below). Invalid tokens raise, and lru_cache keeps no exceptions.
        self._verified = lru_cache(maxsize=8192)(self._verify_signature)

    def hash_password(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify_password(self, stored_hash: str | None, password: str) -> bool:
        try:
            return self.hasher.verify(stored_hash or self._dummy_hash, password) and stored_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        return self.hasher.check_needs_rehash(stored_hash)

    def issue_access_token(self, claims: AccessClaims, now: datetime | None = None) -> tuple[str, datetime]:
        now = now or utcnow()
        expires = now + timedelta(seconds=self.settings.access_token_ttl_s)
        payload: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": f"{claims.kind}:{claims.subject_id}",
            "sid": claims.session_id,
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
        }
        return jwt.encode(payload, self.keys.jwt_private, algorithm="EdDSA"), expires

    def _verify_signature(self, token: str) -> AccessClaims:
        try:
            payload = jwt.decode(
                token,
                self.keys.jwt_public,
                algorithms=["EdDSA"],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "sid"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("The access token has expired.", reason="TOKEN_EXPIRED") from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated("The access token is not valid.", reason="TOKEN_INVALID") from exc
        kind, _, raw_id = str(payload["sub"]).partition(":")
        sid = payload["sid"]
        if kind not in {"staff", "member"} or not raw_id.isdigit() or not isinstance(sid, int):
            raise Unauthenticated("The access token is not valid.", reason="TOKEN_INVALID")
        return AccessClaims(kind=kind, subject_id=int(raw_id), session_id=sid, expires_at=int(payload["exp"]))

    def decode_access_token(self, token: str) -> AccessClaims:
        """Verify signature, audience and expiry; raise Unauthenticated with the reason."""
        claims = self._verified(token)
        if claims.expires_at <= time.time():  # as PyJWT decides it, for a token verified earlier
            raise Unauthenticated("The access token has expired.", reason="TOKEN_EXPIRED")
        return claims


def new_refresh_token() -> tuple[str, str]:
    """A 256-bit random token and the SHA-256 hex digest that is stored in its place."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
